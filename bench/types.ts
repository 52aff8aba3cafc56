/**
 * A benchmark section: bench/run.ts imports every bench/sections/*.ts, calls `run`, and
 * writes all results to bench/results.json and bench/results.md. Figures are ratios within
 * one run where they compare speeds; absolute times are reported for context only.
 */
export interface BenchContext {
  /** `npm run bench -- --quick`: the whole bench in under a minute, fewer repeats and seeds. */
  quick: boolean;
  /** Repository root (absolute). */
  root: string;
  /** Scratch folder for this run (absolute, emptied at start). */
  scratch: string;
  log: (line: string) => void;
  /**
   * Aborted when the section runs past the runner's section timeout: the run has moved on and
   * recorded the section as failed. Long loops should check `signal?.aborted` and stop, so
   * they do not compete for the CPU with the sections measured after them.
   */
  signal?: AbortSignal;
}

export interface BenchTable {
  title: string;
  headers: string[];
  rows: Array<Array<string | number | null>>;
  /** One-line note under the table: what was measured and how. */
  note?: string;
}

export interface BenchSection {
  /** Short id, e.g. 'evaluation'. */
  id: string;
  title: string;
  /** Headline figures, machine-readable (results.json). */
  figures: Record<string, number | string | null>;
  tables: BenchTable[];
}

/** The order sections appear in the report (lower first). */
export interface BenchModule {
  order: number;
  /** A full (not --quick) run of this section may take this long, when that is more than the runner's limit. */
  timeoutSeconds?: number;
  run(ctx: BenchContext): Promise<BenchSection>;
}
