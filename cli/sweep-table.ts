/** A sweep's comparison as terminal text (`haq sweep`, `haq policies sweep`). */
import { comparisonCells, failureLine, type Comparison } from '../functions/compare';
import { formatTable } from './output';

/** The comparison as the terminal table, failed rows with their error, and the failures' count. */
export function comparisonText(comparison: Comparison): string {
  const { body } = comparisonCells(comparison);
  const anyFailed = comparison.rows.some((r) => r.error);
  const head = ['model', 'constraint', 'searched for', 'top-1 % val', 'top-1 % test', ...comparison.targets.map((t) => `on ${t}`), ...(anyFailed ? ['error'] : [])];
  const rows = body.map((cells, i) => {
    const e = comparison.rows[i].error;
    return anyFailed ? [...cells, e ? `${e.name}: ${e.message}` : ''] : cells;
  });
  const failed = comparison.rows.filter((r) => r.error);
  return [
    formatTable(head, rows),
    'latency as a fraction of 8/8 on each target (* = the target the policy was searched for)',
    ...(failed.length ? [`${failed.length} of ${comparison.rows.length} searches failed:`, ...failed.map((r) => `  ${failureLine(r)}`)] : []),
  ].join('\n');
}
