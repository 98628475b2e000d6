#!/usr/bin/env bash
# Create .venv with the pinned dev and runtime dependencies from pyproject.toml,
# and .tools/checkov with checkov in a venv of its own (its pins clash with ours).
# Idempotent: re-running only installs what changed.
#
# The installs are made by uv (pinned below, itself installed once into the tools cache outside the repo, as the
# Go builds are): it installs from its own cache (~/.cache/uv) by linking, so a fresh clone on a warm machine is set
# up in seconds, where pip took about 100 s of CPU to unpack and compile the same wheels again. The versions are
# pyproject.toml's pins either way (same resolution as pip: the highest versions that fit). Bytecode is compiled on
# first import, not at install. When uv cannot be installed (no index), pip does the installs as before.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
UV_VERSION=0.13.10
CACHE="${CNM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cnm-ingest/tools}"
UV="$CACHE/uv-$UV_VERSION/bin/uv"
if [[ ! -x "$UV" ]]; then
  mkdir -p "$CACHE"
  tmp="$(mktemp -d "$CACHE/uv.XXXXXX")"
  if "$PY" -m venv "$tmp" && "$tmp/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"; then
    rm -rf "$CACHE/uv-$UV_VERSION" && mv "$tmp" "$CACHE/uv-$UV_VERSION"
    # a venv's scripts name their interpreter by absolute path: uv runs standalone, so the binary needs none
  else
    rm -rf "$tmp"
  fi
fi
install() { # python, pip arguments...: into that interpreter's environment, by uv when it is there
  local python=$1
  shift
  if [[ -x "$UV" ]]; then
    "$UV" pip install --quiet --python "$python" "$@"
  else
    "$python" -m pip install --quiet --disable-pip-version-check "$@"
  fi
}
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python - <<'PYCODE' > .venv/requirements.txt
import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["cli"] + p["optional-dependencies"]["dev"]))
PYCODE
if ! cmp -s .venv/requirements.txt .venv/installed.txt 2>/dev/null; then
  install .venv/bin/python -r .venv/requirements.txt
  cp .venv/requirements.txt .venv/installed.txt
fi
# The project itself (editable, dependencies installed above): the `cnm-ingest` CLI on .venv/bin.
[[ -x .venv/bin/cnm-ingest ]] || install .venv/bin/python --no-deps -e .
CHECKOV_VERSION=3.3.30
# (the version installed is noted in a file: `checkov --version` takes seconds to start)
if [[ "$(cat .tools/checkov/installed.txt 2>/dev/null)" != "$CHECKOV_VERSION" ]]; then
  "$PY" -m venv .tools/checkov
  install .tools/checkov/bin/python "checkov==$CHECKOV_VERSION"
  .tools/checkov/bin/checkov --version >.tools/checkov/installed.txt
fi
