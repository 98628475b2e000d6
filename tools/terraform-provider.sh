#!/usr/bin/env bash
# Build hashicorp/terraform-provider-aws from the Go module proxy and install it
# into a local Terraform filesystem mirror, so `terraform init` works offline.
#
#   tools/terraform-provider.sh            # build if absent, print the mirror dir
#
# The provider's module path has no /v6 suffix, so its v6 tags cannot be
# required directly: we require a commit by pseudo-version from a wrapper
# module and build the provider's main package from there.
set -euo pipefail

PROVIDER_COMMIT_VERSION="${PROVIDER_COMMIT_VERSION:-v1.60.1-0.20260602190131-5f2286d6d836}"
# The commit above is the provider's main branch on 2026-06-02: release 6.47.0
# plus changes its CHANGELOG.md lists under "6.48.0 (Unreleased)". The Go module
# proxy reachable here serves that pseudo-version and refuses the v6 tags. It is
# installed in the mirror as 6.47.0, the release it is built on, because
# Terraform's version constraints only match release versions.
PROVIDER_VERSION="${PROVIDER_VERSION:-6.47.0}"
CACHE_DIR="${CNM_TF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cnm-ingest/terraform}"
MIRROR="$CACHE_DIR/mirror"
DEST="$MIRROR/registry.terraform.io/hashicorp/aws/$PROVIDER_VERSION/linux_amd64"
BIN="$DEST/terraform-provider-aws_v$PROVIDER_VERSION"

if [[ -x "$BIN" ]]; then
  echo "$MIRROR"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build the AWS provider" >&2; exit 1; }
WORK="$CACHE_DIR/build"
mkdir -p "$WORK" "$DEST"
cat >"$WORK/go.mod" <<MOD
module cnm-ingest/terraform-provider-aws-build

go 1.26.3

godebug tlsmlkem=0

require github.com/hashicorp/terraform-provider-aws $PROVIDER_COMMIT_VERSION
MOD
# The provider's own go.mod may carry replace directives (terraform-plugin-log
# has been one; this commit has none); replace directives only apply in the
# main module, so repeat whatever it has.
cd "$WORK"
GOFLAGS=-mod=mod go mod download github.com/hashicorp/terraform-provider-aws >&2
SRC=$(GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' github.com/hashicorp/terraform-provider-aws)
awk '/^replace[ \t]*\(/{b=1;next} b&&/^\)/{b=0;next} b{print "replace " $0;next} /^replace /{print}' "$SRC/go.mod" >>go.mod
echo "building terraform-provider-aws $PROVIDER_VERSION ($PROVIDER_COMMIT_VERSION) in $WORK" >&2
start=$(date +%s)
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$BIN.tmp" github.com/hashicorp/terraform-provider-aws >&2
mv "$BIN.tmp" "$BIN"
echo "built in $(( $(date +%s) - start ))s, $(du -h "$BIN" | cut -f1)" >&2
echo "$MIRROR"
