#!/usr/bin/env bash
# Installs onnxruntime's Python quantizer into scripts/ort-quantize/.venv (git-ignored) from
# PyPI, pinned in requirements.txt. Idempotent: a second run only checks the stamp. Prints the
# venv's python on stdout (the bench runs quantize.py with it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
stamp="$venv/.haq-requirements"
want=$(sha256sum "$here/requirements.txt" | cut -c1-16)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" ]]; then
  echo "$venv/bin/python"
  exit 0
fi
python=${HAQ_ORT_PYTHON:-python3}
command -v "$python" >/dev/null || { echo "ort-quantize setup: no $python on PATH; set HAQ_ORT_PYTHON=/path/to/python3 (3.10+)" >&2; exit 1; }
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv" >&2
"$venv/bin/pip" -q --disable-pip-version-check install -r "$here/requirements.txt" >&2
echo "$want" >"$stamp"
echo "$venv/bin/python"
