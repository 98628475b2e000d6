#!/usr/bin/env bash
# TFLint, built from the Go module proxy into a cache outside the repo, run over every configuration.
#
#   tools/tflint.sh          # build if absent, then lint the root module, modules/* and examples/*
#   tools/tflint.sh --path   # build if absent, print the binary's path
#
# Rules: TFLint's bundled terraform ruleset (.tflint.hcl). The AWS ruleset
# (github.com/terraform-linters/tflint-ruleset-aws) is a plugin binary that the
# Go module proxy reachable here refuses (403 "This module version is not
# available" for its version list, @latest and exact release versions), and
# TFLint's own plugin installer downloads release binaries from GitHub, which
# cannot be reached; so it is not used.
#
# The build runs at the lowest priority, one package at a time, so that it can
# share a small machine with other work: measured on 2 busy cores
# (/usr/bin/time -v tools/tflint.sh --path), 429 s wall, 94 s user CPU,
# 0.84 GB peak memory, a 54 MB binary; later runs find it cached. The root
# module reads build/manifest.json: run build.py first.
set -euo pipefail

TFLINT_VERSION="${TFLINT_VERSION:-v0.64.0}"
CACHE="${CNM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cnm-ingest/tools}"
BIN="$CACHE/tflint-$TFLINT_VERSION"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

if [[ ! -x "$BIN" ]]; then
  command -v go >/dev/null || { echo "go is required to build tflint" >&2; exit 1; }
  mkdir -p "$CACHE"
  tmp="$(mktemp -d "$CACHE/build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "building tflint $TFLINT_VERSION from the Go module proxy into $CACHE" >&2
  start=$(date +%s)
  GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n 19 go install -p 1 -trimpath -ldflags="-s -w" \
    "github.com/terraform-linters/tflint@$TFLINT_VERSION" >&2
  mv "$tmp/tflint" "$BIN"
  echo "built in $(( $(date +%s) - start ))s" >&2
fi

if [[ "${1:-}" == "--path" ]]; then
  echo "$BIN"
  exit 0
fi

cd "$ROOT"
export TFLINT_CONFIG_FILE="$ROOT/.tflint.hcl"
status=0
for dir in . modules/* examples/*; do
  [[ -n "$(ls "$dir"/*.tf 2>/dev/null)" ]] || continue
  "$BIN" --chdir="$dir" --format=compact "$@" || status=$?
done
exit "$status"
