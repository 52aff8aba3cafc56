#!/usr/bin/env bash
# Installs LocalStack (no Docker) into test/localstack/.venv: a Python >= 3.12 virtualenv with
# a pinned localstack-core[runtime] and our host-Node Lambda runtime executor (plugin/).
# Idempotent: a second run only re-checks the pins. Prints how long it took.
#
# Python: HAQ_LOCALSTACK_PYTHON, else python3.13 / python3.12 on PATH, else a pyenv build
# under ~/.pyenv/versions/3.13* or 3.12*, else a CPython 3.13 fetched with uv (fetch_python;
# HAQ_LOCALSTACK_FETCH_PYTHON=1 forces that route). localstack-core 2026.x imports 3.12+ syntax
# (its metadata says >= 3.10, but it fails on import under 3.11).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
LOCALSTACK_VERSION="${HAQ_LOCALSTACK_VERSION:-2026.3.0}"
start_s=$(date +%s)

find_python() {
  local candidates=()
  [[ -n "${HAQ_LOCALSTACK_PYTHON:-}" ]] && candidates+=("$HAQ_LOCALSTACK_PYTHON")
  candidates+=(python3.13 python3.12)
  local d
  for d in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13* "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*; do
    [[ -x "$d/bin/python3" ]] && candidates+=("$d/bin/python3")
  done
  candidates+=(python3)
  local c
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 &&
      "$c" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

stamp="$venv/.haq-setup-$LOCALSTACK_VERSION"
plugin_hash=$(cat "$here/constraints.txt" "$here/plugin/pyproject.toml" "$here"/plugin/haq_localstack/*.py "$here"/plugin/haq_localstack/*.mjs | sha256sum | cut -c1-16)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$plugin_hash" && -x "$venv/bin/python" ]]; then
  echo "localstack setup: up to date (localstack-core $LOCALSTACK_VERSION, $("$venv/bin/python" --version)), $(($(date +%s) - start_s)) s"
  exit 0
fi

# No Python >= 3.12 on the machine: fetch a standalone CPython 3.13 with uv (from PyPI,
# pinned), installed under test/localstack/.python (git-ignored). Needs some python3 with venv.
fetch_python() {
  local boot uv_venv="$here/.uv"
  boot=$(command -v python3) || return 1
  echo "localstack setup: no Python >= 3.12 found; fetching CPython 3.13 with uv==$UV_VERSION" >&2
  [[ -x "$uv_venv/bin/uv" ]] || { "$boot" -m venv "$uv_venv" && "$uv_venv/bin/pip" -q --disable-pip-version-check install "uv==$UV_VERSION"; } >&2 || return 1
  UV_PYTHON_INSTALL_DIR="$here/.python" "$uv_venv/bin/uv" python install 3.13 >&2 || return 1
  UV_PYTHON_INSTALL_DIR="$here/.python" "$uv_venv/bin/uv" python find --managed-python 3.13
}
UV_VERSION=0.13.9

if [[ ! -x "$venv/bin/python" ]]; then
  if [[ "${HAQ_LOCALSTACK_FETCH_PYTHON:-}" == 1 ]] || ! python=$(find_python); then
    if ! python=$(fetch_python); then
      echo "localstack setup: no Python >= 3.12 found and fetching one with uv failed. Install one" >&2
      echo "(e.g. 'pyenv install 3.13' or 'apt-get install python3.13-venv') or set HAQ_LOCALSTACK_PYTHON=/path/to/python3.13." >&2
      exit 1
    fi
  fi
  echo "localstack setup: creating $venv with $python ($("$python" --version))"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip >/dev/null
echo "localstack setup: installing localstack-core[runtime]==$LOCALSTACK_VERSION and the haq runtime executor"
# Build the plugin from a copy: an in-tree build leaves build/ and *.egg-info/ behind.
build_dir=$(mktemp -d)
trap 'rm -rf "$build_dir"' EXIT
cp -r "$here/plugin" "$build_dir/plugin"
# constraints.txt pins the few dependencies whose newest releases break this localstack-core.
"${pip[@]}" install -c "$here/constraints.txt" "localstack-core[runtime]==$LOCALSTACK_VERSION" service_identity
"${pip[@]}" install --force-reinstall --no-deps "$build_dir/plugin"
# plux caches entry points; a stale cache hides a newly installed executor.
rm -rf "$HOME/.cache/plux"
"$venv/bin/python" - <<'EOF'
from importlib.metadata import entry_points
names = [e.name for e in entry_points(group="localstack.lambda.runtime_executor")]
assert "haq-node" in names, f"haq-node executor not registered, found {names}"
hooks = [e.name for e in entry_points(group="localstack.hooks.on_runtime_create")]
assert "haq_keep_idle_connections_open" in hooks, f"haq gateway hook not registered, found {hooks}"
EOF
echo "$plugin_hash" >"$stamp"
echo "localstack setup: done in $(($(date +%s) - start_s)) s ($("$venv/bin/python" --version), localstack-core $LOCALSTACK_VERSION)"
