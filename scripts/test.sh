#!/usr/bin/env bash
# The whole test suite, from a fresh clone, in two stages; each prints its wall time.
#
#   bash scripts/test.sh [pytest options]     # e.g. -q, -x, --durations=20 (given to every pytest run)
#   STAGES=1 bash scripts/test.sh -q          # stage 1 only; STAGES=2: stage 2 only
#
# Stage 1, fast, stops the run on a failure: ruff check, ruff format --check, mypy, terraform fmt
# (the hooks of .pre-commit-config.yaml, run as commands) and the unit tier (pytest tests/unit).
# It does not wait for the Go builds.
# Stage 2, everything else: the Lambda packages are built, the Go builds are waited for, and four
# pytest processes run side by side: the tiers on the applied stacks in two (functional and localaws;
# e2e and ingest), the Terraform tier with the tflint hook, and the destroy test. Nothing of stage 1 runs again.
#
# On a warm machine the examples' apply, which stage 2 shares, starts beside stage 1 (tests/share_apply.py).
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

STAGES="${STAGES:-12}"
lint=tests/unit/tooling/test_lint.py::test_hook_passes
SECONDS=0
bash scripts/setup.sh
plugin_cache="$(.venv/bin/python -c 'import sys; sys.path.insert(0, "tools"); import tf; print(tf.CACHE_DIR / "plugin-cache")')"
# The first pytest process to need the applied examples applies them and shares that apply here; the others load it
# (tests/worlds.py: the local AWS's snapshot, the staged examples, their Terraform state).
CNM_SHARED_APPLY="$(mktemp -d "${TMPDIR:-/tmp}/cnm-ingest-applied.XXXXXX")"
export CNM_SHARED_APPLY
early=""
stop_early() { [[ -z "$early" ]] || kill -- "-$early" 2>/dev/null || true; }
trap 'stop_early; rm -rf "$CNM_SHARED_APPLY"' EXIT
# On a warm machine (the provider built and in Terraform's plugin cache, its build job already done) the apply starts
# now, beside stage 1, in a process of its own (tests/share_apply.py, its own local AWS): it mostly waits on the
# provider while stage 1 keeps a core busy, and stage 2's processes load it instead of waiting for it. When stage 1
# fails it is stopped. On a fresh machine the first stage-2 process applies, once the Go builds are done.
if [[ "$STAGES" == *2* ]] && ! kill -0 "$provider" 2>/dev/null &&
  compgen -G "$plugin_cache/registry.terraform.io/hashicorp/aws/*" >/dev/null; then
  early_log="$(mktemp "${TMPDIR:-/tmp}/cnm-ingest-apply.XXXXXX")"
  setsid bash -c '.venv/bin/python build.py >/dev/null && touch "$CNM_SHARED_APPLY/built" &&
    CNM_PACKAGES_BUILT=1 .venv/bin/python -m pytest -q -p no:cacheprovider tests/share_apply.py >"$1" 2>&1' \
    _ "$early_log" &
  early=$!
fi

# --- stage 1: lint, types, the unit tier ------------------------------------------------------------
if [[ "$STAGES" == *1* ]]; then
  .venv/bin/python -m ruff check --force-exclude
  .venv/bin/python -m ruff format --check
  .venv/bin/python -m mypy
  .venv/bin/python tools/tf.py fmt -check -recursive
  # the hooks just run as commands, and tflint (stage 2: it waits for its build), are not run again here
  .venv/bin/python -m pytest tests/unit \
    --deselect "$lint[ruff]" --deselect "$lint[mypy]" --deselect "$lint[terraform-fmt]" --deselect "$lint[tflint]" \
    "$@"
  stage_time "1 (setup, lint, types, unit)" "$SECONDS"
fi
[[ "$STAGES" == *2* ]] || exit 0

# --- stage 2: the rest ------------------------------------------------------------------------------
# Four pytest processes side by side, each with its own local AWS (every process has its own moto); one apply of
# the examples (beside stage 1, or by whichever process needs it first), loaded by the others (CNM_SHARED_APPLY):
#   localaws and functional (localaws first: it needs no applied stack);
#   e2e, ingest (the fault matrix but for one case) and the Terraform tests that read the applied stacks (the
#   moto server, the runtime and the Step Functions interpreter share one process and one GIL: one such process
#   uses about one core);
#   the Terraform tier (plans, the release, checkov, tflint, the upgrade from the old code; mostly waits on the
#   provider);
#   the chaos soak's two seeds, the fault matrix's "persistent throttle" case, the table upgrade
#   (tests/terraform/test_table_upgrade.py: an apply of its own) and, last, the one destroy test (about 4 minutes
#   of the provider's waits).
# Side by side only once Terraform's plugin cache holds the provider: two inits filling an empty cache at once
# collide (then the groups run one after the other).
SECONDS=0
if [[ -n "$early" ]]; then # the early apply's job built the packages first: wait for that (seconds)
  while [[ ! -e "$CNM_SHARED_APPLY/built" ]] && kill -0 "$early" 2>/dev/null; do sleep 1; done
fi
[[ -e "$CNM_SHARED_APPLY/built" ]] || .venv/bin/python build.py >/dev/null
export CNM_PACKAGES_BUILT=1 # the pytest processes read these packages instead of building them again (tests/worlds.py)
wait "$provider"
wait "$tflint"
wait "$terraform_min"
applied_e2e=()
applied_rest=(tests/localaws) # first: its tests need no applied stack, so they run while another process applies
for dir in tests/*/; do
  case "$dir" in
    tests/unit/ | tests/terraform/ | tests/localaws/ | tests/__*) ;;
    tests/e2e/ | tests/ingest/) applied_e2e+=("${dir%/}") ;;
    *) applied_rest+=("${dir%/}") ;;
  esac
done
destroy=tests/e2e/test_destroy.py
tables=tests/terraform/test_table_upgrade.py # an apply of the module's old tables and the upgrade: minutes of waits
plans=("$lint[tflint]")
for file in tests/terraform/test_*.py; do
  if [[ "$file" == "$tables" ]]; then
    continue
  elif grep -qE '(complete|minimal)_(stack|world|applied)|applied_examples|applied_snapshot' "$file"; then
    applied_e2e+=("$file")
  else
    plans+=("$file")
  fi
done
# moved out of the e2e process, by measured time (each is minutes of faults and waits): the chaos soak's two seeds
# and the fault matrix's second longest case to the destroy's process (which otherwise waits on the provider)
soak="tests/ingest/test_chaos_soak.py::test_chaos_soak"
matrix="tests/ingest/test_fault_matrix.py::test_fault_matrix"
throttled="$matrix[persistent throttle at 30 -> hydrate]"
destroying=("$destroy" "$soak[seed-1]" "$soak[seed-2]" "$throttled" "$tables") # the destroy runs last (e2e/conftest.py)
not_e2e=(--ignore="$destroy")
for moved in "$soak[seed-1]" "$soak[seed-2]" "$throttled"; do not_e2e+=(--deselect="$moved"); done
status=0
group() { # name, log, pytest arguments...: one pytest process, its wall time appended to its log
  local name=$1 log=$2 start=$SECONDS rc=0
  shift 2
  if [[ "$log" == */functional.log ]]; then # the one in the foreground shows its progress as it goes
    .venv/bin/python -m pytest "$@" 2>&1 | tee "$log" || rc=$?
  else
    .venv/bin/python -m pytest "$@" >"$log" 2>&1 || rc=$?
  fi
  printf '== %s: %d min %02d s (exit %d)\n' "$name" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$rc" >>"$log"
  return "$rc"
}
logs="$(mktemp -d "${TMPDIR:-/tmp}/cnm-ingest-stage2.XXXXXX")"
names=(
  [0]="functional, localaws"
  [1]="e2e, ingest and the Terraform tests on the applied stacks"
  [2]="the Terraform tier"
  [3]="the chaos seeds, a fault-matrix case, the table upgrade, the destroy"
)
if compgen -G "$plugin_cache/registry.terraform.io/hashicorp/aws/*" >/dev/null; then
  pids=()
  group "${names[3]}" "$logs/destroy.log" "${destroying[@]}" "$@" &
  pids+=($!)
  group "${names[2]}" "$logs/terraform.log" "${plans[@]}" "$@" &
  pids+=($!)
  group "${names[1]}" "$logs/e2e.log" "${applied_e2e[@]}" "${not_e2e[@]}" "$@" &
  pids+=($!)
  group "${names[0]}" "$logs/functional.log" "${applied_rest[@]}" "$@" || status=$?
  for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
else
  group "${names[0]}" "$logs/functional.log" "${applied_rest[@]}" "$@" || status=$?
  group "${names[1]}" "$logs/e2e.log" "${applied_e2e[@]}" "${not_e2e[@]}" "$@" || status=$?
  group "${names[2]}" "$logs/terraform.log" "${plans[@]}" "$@" || status=$?
  group "${names[3]}" "$logs/destroy.log" "${destroying[@]}" "$@" || status=$?
fi
if [[ -n "$early" ]]; then # the early apply ended before any stage-2 process loaded it (they wait on its lock)
  early_rc=0
  wait "$early" || early_rc=$?
  early=""
  echo "== the shared apply, beside stage 1 (exit $early_rc; its log: $early_log)"
  tail -n 5 "$early_log"
  [[ "$early_rc" == 0 ]] || status=$early_rc
fi
for log in e2e terraform destroy; do
  echo "== $log (ran beside the above; its log: $logs/$log.log)"
  cat "$logs/$log.log"
done
tail -n 1 "$logs/functional.log"
stage_time "2 (functional, localaws | e2e, ingest | the Terraform tier | the chaos soak, the destroy)" "$SECONDS"
exit "$status"
