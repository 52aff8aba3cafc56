/**
 * Deployment options, from CDK context (`cdk.json` "context" or `npx cdk deploy -c key=value`).
 * Values given on the command line arrive as strings, so numbers and booleans are coerced.
 */
import { z } from 'zod';
import { parse } from '../shared/validate';

const bool = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);
/** CloudWatch Logs accepts only these retention periods (days). */
const logRetentionDays = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

export const DeployConfig = z.object({
  stackName: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,60}$/, 'letters, digits and "-", starting with a letter').default('Haq'),
  /** Lambda architecture; x86_64 for LocalStack's host executor on x86-64 machines. */
  architecture: z.enum(['arm64', 'x86_64']).default('arm64'),
  /** `scheduler` (EventBridge Scheduler) on AWS; `rule` (scheduled EventBridge rule) on LocalStack. */
  scheduleKind: z.enum(['scheduler', 'rule']).default('scheduler'),
  sweepSchedule: z
    .string()
    .regex(/^(cron|rate)\(.+\)$/, 'a schedule expression such as "cron(0 3 ? * SUN *)" or "rate(7 days)"')
    .default('cron(0 3 ? * SUN *)'),
  sweepTimeZone: z.string().min(1).default('UTC'),
  sweepConfigKey: z.string().min(1).regex(/^[^/].*\.json$/, 'a JSON object key in the models bucket, e.g. sweeps/default.json').default('sweeps/default.json'),
  sweepEnabled: bool.default(true),
  logLevel: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
  logRetentionDays: z.coerce
    .number()
    .refine((d) => logRetentionDays.includes(d), `one of CloudWatch's retention periods: ${logRetentionDays.join(', ')}`)
    .default(30),
  /** Must exceed the longest search: objects expire by age, and a search reads its Prepare outputs to the end. */
  workRetentionDays: z.coerce.number().int().positive().default(30),
  accessLogRetentionDays: z.coerce.number().int().positive().default(90),
  /** Iterations of each search Map state at once (the ASL's `${MapConcurrency}`): one Lambda each. */
  mapConcurrency: z.coerce.number().int().positive().default(16),
  /** Delete the models and work buckets with the stack (they must be empty); results are always kept. */
  destroyInputBuckets: bool.default(false),
  /** Comma-separated handler names that fail once per key (retry tests only). */
  injectFaults: z
    .string()
    .default('')
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean)),
});
export type DeployConfig = z.infer<typeof DeployConfig>;
export type DeployConfigInput = z.input<typeof DeployConfig>;

export const contextKeys = Object.keys(DeployConfig.shape) as Array<keyof DeployConfig>;

/** Reads every option from a context lookup (`node.tryGetContext`); unknown values fail with the key's name. */
export function deployConfigFromContext(get: (key: string) => unknown): DeployConfig {
  const raw: Record<string, unknown> = {};
  for (const key of contextKeys) {
    const value = get(key);
    if (value !== undefined && value !== null) raw[key] = value;
  }
  return parse(DeployConfig, raw, 'CDK context');
}
