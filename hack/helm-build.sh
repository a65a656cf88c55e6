#!/usr/bin/env bash
# hack/helm-build.sh — make sure a helm binary exists and print its path (one
# line on stdout; everything else goes to stderr).
#
# No release binary can be downloaded on the project's machines, so helm is
# built from its Go module (helm.sh/helm/v3, pinned below) with the machine's
# Go toolchain and cached OUTSIDE the repository, next to the envtest binaries:
#
#   ${PERIPETY_CACHE:-$HOME/.cache/peripety}/helm/<version>-<recipe>/helm
#
# Like helm's own Makefile, the build stamps the Kubernetes version of the
# client-go it was built with (v0.37 → 1.37) into chartutil and the lint
# rules; unstamped, `helm template` and `helm lint` would assume Kubernetes
# 1.20, below the chart's kubeVersion.
#
# Idempotent; HELM=<path to a helm binary> skips the build. `--check` builds
# nothing: it prints the path and exits 0 when helm is there, else exits 2. The shim
# hack/bin/helm (on the PATH under hack/run) calls this, so
# `hack/run helm lint charts/peripety` works from a fresh clone.
set -euo pipefail

check=0
[ "${1:-}" = --check ] && check=1

HELM_VERSION=v3.22.0   # helm.sh/helm/v3; v3 because the chart is apiVersion v2 and v3 is what most clusters' CI uses
RECIPE=2               # bump when the build itself changes (2: Kubernetes version stamps)

log() { echo "hack/helm-build.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ -n "${HELM:-}" ]; then
  [ -x "$HELM" ] || die "HELM=$HELM is not an executable file"
  echo "$HELM"; exit 0
fi

home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache_root=${PERIPETY_CACHE:-$home/.cache/peripety}
dir="$cache_root/helm/$HELM_VERSION-r$RECIPE"
bin="$dir/helm"
[ -x "$bin" ] && { echo "$bin"; exit 0; }
[ "$check" = 0 ] || exit 2

mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
[ -x "$bin" ] && { echo "$bin"; exit 0; }

command -v go >/dev/null 2>&1 || die "no Go toolchain on PATH: building helm needs Go >= 1.24 (or set HELM=/path/to/helm)"
export GOMODCACHE="$cache_root/gomod" GOCACHE="$cache_root/gocache" GOPATH="$cache_root/gopath"
export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" GOWORK=off CGO_ENABLED=0
mkdir -p "$GOMODCACHE" "$GOCACHE"
work=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "building helm $HELM_VERSION with $(go env GOVERSION) (about 1-3 minutes on 2 cores the first time)"
t0=$(date +%s)
(
  cd "$work"
  cat > go.mod <<MOD
module peripety.local/helm-build

go 1.26.0

require helm.sh/helm/v3 $HELM_VERSION
MOD
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "helm.sh/helm/v3/cmd/helm"
GO
  go mod tidy >&2 2>&1 || go mod download >&2
  # what helm's Makefile stamps: its version, and the Kubernetes version of its client-go
  cg=$(go list -m -f '{{.Version}}' k8s.io/client-go)        # v0.37.0
  cg=${cg#v0.}; k8s_minor=${cg%%.*}
  [[ "$k8s_minor" =~ ^[0-9]+$ ]] || { log "ERROR: cannot tell the Kubernetes version of client-go ($cg)"; exit 1; }
  ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ld+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$k8s_minor"
  done
  nice -n 10 go build -p 2 -trimpath -ldflags="$ld" -o "$work/helm" helm.sh/helm/v3/cmd/helm >&2
)
mv "$work/helm" "$bin"
log "helm $HELM_VERSION built in $(( $(date +%s) - t0 ))s: $bin"
echo "$bin"
