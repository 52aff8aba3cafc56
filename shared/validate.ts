import { z } from 'zod';
import { InvalidInputError } from './errors';

/**
 * Parses `value` with a zod schema and turns a failure into one InvalidInputError line that
 * names each bad field, e.g. `search config: constraint.ratio: Number must be greater than 0`.
 */
export function parse<T extends z.ZodTypeAny>(schema: T, value: unknown, what = 'input'): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
  throw new InvalidInputError(`${what}: ${issues}`, { issues: result.error.issues });
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
