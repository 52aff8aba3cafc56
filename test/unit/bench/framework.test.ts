import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  formatNumber,
  joinResults,
  loadSections,
  renderMarkdown,
  replaceMarkerBlock,
  runSections,
  type BenchResults,
  type LoadedModule,
  type RunOptions,
} from '../../../bench/framework';
import type { BenchContext, BenchSection } from '../../../bench/types';
import { InvalidInputError } from '../../../shared/errors';
import { tempDir } from '../../helpers/tmp';

function section(id: string, figures: BenchSection['figures'] = {}): BenchSection {
  return { id, title: `Title ${id}`, figures, tables: [{ title: `${id} table`, headers: ['a', 'b'], rows: [[id, 1.5]] }] };
}

function options(overrides: Partial<RunOptions> = {}): RunOptions & { lines: string[] } {
  const lines: string[] = [];
  let clock = 0;
  return {
    quick: true,
    root: '/repo',
    makeScratch: (file) => `/scratch/${file}`,
    log: (line) => lines.push(line),
    sectionTimeoutMs: 1000,
    now: () => (clock += 250),
    lines,
    ...overrides,
  };
}

describe('runSections', () => {
  it('runs sections in ascending order (ties by file name) and passes quick, root and scratch', async () => {
    // Prepare
    const calls: string[] = [];
    const mod = (file: string, order: number): LoadedModule => ({
      file,
      module: {
        order,
        run: async (ctx: BenchContext) => {
          calls.push(`${file}:${ctx.quick}:${ctx.root}:${ctx.scratch}`);
          return section(file.replace('.ts', ''));
        },
      },
    });
    // Act
    const results = await runSections([mod('c.ts', 30), mod('b.ts', 10), mod('a.ts', 10)], options());
    // Assert
    assert.deepEqual(calls, ['a.ts:true:/repo:/scratch/a.ts', 'b.ts:true:/repo:/scratch/b.ts', 'c.ts:true:/repo:/scratch/c.ts']);
    assert.deepEqual(results.map((r) => [r.id, r.status, r.order]), [['a', 'ok', 10], ['b', 'ok', 10], ['c', 'ok', 30]]);
    assert.equal(results[0].durationSeconds, 0.25);
  });

  it('records when each section started and the load average then, failed ones too', async () => {
    // Prepare
    let minute = 0;
    const loads = [0.5, 3.25];
    const mod = (file: string, order: number, fail = false): LoadedModule => ({
      file,
      module: { order, run: async () => (fail ? Promise.reject(new Error('boom')) : section(file.replace('.ts', ''))) },
    });
    // Act
    const results = await runSections(
      [mod('a.ts', 1), mod('b.ts', 2, true)],
      options({ wallClock: () => new Date(Date.UTC(2026, 11, 3, 10, minute++)), load: () => loads.shift()! }),
    );
    // Assert
    assert.deepEqual(results.map((r) => [r.status, r.startedAt, r.loadAverage1m]), [
      ['ok', '2026-12-03T10:00:00.000Z', 0.5],
      ['failed', '2026-12-03T10:01:00.000Z', 3.25],
    ]);
  });

  it('records a throwing section as failed with its message and keeps running the rest', async () => {
    const opts = options();
    const results = await runSections(
      [
        { file: 'boom.ts', module: { order: 1, run: async () => { throw new RangeError('no models under /x'); } } },
        { file: 'fine.ts', module: { order: 2, run: async () => section('fine') } },
      ],
      opts,
    );
    assert.equal(results[0].status, 'failed');
    assert.equal(results[0].id, 'boom');
    assert.equal(results[0].error, 'RangeError: no models under /x');
    assert.deepEqual(results[0].tables, []);
    assert.equal(results[1].status, 'ok');
    assert.ok(opts.lines.some((l) => l.startsWith('[boom] FAILED: RangeError: no models under /x')));
  });

  it('records a section returning an invalid result as failed, naming the bad field', async () => {
    const bad = { id: 'x', title: 'X', figures: { speed: { nested: 1 } }, tables: [] } as unknown as BenchSection;
    const [result] = await runSections([{ file: 'x.ts', module: { order: 1, run: async () => bad } }], options());
    assert.equal(result.status, 'failed');
    assert.match(result.error ?? '', /invalid section: figures\.speed/);
  });

  it('records a section that never finishes as failed after the timeout and aborts its signal', async () => {
    let signal: AbortSignal | undefined;
    const [result] = await runSections(
      [{ file: 'hang.ts', module: { order: 1, run: (ctx) => { signal = ctx.signal; return new Promise<BenchSection>(() => {}); } } }],
      options({ sectionTimeoutMs: 20 }),
    );
    assert.equal(result.status, 'failed');
    assert.match(result.error ?? '', /hang did not finish within 0 s/);
    assert.equal(signal?.aborted, true);
  });

  it("a section's own longer limit applies to a full run, not to --quick", async () => {
    const slow = { order: 1, timeoutSeconds: 60, run: () => new Promise<BenchSection>((done) => setTimeout(() => done(section('slow')), 50)) };
    const [full] = await runSections([{ file: 'slow.ts', module: slow }], options({ sectionTimeoutMs: 20, quick: false }));
    assert.equal(full.status, 'ok');
    const [quick] = await runSections([{ file: 'slow.ts', module: slow }], options({ sectionTimeoutMs: 20, quick: true }));
    assert.equal(quick.status, 'failed');
  });

  it('leaves the signal of a section that finishes in time unaborted', async () => {
    let signal: AbortSignal | undefined;
    await runSections([{ file: 'ok.ts', module: { order: 1, run: async (ctx) => { signal = ctx.signal; return section('ok'); } } }], options());
    assert.equal(signal?.aborted, false);
  });
});

