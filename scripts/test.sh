#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set up, build the Lambda packages,
# build the AWS provider into the local Terraform mirror if it is not cached
# (tens of minutes the first time on 2 cores, then cached outside the repo),
# and run pytest (handlers with moto, the workflow in moto's Step Functions
# interpreter, build determinism, Terraform fmt/validate/plan, checkov, docs,
# ruff, mypy and tflint: tools/tflint.sh builds tflint from the Go module proxy
# the first time, minutes, then cached outside the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
# The Go builds (the AWS provider, tflint, the lowest Terraform the module claims: tens of minutes the
# first time on 2 cores, then cached outside the repo) start first, in the background, so that the
# Python setup and the package build run beside them; pytest starts when all three are there.
tools/terraform-provider.sh >/dev/null &
provider=$!
tools/tflint.sh --path >/dev/null &
tflint=$!
tools/terraform-min.sh >/dev/null &
terraform_min=$!
bash scripts/setup.sh
.venv/bin/python build.py
wait "$provider"
wait "$tflint"
wait "$terraform_min"
exec .venv/bin/python -m pytest "$@"
