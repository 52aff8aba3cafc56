#!/usr/bin/env bash
# The LocalStack end-to-end suite: install (setup.sh, idempotent), start one LocalStack,
# run every test/localstack/*.test.ts (or the files given as arguments) against it with
# node's test runner, stop it (its log is kept under .localstack/logs/ on failure).
# Prints the setup time, the suite time and node's test summary.
#   bash test/localstack/run.sh                                    # the whole suite
#   bash test/localstack/run.sh test/localstack/executor.test.ts   # one file
set -euo pipefail
cd "$(dirname "$0")/../.."
# The SDK warns once per process that releases after January 2027 need Node 22; on Node 20
# that is noise in every test file's output.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
t0=$(date +%s)
bash test/localstack/setup.sh
t1=$(date +%s)
echo "== haq-node executor unit tests (Python)"
test/localstack/.venv/bin/python -m unittest discover -s test/localstack/plugin/tests
if [[ $# -gt 0 ]]; then files=("$@"); else mapfile -t files < <(find test/localstack -maxdepth 1 -name '*.test.ts' | sort); fi
echo "== localstack suite (${#files[@]} files)"
status=0
# One file at a time: the machine has 2 cores, and LocalStack plus the Lambda processes use both.
npx tsx test/localstack/harness.ts run -- \
  node --import tsx --test --test-reporter=spec --test-concurrency=1 "${files[@]}" || status=$?
t2=$(date +%s)
echo "localstack: setup $((t1 - t0)) s, suite $((t2 - t1)) s (exit $status)"
exit $status