describe('loadSections', () => {
  it('loads modules exporting order and run, and reports the others as broken', async () => {
    const { dir, cleanup } = tempDir('bench-sections');
    try {
      writeFileSync(join(dir, 'good.ts'), `export const order = 5;\nexport async function run() { return { id: 'good', title: 'Good', figures: {}, tables: [] }; }\n`);
      writeFileSync(join(dir, 'no-run.ts'), `export const order = 1;\n`);
      writeFileSync(join(dir, 'throws.ts'), `throw new Error('cannot import me');\nexport const order = 1;\n`);
      writeFileSync(join(dir, 'notes.md'), 'not a section');
      const { loaded, broken } = await loadSections(dir);
      assert.deepEqual(loaded.map((m) => [m.file, m.module.order]), [['good.ts', 5]]);
      assert.deepEqual(broken.map((b) => b.file), ['no-run.ts', 'throws.ts']);
      assert.match(broken[0].error, /does not export `order: number` and `run\(ctx\)`/);
      assert.match(broken[1].error, /import failed: Error: cannot import me/);
    } finally {
      cleanup();
    }
  });
});

describe('renderMarkdown', () => {
  const results: BenchResults = {
    date: '2026-11-28T13:00:00.000Z',
    quick: true,
    machine: { cpuCores: 2, cpuModel: 'Test CPU', memoryBytes: 8 * 2 ** 30, nodeVersion: 'v20.1.0', platform: 'linux', arch: 'x64', loadAverage1m: 0.5 },
    durationSeconds: 12.5,
    sections: [
      { ...section('speed', { 'fp32 images/s': 1234.567, ratio: 0.4567, missing: null }), file: 'speed.ts', order: 1, status: 'ok', durationSeconds: 3 },
      { id: 'broken', title: 'broken', figures: {}, tables: [], file: 'broken.ts', order: 2, status: 'failed', error: 'Error: a|b', durationSeconds: 0.5 },
    ],
  };

  it('states the machine, date and quick mode, and names failed sections', () => {
    const md = renderMarkdown(results);
    assert.match(md, /^Measured 2026-11-28 on 2 CPU cores \(Test CPU\), 8\.0 GiB memory, Node v20\.1\.0 \(linux\/x64\), load average 0\.500 at start, quick mode/);
    assert.match(md, /2 sections in 12\.50 s, 1 failed \(broken\)\./);
  });

  it('renders figures and tables as markdown tables, escaping pipes and showing null as a dash', () => {
    const md = renderMarkdown(results);
    assert.ok(md.includes('#### Title speed'));
    assert.ok(md.includes('| fp32 images/s | 1235 |'));
    assert.ok(md.includes('| ratio | 0.457 |'));
    assert.ok(md.includes('| missing | – |'));
    assert.ok(md.includes('**speed table**\n\n| a | b |\n| --- | ---: |\n| speed | 1.500 |'));
    assert.ok(md.includes('**Failed** after 0.500 s: Error: a\\|b'));
  });
});

describe('formatNumber', () => {
  const cases: Array<[number, string]> = [
    [42, '42'],
    [1234.5, '1235'],
    [123.45, '123.5'],
    [12.345, '12.35'],
    [0.5, '0.500'],
    [0.001234, '0.00123'],
    [Number.NaN, 'NaN'],
  ];
  for (const [value, text] of cases) it(`formats ${value} as ${text}`, () => assert.equal(formatNumber(value), text));
});

