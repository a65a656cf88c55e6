#!/usr/bin/env bash
# hack/envtest-build.sh — make sure kube-apiserver, etcd and kubectl binaries
# exist for the envtest-style tests (test/helpers/envtest.ts) and for
# hack/envtest.sh, and print the directory that holds them (one line on
# stdout; everything else goes to stderr).
#
# No release binary can be downloaded on the project's machines, so they are
# built from their Go modules with the machine's Go toolchain, at pinned
# versions, and cached OUTSIDE the repository:
#
#   ${PERIPETY_CACHE:-$HOME/.cache/peripety}/
#     envtest/<k8s>-<etcd>/bin/{kube-apiserver,kubectl,etcd}
#     envtest/<k8s>-<etcd>/stamp          versions + Go version + build time
#     gocache/                            GOCACHE (Go build cache)
#     gomod/                              GOMODCACHE (Go module cache)
#
# Idempotent: when the binaries and a matching stamp exist, nothing is built.
# `--check`: build nothing; print the directory and exit 0 when nothing would
# be built, else exit 2 (hack/prepare.mjs uses it to say "cached" or
# "building…" before the build starts).
# Overrides (nothing is built when all three binaries are given):
#   KUBEBUILDER_ASSETS=<dir with kube-apiserver, etcd, kubectl>
#   TEST_ASSET_KUBE_APISERVER, TEST_ASSET_ETCD, TEST_ASSET_KUBECTL (each one
#   wins over KUBEBUILDER_ASSETS for its binary)
#
# kube-apiserver and kubectl come from k8s.io/kubernetes through a throwaway
# module (hack/lib/kubernetes-module.sh says how; hack/node-build.sh builds the
# node's binaries the same way, into the same Go caches). etcd is the main
# package of go.etcd.io/etcd/server/v3, built the same way.
#
# First build on 2 cores takes a long while (see docs/envtest.md); long Go
# builds run under `nice -n 10`.
set -euo pipefail

check=0
[ "${1:-}" = --check ] && check=1

# shellcheck source=hack/lib/kubernetes-module.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/kubernetes-module.sh"
K8S_VERSION=$PERIPETY_K8S_VERSION  # kube-apiserver, kubectl (the pin is in hack/lib/kubernetes-module.sh)
ETCD_VERSION=v3.6.16    # etcd (kube-apiserver 1.36 is built against the etcd 3.6 client)

