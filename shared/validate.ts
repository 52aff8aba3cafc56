import { z } from 'zod';
import { InvalidInputError } from './errors';

/**
 * Parses `value` with a zod schema and turns a failure into one InvalidInputError line that
 * names each bad field, e.g. `search config: constraint.ratio: Number must be greater than 0`
 * (an issue with the value as a whole has no field: `--constraint: constraint "x" is not ...`).
 */
export function parse<T extends z.ZodTypeAny>(schema: T, value: unknown, what = 'input'): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new InvalidInputError(`${what}: ${describeIssues(result.error.issues)}`, { issues: result.error.issues });
}

/**
 * zod issues as one line: `field.path: message; ...`; the message alone for the value as a
 * whole; a message that starts with the field's name (`constraint "x": ...`) is not
 * prefixed with that name again.
 */
export function describeIssues(issues: z.ZodIssue[]): string {
  const describe = (i: z.ZodIssue): string => {
    const field = i.path.at(-1);
    const path = typeof field === 'string' && i.message.startsWith(`${field} `) ? i.path.slice(0, -1) : i.path;
    return path.length ? `${path.join('.')}: ${i.message}` : i.message;
  };
  return issues.map(describe).join('; ');
}

/** Parses JSON text, naming the source on a syntax error, then validates it. */
export function parseJsonText<T extends z.ZodTypeAny>(schema: T, text: string, what: string): z.infer<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
  return parse(schema, value, what);
}
