/**
 * The repository files the documentation's `haq` command lines name exist, so that a command
 * copied from README.md or docs/*.md finds its model, data folder and config.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../helpers/cli';

/** `haq ...` / `npx haq ...` lines of a markdown file's code blocks (continuations joined, comments removed). */
export function haqCommandLines(markdown: string): string[] {
  const blocks = [...markdown.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1].replace(/\\\n/g, ' '));
  return blocks
    .flatMap((b) => b.split('\n'))
    .map((line) => line.replace(/^\s*\$\s*/, '').replace(/\s+#.*$/, '').trim())
    .filter((line) => /^(npx )?haq /.test(line));
}

/** Arguments that name a file or folder of the repository (outputs, after --out, excepted). */
export function repositoryPaths(line: string): string[] {
  const words = line.split(/\s+/);
  return words.filter((w, i) => words[i - 1] !== '--out' && /^(\.\/)?(models|docs|bench|test|scripts)\//.test(w));
}

describe('paths in the documentation\'s haq commands', () => {
  it('finds command lines and the paths in them', () => {
    assert.deepEqual(repositoryPaths('npx haq upload models/zoo/x/model.onnx --data models/zoo/data --out models/new'), ['models/zoo/x/model.onnx', 'models/zoo/data']);
    assert.deepEqual(haqCommandLines('text\n```sh\nnpx haq search m.onnx \\\n  --data d   # run it\nnpm test\n```\n'), ['npx haq search m.onnx    --data d']);
  });

  const docs = ['README.md', ...readdirSync(join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  for (const doc of docs) {
    it(`${doc}: every path exists`, () => {
      const missing = haqCommandLines(readFileSync(join(repoRoot, doc), 'utf8')).flatMap((line) =>
        repositoryPaths(line)
          .filter((p) => !existsSync(join(repoRoot, p)))
          .map((p) => `${p} (in: ${line})`),
      );
      assert.deepEqual(missing, []);
    });
  }
});
