#!/usr/bin/env bash
# The checks this repository's CI runs (.github/workflows/terraform.yml), the same steps
# from a laptop:
#
#   ci/check.sh [ENV]        ENV: sit (default), uat or prod -> env/ENV.tfvars
#
# Steps, each timed: terraform fmt -check, init, validate, tflint (with the module-pinning
# rule, .tflint.hcl), checkov (the release's modules too: --download-external-modules) and
# plan -detailed-exitcode. fmt, validate, tflint and checkov all run even when one fails,
# so one run shows every problem; nothing runs after a failed init; the exit status is 1
# when any step failed. The plan is written to tfplan (apply it with `terraform apply tfplan`).
#
# The tools come from the environment, each a command with its arguments if need be:
#   TERRAFORM   default: terraform
#   TFLINT      default: tflint
#   CHECKOV     default: checkov
#   INIT_ARGS   extra `terraform init` arguments, e.g. -backend-config=... (default: none)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ENV_NAME="${1:-sit}"
VAR_FILE="env/${ENV_NAME}.tfvars"
[[ -f "$VAR_FILE" ]] || { echo "ci/check.sh: no $VAR_FILE (environments: $(ls env | sed 's/\.tfvars$//' | tr '\n' ' '))" >&2; exit 2; }

read -r -a TERRAFORM <<<"${TERRAFORM:-terraform}"
read -r -a TFLINT <<<"${TFLINT:-tflint}"
read -r -a CHECKOV <<<"${CHECKOV:-checkov}"
read -r -a INIT_ARGS <<<"${INIT_ARGS:-}"
export TF_IN_AUTOMATION=1 TF_INPUT=0

failed=()
summary=()

# step NAME COMMAND...: run it, print its time and result; remember a failure.
step() {
  local name="$1" start end rc
  shift
  echo "::group::$name: $*"
  start=$(date +%s%N)
  "$@"
  rc=$?
  end=$(date +%s%N)
  echo "::endgroup::"
  local seconds
  seconds=$(awk -v ns=$((end - start)) 'BEGIN { printf "%.1f", ns / 1e9 }')
  summary+=("$(printf '%-9s %7ss  %s' "$name" "$seconds" "$([[ $rc -eq 0 ]] && echo ok || echo "FAILED (exit $rc)")")")
  echo "step $name: ${seconds}s, exit $rc"
  [[ $rc -eq 0 ]] || failed+=("$name")
  return "$rc"
}

# plan -detailed-exitcode: 0 = no changes, 2 = changes (both fine), 1 = error.
plan() {
  "${TERRAFORM[@]}" plan -input=false -lock=false -no-color -detailed-exitcode -var-file="$VAR_FILE" -out=tfplan
  local rc=$?
  [[ $rc -eq 2 ]] && echo "plan: changes to apply (exit 2)" && return 0
  return "$rc"
}

report() {
  echo
  echo "ci/check.sh $ENV_NAME"
  printf '%s\n' "${summary[@]}"
  if ((${#failed[@]})); then
    echo "FAILED: ${failed[*]}"
    exit 1
  fi
  echo "all steps passed"
}

step fmt "${TERRAFORM[@]}" fmt -check -recursive -diff
if ! step init "${TERRAFORM[@]}" init -input=false -no-color "${INIT_ARGS[@]}"; then
  report
fi
step validate "${TERRAFORM[@]}" validate -no-color
step tflint "${TFLINT[@]}" --format=compact
# checkov reads the modules `init` installed (.terraform/modules/modules.json) rather than fetching
# them again itself: it cannot fetch a release archive (an http source) on its own.
CHECKOV_EXPERIMENTAL_TERRAFORM_MANAGED_MODULES=true \
  step checkov "${CHECKOV[@]}" --directory . --framework terraform --download-external-modules true --compact --quiet
step plan plan
report