log() { echo "hack/envtest-build.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- overrides ------------------------------------------------------------
asset() { # asset NAME ENVVAR → path or empty
  local name=$1 var=$2
  if [ -n "${!var:-}" ]; then
    [ -x "${!var}" ] || die "$var=${!var} is not an executable file"
    echo "${!var}"
  elif [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/$name" ]; then
    echo "$KUBEBUILDER_ASSETS/$name"
  fi
}
a_api=$(asset kube-apiserver TEST_ASSET_KUBE_APISERVER)
a_etcd=$(asset etcd TEST_ASSET_ETCD)
a_kubectl=$(asset kubectl TEST_ASSET_KUBECTL)

home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache_root=${PERIPETY_CACHE:-$home/.cache/peripety}
mkdir -p "$cache_root/envtest"

if [ -n "$a_api" ] && [ -n "$a_etcd" ] && [ -n "$a_kubectl" ]; then
  d1=$(dirname "$a_api")
  if [ "$a_api" = "$d1/kube-apiserver" ] && [ "$a_etcd" = "$d1/etcd" ] && [ "$a_kubectl" = "$d1/kubectl" ]; then
    log "using given binaries in $d1 (built nothing)"
    echo "$d1"
    exit 0
  fi
  # Scattered files: one directory of symlinks, keyed by the paths.
  key=$(printf '%s\n' "$a_api" "$a_etcd" "$a_kubectl" | sha256sum | cut -c1-12)
  d="$cache_root/envtest/override-$key/bin"
  mkdir -p "$d"
  ln -sfn "$(readlink -f "$a_api")" "$d/kube-apiserver"
  ln -sfn "$(readlink -f "$a_etcd")" "$d/etcd"
  ln -sfn "$(readlink -f "$a_kubectl")" "$d/kubectl"
  log "using given binaries (TEST_ASSET_*/KUBEBUILDER_ASSETS) via $d (built nothing)"
  echo "$d"
  exit 0
fi
if [ -n "${KUBEBUILDER_ASSETS:-}${TEST_ASSET_KUBE_APISERVER:-}${TEST_ASSET_ETCD:-}${TEST_ASSET_KUBECTL:-}" ]; then
  log "KUBEBUILDER_ASSETS/TEST_ASSET_* name only some of kube-apiserver, etcd, kubectl: building the pinned set (the given ones still win)"
fi

# --- cached build ---------------------------------------------------------
dir="$cache_root/envtest/${K8S_VERSION}-${ETCD_VERSION}"
bin="$dir/bin"
stamp="$dir/stamp"
want_stamp="kubernetes=$K8S_VERSION etcd=$ETCD_VERSION"

have_build() {
  [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kubectl" ] && [ -x "$bin/etcd" ] &&
    [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" = "$want_stamp" ]
}

finish() { # print the directory, overlaying any partial overrides
  if [ -n "$a_api$a_etcd$a_kubectl" ]; then
    local key d
    key=$(printf '%s\n' "$a_api" "$a_etcd" "$a_kubectl" | sha256sum | cut -c1-12)
    d="$cache_root/envtest/override-$key/bin"
    mkdir -p "$d"
    ln -sfn "$(readlink -f "${a_api:-$bin/kube-apiserver}")" "$d/kube-apiserver"
    ln -sfn "$(readlink -f "${a_etcd:-$bin/etcd}")" "$d/etcd"
    ln -sfn "$(readlink -f "${a_kubectl:-$bin/kubectl}")" "$d/kubectl"
    echo "$d"
  else
    echo "$bin"
  fi
}

if have_build; then
  [ "$check" = 1 ] || log "cached: $bin ($(sed -n 2p "$stamp" 2>/dev/null))"
  finish
  exit 0
fi
[ "$check" = 0 ] || exit 2

mkdir -p "$dir"
# One builder at a time (test files run in parallel and each may call this).
k8s_build_lock "$dir/.lock" "$K8S_VERSION/$ETCD_VERSION"
if have_build; then
  log "cached (built by another process): $bin"
  finish
  exit 0
fi

k8s_require_go || die "(or set KUBEBUILDER_ASSETS)"
go_version=$(go env GOVERSION)
k8s_go_env "$cache_root"

work=$(mktemp -d "$cache_root/envtest/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
log "building kubernetes $K8S_VERSION (kube-apiserver, kubectl) and etcd $ETCD_VERSION with $go_version; the first build takes about 4-7 minutes on 2 cores (measured), plus module downloads"
log "cache: $cache_root (GOCACHE, GOMODCACHE); binaries: $bin"

gobuild() { k8s_go_build hack/envtest-build.sh "$@"; }

# kube-apiserver + kubectl --------------------------------------------------
mkdir -p "$work/k8s" "$work/etcd" "$work/out"
k8s_module "$work/k8s" "$K8S_VERSION" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl 2> >(sed 's/^/hack\/envtest-build.sh: /' >&2)
ldflags=$(k8s_ldflags "$K8S_VERSION")

(
  cd "$work/k8s"
  log "resolving kubernetes dependencies (downloads modules into $GOMODCACHE on the first run)"
  go mod download k8s.io/kubernetes >&2
  t0=$(date +%s)
  gobuild -ldflags="$ldflags" -o "$work/out/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl >&2
  log "kube-apiserver + kubectl built in $(( $(date +%s) - t0 ))s"
)

# etcd -----------------------------------------------------------------------
cat > "$work/etcd/go.mod" <<EOF
module peripety.local/envtest-etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
cat > "$work/etcd/tools.go" <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
(
  cd "$work/etcd"
  t0=$(date +%s)
  gobuild -ldflags="-s -w" -o "$work/out/etcd" go.etcd.io/etcd/server/v3 >&2
  log "etcd built in $(( $(date +%s) - t0 ))s"
)

"$work/out/kube-apiserver" --version >&2
"$work/out/kubectl" version --client >&2
"$work/out/etcd" --version >&2

rm -rf "$bin.new"
mv "$work/out" "$bin.new"
rm -rf "$bin"
mv "$bin.new" "$bin"
secs=$(( $(date +%s) - start ))
{
  echo "$want_stamp"
  echo "go=$go_version built=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$secs host-cores=$(nproc)"
} > "$stamp"
log "built in $((secs / 60))m$((secs % 60))s: $bin ($(du -sh "$bin" | cut -f1) binaries; cache $(du -sh "$cache_root" 2>/dev/null | cut -f1))"
finish
