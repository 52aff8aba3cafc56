#!/usr/bin/env bash
# Every test: lint, typecheck, node's test runner over test/ (unit, cli, workflow, infra),
# then the LocalStack end-to-end suite (test/localstack/run.sh: installs and starts LocalStack
# on this host). Ends with one line counting both suites: "tests: N passed, M failed".
#   HAQ_SKIP_LOCALSTACK=1 npm test   # everything but the LocalStack suite (a faster inner loop)
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh || exit 1
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
status=0

echo "== lint"; npx eslint . --max-warnings=0 || status=1
echo "== typecheck"; npx tsc --noEmit -p . || status=1

mapfile -t files < <(find test -name '*.test.ts' -not -path 'test/localstack/*' | sort)
echo "== tests (${#files[@]} files)"
node --import tsx --test --test-reporter=spec --test-concurrency=2 "${files[@]}" 2>&1 | tee "$logs/main.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

if [ "${HAQ_SKIP_LOCALSTACK:-}" = "1" ]; then
  echo "== localstack suite skipped (HAQ_SKIP_LOCALSTACK=1)"
else
  echo "== localstack suite"
  bash test/localstack/run.sh 2>&1 | tee "$logs/localstack.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

# node's spec reporter closes each run with "ℹ pass N" / "ℹ fail N": add them up.
count() { grep -h -E "^ℹ $1 [0-9]+$" "$logs"/*.log 2>/dev/null | awk '{s += $3} END {print s + 0}'; }
passed=$(count pass); failed=$(count fail)
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1   # lint/typecheck/setup failures count as one
echo "tests: $passed passed, $failed failed"
exit "$status"
