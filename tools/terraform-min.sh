#!/usr/bin/env bash
# The lowest Terraform the module claims (versions.tf `required_version`),
# built from the Go module proxy into a cache outside the repo, like the AWS
# provider (tools/terraform-provider.sh) and tflint (tools/tflint.sh).
# tests/terraform/test_min_versions.py runs validate and plan of both examples
# with it.
#
#   tools/terraform-min.sh           # build if absent, print the binary's path
#   tools/terraform-min.sh version   # build if absent, then run it with these arguments
#
# The build runs at the lowest priority, one package at a time, so that it can
# share a small machine with the provider build (scripts/test.sh starts it in
# the background next to that one). Later runs find it cached.
set -euo pipefail

TERRAFORM_MIN_VERSION="${TERRAFORM_MIN_VERSION:-v1.5.7}"
CACHE="${CNM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cnm-ingest/tools}"
BIN="$CACHE/terraform-${TERRAFORM_MIN_VERSION#v}"

if [[ ! -x "$BIN" ]]; then
  command -v go >/dev/null || { echo "go is required to build terraform $TERRAFORM_MIN_VERSION" >&2; exit 1; }
  mkdir -p "$CACHE"
  tmp="$(mktemp -d "$CACHE/build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "building terraform $TERRAFORM_MIN_VERSION from the Go module proxy into $CACHE" >&2
  start=$(date +%s)
  GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n 19 go install -p 1 -trimpath -ldflags="-s -w" \
    "github.com/hashicorp/terraform@$TERRAFORM_MIN_VERSION" >&2
  mv "$tmp/terraform" "$BIN"
  echo "built in $(( $(date +%s) - start ))s" >&2
fi

if [[ $# -eq 0 ]]; then
  echo "$BIN"
  exit 0
fi
exec "$BIN" "$@"