describe('replaceMarkerBlock', () => {
  it('replaces only the text between the markers and keeps them', () => {
    const readme = 'intro\n<!-- bench:start -->\nold table\n<!-- bench:end -->\noutro\n';
    assert.equal(replaceMarkerBlock(readme, 'new table\n'), 'intro\n<!-- bench:start -->\nnew table\n<!-- bench:end -->\noutro\n');
  });

  it('throws InvalidInputError naming the markers when one is missing', () => {
    assert.throws(() => replaceMarkerBlock('no markers here', 'x'), (err: unknown) => err instanceof InvalidInputError && /<!-- bench:start -->/.test(err.message));
    assert.throws(() => replaceMarkerBlock('<!-- bench:end --> <!-- bench:start -->', 'x'), InvalidInputError);
  });
});

describe('joinResults', () => {
  const machine = { cpuCores: 2, cpuModel: 'cpu', memoryBytes: 2 ** 34, nodeVersion: 'v20', platform: 'linux', arch: 'x64', loadAverage1m: 0.5 };
  const run = (date: string, durationSeconds: number, ids: Array<[string, number]>, quick = false): BenchResults => ({
    date,
    quick,
    machine,
    durationSeconds,
    sections: ids.map(([id, order]) => ({ ...section(id), file: `${id}.ts`, order, status: 'ok' as const, durationSeconds: 1 })),
  });

  it('keeps every section once in order, with the earliest start and the longest wall time', () => {
    const joined = joinResults([
      { label: 'a', results: run('2026-01-01T10:05:00Z', 300, [['search', 50], ['bundles', 60]]) },
      { label: 'b', results: run('2026-01-01T10:00:00Z', 900, [['zoo', 10], ['evaluation', 30]]) },
    ]);
    assert.deepEqual(joined.sections.map((s) => s.id), ['zoo', 'evaluation', 'search', 'bundles']);
    assert.equal(joined.date, '2026-01-01T10:00:00Z');
    assert.equal(joined.durationSeconds, 900);
    assert.match(renderMarkdown(joined), /4 sections from 2 runs joined \(bench\/merge\.ts\), each saying when it ran\./);
  });

  it('keeps when each section ran: recorded times as they are, its run\'s start and load for older sections', () => {
    // Prepare
    const later = run('2026-01-03T08:00:00Z', 60, [['evaluation', 30]]);
    later.sections[0] = { ...later.sections[0], startedAt: '2026-01-03T08:00:30.000Z', loadAverage1m: 0.25 };
    const earlier = { ...run('2026-01-01T10:00:00Z', 900, [['zoo', 10], ['search', 50]]), runs: 2 };
    earlier.sections[1] = { ...earlier.sections[1], startedAt: '2026-01-02' };
    // Act
    const joined = joinResults([
      { label: 'earlier', results: earlier },
      { label: 'later', results: later },
    ]);
    const md = renderMarkdown(joined);
    // Assert
    assert.equal(joined.runs, 3);
    assert.deepEqual(joined.sections.map((s) => [s.id, s.startedAt, s.loadAverage1m]), [
      ['zoo', '2026-01-01T10:00:00Z', 0.5],
      ['evaluation', '2026-01-03T08:00:30.000Z', 0.25],
      ['search', '2026-01-02', undefined],
    ]);
    assert.match(md, /^Measured 2026-01-01 to 2026-01-03 on /);
    assert.ok(md.includes('_Section `zoo` (zoo.ts) took 1 s, started 2026-01-01 10:00 UTC at load average 0.500._'));
    assert.ok(md.includes('_Section `evaluation` (evaluation.ts) took 1 s, started 2026-01-03 08:00 UTC at load average 0.250._'));
    assert.ok(md.includes('_Section `search` (search.ts) took 1 s, started 2026-01-02._'));
  });

  it('refuses a section in two runs, mixed modes and no runs, naming the fix', () => {
    const cases: Array<[Parameters<typeof joinResults>[0], RegExp]> = [
      [[{ label: 'a', results: run('d', 1, [['zoo', 1]]) }, { label: 'b', results: run('d', 1, [['zoo', 1]]) }], /section zoo is in both a and b/],
      [[{ label: 'a', results: run('d', 1, [['zoo', 1]]) }, { label: 'b', results: run('d', 1, [['x', 2]], true) }], /mix --quick and full/],
      [[], /no bench runs/],
    ];
    for (const [runs, message] of cases) assert.throws(() => joinResults(runs), (err: Error) => err instanceof InvalidInputError && message.test(err.message));
  });
});
