#!/usr/bin/env bash
# The whole test suite, from a fresh clone, in two stages; each prints its wall time.
#
#   bash scripts/test.sh [pytest options]     # e.g. -q, -x, --durations=20 (given to both pytest runs)
#
# Stage 1, fast, stops the run on a failure: ruff check, ruff format --check, mypy, terraform fmt
# (the hooks of .pre-commit-config.yaml, run as commands) and the unit tier (pytest tests/unit).
# It does not wait for the Go builds.
# Stage 2, everything else: the Lambda packages are built, the Go builds are waited for, and pytest
# runs every other tier (functional, localaws, ingest, terraform, e2e) and the tflint hook. Nothing
# of stage 1 runs again.
#
# The Go builds (the AWS provider into the local Terraform mirror, tflint, the lowest Terraform the
# module claims: tens of minutes the first time on 2 cores, then cached outside the repo) start
# first, in the background, beside stage 1; only stage 2 needs them. When stage 1 fails they carry
# on in the background and are cached for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/terraform-provider.sh >/dev/null &
provider=$!
tools/tflint.sh --path >/dev/null &
tflint=$!
tools/terraform-min.sh >/dev/null &
terraform_min=$!

stage_time() { printf '== stage %s: %d min %02d s\n' "$1" $(($2 / 60)) $(($2 % 60)); }

# --- stage 1: lint, types, the unit tier ------------------------------------------------------------
SECONDS=0
bash scripts/setup.sh
.venv/bin/python -m ruff check --force-exclude
.venv/bin/python -m ruff format --check
.venv/bin/python -m mypy
.venv/bin/python tools/tf.py fmt -check -recursive
# the hooks just run as commands, and tflint (stage 2: it waits for its build), are not run again here
lint=tests/unit/tooling/test_lint.py::test_hook_passes
.venv/bin/python -m pytest tests/unit \
  --deselect "$lint[ruff]" --deselect "$lint[mypy]" --deselect "$lint[terraform-fmt]" --deselect "$lint[tflint]" \
  "$@"
stage_time "1 (lint, types, unit)" "$SECONDS"

# --- stage 2: the rest ------------------------------------------------------------------------------
SECONDS=0
.venv/bin/python build.py >/dev/null
wait "$provider"
wait "$tflint"
wait "$terraform_min"
rest=()
for dir in tests/*/; do
  case "$dir" in tests/unit/ | tests/__*) ;; *) rest+=("${dir%/}") ;; esac
done
status=0
.venv/bin/python -m pytest "${rest[@]}" "$lint[tflint]" "$@" || status=$?
stage_time "2 (functional, localaws, ingest, terraform, e2e)" "$SECONDS"
exit "$status"
