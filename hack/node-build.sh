#!/usr/bin/env bash
# hack/node-build.sh — make sure the binaries of the real node of hack/node.sh
# exist, and print the directory that holds them (one line on stdout;
# progress on stderr):
#
#   kubelet kube-proxy kube-controller-manager kube-scheduler kubeadm
#       built from k8s.io/kubernetes at the project's one pinned version
#       (hack/lib/kubernetes-module.sh), in ONE `go build` so they share the
#       packages they have in common, with the same Go caches as the envtest
#       build (hack/envtest-build.sh; a warm cache makes this a few minutes)
#   kube-apiserver etcd kubectl
#       links to the envtest binaries (built by hack/envtest-build.sh)
#   pause
#       the pod sandbox's process, `gcc -Os -static` of
#       build/pause/linux/pause.c shipped in that k8s.io/kubernetes module
#       (hack/node.sh wraps it in an image FROM scratch)
#
# Cached OUTSIDE the repository, keyed by version:
#   ${PERIPETY_CACHE:-$HOME/.cache/peripety}/node/<k8s version>/bin, …/stamp
# `--check`: build nothing; print the directory and exit 0 when nothing would
# be built, else exit 2.
set -euo pipefail

check=0
[ "${1:-}" = --check ] && check=1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/lib/kubernetes-module.sh
. "$here/lib/kubernetes-module.sh"
K8S_VERSION=$PERIPETY_K8S_VERSION
COMPONENTS=(kubelet kube-proxy kube-controller-manager kube-scheduler kubeadm)

log() { echo "hack/node-build.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache_root=${PERIPETY_CACHE:-$home/.cache/peripety}
dir="$cache_root/node/$K8S_VERSION"
bin="$dir/bin"
stamp="$dir/stamp"
want_stamp="kubernetes=$K8S_VERSION components=${COMPONENTS[*]} pause"

have_build() {
  local c
  for c in "${COMPONENTS[@]}" pause; do [ -x "$bin/$c" ] || return 1; done
  [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" = "$want_stamp" ]
}
# The envtest binaries are checked (and built) on every call: they have
# their own cache and stamp.
link_envtest() {
  local envtest
  envtest=$(bash "$here/envtest-build.sh" "$@") || return $?
  for c in kube-apiserver etcd kubectl; do ln -sfn "$envtest/$c" "$bin/$c"; done
}

if have_build; then
  if [ "$check" = 1 ]; then link_envtest --check >/dev/null || exit 2; else link_envtest; fi
  [ "$check" = 1 ] || log "cached: $bin ($(sed -n 2p "$stamp" 2>/dev/null))"
  echo "$bin"
  exit 0
fi
[ "$check" = 0 ] || exit 2

mkdir -p "$dir"
k8s_build_lock "$dir/.lock" "the node binaries"
k8s_require_go || die "cannot build the node binaries"
command -v gcc >/dev/null 2>&1 || die "no gcc: the pause binary is built with gcc -static (Debian: gcc, libc6-dev)"
go_version=$(go env GOVERSION)
k8s_go_env "$cache_root"

work=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
pkgs=()
for c in "${COMPONENTS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
log "building ${COMPONENTS[*]} of kubernetes $K8S_VERSION with $go_version: ≈3 min with a warm Go cache, ≈15–25 min cold on 2 cores (cached afterwards in $bin)"
k8s_module "$work/mod" "$K8S_VERSION" "${pkgs[@]}" 2> >(sed 's/^/hack\/node-build.sh: /' >&2)
ldflags=$(k8s_ldflags "$K8S_VERSION")
mkdir -p "$work/out"
(
  cd "$work/mod"
  go mod download k8s.io/kubernetes >&2
  k8s_go_build hack/node-build.sh -ldflags="$ldflags" -o "$work/out/" "${pkgs[@]}"
)
log "kubernetes binaries built in $(( $(date +%s) - start ))s"

pause_c="$GOMODCACHE/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c"
[ -f "$pause_c" ] || die "no $pause_c in the module cache"
gcc -Os -static -o "$work/out/pause" "$pause_c"
strip "$work/out/pause" 2>/dev/null || true
"$work/out/kubelet" --version >&2

rm -rf "$bin.new"
mv "$work/out" "$bin.new"
rm -rf "$bin"
mv "$bin.new" "$bin"
link_envtest
{
  echo "$want_stamp"
  echo "go=$go_version built=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$(( $(date +%s) - start )) host-cores=$(nproc)"
} > "$stamp"
log "built in $(( $(date +%s) - start ))s: $bin ($(du -sh "$bin" | cut -f1))"
echo "$bin"
