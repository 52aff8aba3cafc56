#!/usr/bin/env bash
# Installs the npm dependencies from the lock file when node_modules is missing or was installed
# from another lock file: a stamp holds the lock file's SHA-256 once `npm ci` has succeeded, so a
# checkout that only touches the file's time does not reinstall and an interrupted install does.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.haq-lock.sha256
want=$(node -e "process.stdout.write(require('crypto').createHash('sha256').update(require('fs').readFileSync('package-lock.json')).digest('hex'))")
# Installed by hand (npm ci, no stamp) after the lock file last changed: take it as current.
if [ -d node_modules ] && [ ! -f "$stamp" ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "$want" > "$stamp"
fi
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "installing npm dependencies (npm ci)..."
  # npm >= 11 runs only the install scripts package.json's allowScripts approves (esbuild's);
  # npm 10 runs them all, and onnxruntime-node's would download CUDA libraries that haq does
  # not use (it runs on the CPU): that script reads this variable and skips.
  # aws-local-stepfunctions declares Node >= 22 for one API, Promise.withResolvers, which haq
  # supplies on Node 20 (cli/embedded/polyfill.ts): npm's EBADENGINE notice for it is dropped,
  # every other line of npm's output is kept.
  { ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund 2>&1 1>&3 3>&- \
    | awk -v known="aws-local-stepfunctions" -f scripts/known-engine-warnings.awk 1>&2 3>&-; } 3>&1
  echo "$want" > "$stamp"
fi
