/**
 * One model of the search-quality section in a process of its own (the section runs up to
 * `workers` of these at once):
 *
 *   node --import tsx bench/search-quality-worker.ts <spec.json>
 *     spec: {root, settings, model, out}; measures the model's rows and writes them to `out`
 *     as JSON; progress lines go to stdout.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { measureModel, type SearchQualitySettings } from './sections/search-quality';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8')) as { root: string; settings: SearchQualitySettings; model: string; out: string };
const result = await measureModel({ root: spec.root, log: (line) => console.log(line) }, spec.settings, spec.model);
writeFileSync(spec.out, JSON.stringify(result));
