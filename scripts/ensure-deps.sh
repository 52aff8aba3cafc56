#!/usr/bin/env bash
# Installs the npm dependencies from the lock file when node_modules is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing npm dependencies (npm ci)..."
  # npm >= 11 runs only the install scripts package.json's allowScripts approves (esbuild's);
  # npm 10 runs them all, and onnxruntime-node's would download CUDA libraries that haq does
  # not use (it runs on the CPU): that script reads this variable and skips.
  # aws-local-stepfunctions declares Node >= 22 for one API, Promise.withResolvers, which haq
  # supplies on Node 20 (cli/embedded/polyfill.ts): npm's EBADENGINE notice for it is dropped,
  # every other line of npm's output is kept.
  { ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund 2>&1 1>&3 3>&- \
    | awk -v known="aws-local-stepfunctions" -f scripts/known-engine-warnings.awk 1>&2 3>&-; } 3>&1
fi
