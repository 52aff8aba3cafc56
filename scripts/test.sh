#!/usr/bin/env bash
# Every test: lint, typecheck, then node's test runner over test/ (unit, workflow, infra),
# then the LocalStack end-to-end suite. Prints node's pass/fail summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
echo "== lint"; npx eslint . --max-warnings=0
echo "== typecheck"; npx tsc --noEmit -p .
mapfile -t files < <(find test -name '*.test.ts' -not -path 'test/localstack/*' | sort)
echo "== tests (${#files[@]} files)"
node --import tsx --test --test-reporter=spec --test-concurrency=2 "${files[@]}"
