import { describeError, HaqError } from '../shared/errors';

/**
 * Wraps a command's action: errors become one line on stderr (`haq: InvalidInputError: ...`)
 * and exit code 1, or `{"error":{...}}` on stdout with --json; never a stack trace unless
 * HAQ_DEBUG=1.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      // A command that printed its result and then fails (a sweep with failed rows) keeps
      // stdout one JSON document.
      const json = process.argv.includes('--json') && !printedJson;
      if (json) {
        const e = err as Error;
        const details = err instanceof HaqError ? err.details : {};
        process.stdout.write(`${JSON.stringify({ error: { name: e?.name ?? 'Error', message: e?.message ?? String(err), details } })}\n`);
      }
      process.stderr.write(`haq: ${describeError(err)}\n`);
      if (process.env.HAQ_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
      process.exitCode = 1;
    }
  };
}

let printedJson = false;

/** Prints a value as JSON (one document, newline-terminated). */
export function printJson(value: unknown): void {
  printedJson = true;
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Formats a table of rows as aligned text columns. */
export function formatTable(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r, ri) => {
      const line = r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
      return ri === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}
