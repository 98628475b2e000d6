#!/usr/bin/env bash
# Create .venv with the pinned dev and runtime dependencies from pyproject.toml,
# and .tools/checkov with checkov in a venv of its own (its pins clash with ours).
# Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python - <<'PYCODE' > .venv/requirements.txt
import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["cli"] + p["optional-dependencies"]["dev"]))
PYCODE
if ! cmp -s .venv/requirements.txt .venv/installed.txt 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r .venv/requirements.txt
  cp .venv/requirements.txt .venv/installed.txt
fi
# The project itself (editable, dependencies installed above): the `cnm-ingest` CLI on .venv/bin.
[[ -x .venv/bin/cnm-ingest ]] || .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
CHECKOV_VERSION=3.3.30
if [[ "$(.tools/checkov/bin/checkov --version 2>/dev/null)" != "$CHECKOV_VERSION" ]]; then
  "$PY" -m venv .tools/checkov
  .tools/checkov/bin/python -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi
