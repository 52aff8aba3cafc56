/**
 * The wiring every handler shares: the three stores, a logger, fault injection, and the
 * Lambda entry built from the environment once (at cold start, naming a missing variable).
 * Handlers are `makeHandler(deps)`; tests and the embedded runner pass filesystem stores.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { S3Client } from '@aws-sdk/client-s3';
import { InvalidInputError, TransientError } from '../../shared/errors';
import { searchKeys } from '../../shared/keys';
import type { ObjectStore } from '../../shared/store/object-store';
import { S3Store } from '../../shared/store/s3-store';

export interface Stores {
  /** searches/<id>/..., locks/, faults/ (WORK_BUCKET). */
  work: ObjectStore;
  /** models/<name>/model.onnx, search.json, data/ (MODELS_BUCKET). */
  models: ObjectStore;
  /** policies/..., sweeps/... (RESULTS_BUCKET). */
  results: ObjectStore;
}

export interface HandlerDeps {
  stores: Stores;
  logger: Logger;
  /** Wall clock for status.json timestamps and lock ages (a fixed clock in tests). */
  now: () => Date;
  /** Handler names that fail once per search with a TransientError (fault-injection tests). */
  faults: readonly string[];
}

export type Handler<R = unknown> = (event: unknown) => Promise<R>;

/** Reads required environment variables; a missing one is named in the error. */
export function readEnv<K extends string>(names: readonly K[], env: NodeJS.ProcessEnv = process.env): Record<K, string> {
  const out = {} as Record<K, string>;
  for (const name of names) {
    const value = env[name];
    if (!value) throw new InvalidInputError(`environment variable ${name} is not set: the function needs it (see docs/workflow.md)`);
    out[name] = value;
  }
  return out;
}

/** Deps for a Lambda: S3 stores for WORK_BUCKET, MODELS_BUCKET, RESULTS_BUCKET. */
export function depsFromEnv(service: string, env: NodeJS.ProcessEnv = process.env): HandlerDeps {
  const vars = readEnv(['WORK_BUCKET', 'MODELS_BUCKET', 'RESULTS_BUCKET'], env);
  // X-Ray subsegments for every S3 call (Powertools Tracer; off outside Lambda, where
  // AWS_EXECUTION_ENV is unset: tests and the embedded runner).
  const tracer = new Tracer({ serviceName: `haq-${service}` });
  const client = tracer.captureAWSv3Client(new S3Client({ forcePathStyle: env.AWS_S3_FORCE_PATH_STYLE === 'true' || !!env.AWS_ENDPOINT_URL }));
  return {
    stores: {
      work: new S3Store(vars.WORK_BUCKET, client),
      models: new S3Store(vars.MODELS_BUCKET, client),
      results: new S3Store(vars.RESULTS_BUCKET, client),
    },
    logger: new Logger({ serviceName: `haq-${service}` }),
    now: () => new Date(),
    faults: (env.HAQ_INJECT_FAULT ?? '').split(',').map((s) => s.trim()).filter(Boolean),
  };
}

/** A logger that writes nothing (the embedded runner and tests). */
export function silentLogger(service = 'haq'): Logger {
  return new Logger({ serviceName: service, logLevel: 'SILENT' });
}

/**
 * The Lambda export: deps are built from the environment at cold start when running in
 * Lambda (AWS_LAMBDA_FUNCTION_NAME is set), so a missing variable fails the init; elsewhere
 * (imports by tests or the CLI) only at the first call.
 */
export function lambdaHandler<R>(service: string, make: (deps: HandlerDeps) => Handler<R>): Handler<R> {
  let inner: Handler<R> | undefined;
  let metrics: Metrics | undefined;
  const init = (): Handler<R> => {
    if (!inner) {
      const deps = depsFromEnv(service);
      metrics = new Metrics({ namespace: 'haq', serviceName: `haq-${service}` });
      inner = make(deps);
    }
    return inner;
  };
  if (process.env.AWS_LAMBDA_FUNCTION_NAME) init();
  return async (event: unknown) => {
    const fn = init();
    const started = performance.now();
    try {
      return await fn(event);
    } finally {
      metrics!.addMetric(`${service}Duration`, MetricUnit.Milliseconds, performance.now() - started);
      metrics!.publishStoredMetrics();
    }
  };
}

/**
 * Wraps a handler body: logs start/end with the search id, logs a failure with its error
 * name (what the state machine matches on) and rethrows it unchanged.
 */
export function instrument<R>(service: string, deps: HandlerDeps, body: (event: unknown) => Promise<R>): Handler<R> {
  return async (event: unknown) => {
    const searchId = (event as { searchId?: unknown } | null)?.searchId;
    const started = performance.now();
    try {
      const out = await body(event);
      deps.logger.info(`${service} done`, { searchId, ms: Math.round(performance.now() - started) });
      return out;
    } catch (err) {
      const e = err as Error;
      deps.logger.error(`${service} failed`, { searchId, errorName: e?.name, errorMessage: e?.message });
      throw err;
    }
  };
}

/**
 * Fault injection for the retry tests (HAQ_INJECT_FAULT=evaluate,...): the first call of a
 * named handler for a given key fails with a TransientError; a marker object in the work
 * store makes "first" hold across processes and Lambda instances.
 */
export async function maybeInjectFault(deps: HandlerDeps, service: string, searchId: string, detail: string): Promise<void> {
  if (!deps.faults.includes(service)) return;
  const key = `${service}-${detail}`;
  const marker = `${searchKeys.prefix(searchId)}faults/${key}.json`;
  try {
    await deps.stores.work.put(marker, JSON.stringify({ at: deps.now().toISOString() }), { ifAbsent: true });
  } catch {
    return; // already failed once for this key
  }
  throw new TransientError(`injected transient fault in ${service} for ${searchId} ${detail} (HAQ_INJECT_FAULT)`);
}
