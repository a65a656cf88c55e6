#!/usr/bin/env bash
# hack/npd-build.sh — build the node-problem-detector side of
# bench/npd.bench.ts and print the directory that holds it (one line on
# stdout; everything else goes to stderr):
#
#   <dir>/npd-harness          bench/lib/npd-harness.go built against
#                              k8s.io/node-problem-detector $NPD_VERSION
#   <dir>/kernel-monitor.json  that version's config/kernel-monitor.json
#                              (the default kernel monitor rules), as shipped
#   <dir>/stamp                versions, the harness' hash, Go, build time
#
# The harness is our own small main (see its header for what it runs per
# record); NPD's packages come from the Go module proxy into the project's Go
# caches outside the repository, as hack/envtest-build.sh does:
#
#   ${PERIPETY_CACHE:-$HOME/.cache/peripety}/
#     npd/<version>-<harness hash>/   the directory printed
#     gocache/ gomod/ gopath/         shared with the other Go builds
#
# Idempotent: with a matching stamp nothing is built. `--check`: build
# nothing; print the directory and exit 0 when it is built, else exit 2.
# Exit 3 (with the reason on stderr) when it cannot be built here: no Go, too
# old a Go (< 1.26), or the module cannot be fetched — the bench then says SKIPPED.
# The first build downloads NPD's dependencies (~160 MB of modules) and took
# 47 s with empty caches on 2 cores; a changed harness rebuilds in seconds. Not run by
# `npm test` (the bench runs it).
set -euo pipefail

NPD_VERSION=${NPD_VERSION:-v1.34.0}

check=0
[ "${1:-}" = --check ] && check=1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src="$here/../bench/lib/npd-harness.go"
# shellcheck source=hack/lib/kubernetes-module.sh
. "$here/lib/kubernetes-module.sh"

log() { echo "hack/npd-build.sh: $*" >&2; }
unavailable() { log "cannot build: $*"; exit 3; }

[ -f "$src" ] || { log "ERROR: $src is missing"; exit 1; }
hash=$(sha256sum "$src" | cut -c1-12)
home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache_root=${PERIPETY_CACHE:-$home/.cache/peripety}
dir="$cache_root/npd/$NPD_VERSION-$hash"
stamp="$dir/stamp"
want_stamp="node-problem-detector=$NPD_VERSION harness=$hash"

have_build() {
  [ -x "$dir/npd-harness" ] && [ -f "$dir/kernel-monitor.json" ] &&
    [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" = "$want_stamp" ]
}

if have_build; then
  [ "$check" = 1 ] || log "cached: $dir ($(sed -n 2p "$stamp" 2>/dev/null))"
  echo "$dir"
  exit 0
fi
[ "$check" = 0 ] || exit 2

mkdir -p "$cache_root/npd"
# One builder at a time (two benches may start together).
k8s_build_lock "$cache_root/npd/.lock" "the node-problem-detector harness"
if have_build; then
  log "cached (built by another process): $dir"
  echo "$dir"
  exit 0
fi

command -v go >/dev/null 2>&1 || unavailable "no Go toolchain on PATH"
# The throwaway module says go 1.26.0 (the project's one Go, as for the
# kubernetes builds); NPD itself needs 1.24.7.
k8s_require_go 2>/dev/null || unavailable "Go $(go env GOVERSION) is older than 1.26"
go_version=$(go env GOVERSION)
k8s_go_env "$cache_root"

work=$(mktemp -d "$cache_root/npd/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
log "building the NPD harness against k8s.io/node-problem-detector $NPD_VERSION with $go_version (the first build fetches its dependencies: about a minute)"

cat > "$work/go.mod" <<EOF
module peripety.local/npd-harness

go 1.26.0

require k8s.io/node-problem-detector $NPD_VERSION
EOF
cp "$src" "$work/main.go"

(
  cd "$work"
  mod_dir=$(go mod download -json "k8s.io/node-problem-detector@$NPD_VERSION" 2>&1 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || true
  [ -n "$mod_dir" ] && [ -f "$mod_dir/config/kernel-monitor.json" ] ||
    { log "could not fetch k8s.io/node-problem-detector@$NPD_VERSION from $(go env GOPROXY)"; exit 3; }
  mkdir -p out
  cp "$mod_dir/config/kernel-monitor.json" out/kernel-monitor.json
  # -mod=mod (GOFLAGS) resolves NPD's dependencies into go.mod/go.sum here;
  # a module the proxy will not serve makes the harness unavailable (exit 3),
  # while a failing compile after that is a bug of the harness (exit 1).
  go list -deps . >/dev/null ||
    { log "could not fetch the dependencies of k8s.io/node-problem-detector@$NPD_VERSION from $(go env GOPROXY)"; exit 3; }
  k8s_go_build hack/npd-build.sh -ldflags="-s -w -X main.npdVersion=$NPD_VERSION" -o out/npd-harness . ||
    { log "ERROR: go build of bench/lib/npd-harness.go failed"; exit 1; }
) || exit $?

rm -rf "$dir.new"
mv "$work/out" "$dir.new"
rm -rf "$dir"
mv "$dir.new" "$dir"
secs=$(( $(date +%s) - start ))
{
  echo "$want_stamp"
  echo "go=$go_version built=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$secs host-cores=$(nproc)"
} > "$stamp"
log "built in ${secs}s: $dir"
echo "$dir"
