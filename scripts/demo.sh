#!/usr/bin/env bash
# The main job, locally: build the Lambda packages, then run the pipeline's
# handlers against moto on the sample CNM messages (plus a malformed one) and
# print what happened to each record.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python build.py
exec .venv/bin/python tools/demo.py "$@"
