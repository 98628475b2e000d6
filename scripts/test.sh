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
bash scripts/setup.sh
.venv/bin/python build.py
# The lowest Terraform the module claims (tests/terraform/test_min_versions.py), built at the lowest
# priority in the background next to the provider and tflint (minutes the first time, then cached).
tools/terraform-min.sh >/dev/null &
terraform_min=$!
tools/terraform-provider.sh >/dev/null
tools/tflint.sh --path >/dev/null
wait "$terraform_min"
exec .venv/bin/python -m pytest "$@"
