#!/usr/bin/env bash
# hack/monitoring-crds.sh — make sure the Prometheus Operator's CRDs for the
# kinds the chart can create (ServiceMonitor, PodMonitor, PrometheusRule) are
# on disk, and print the directory that holds them (one line on stdout;
# everything else goes to stderr).
#
# Release assets cannot be downloaded on the project's machines, but the Go
# module proxy serves github.com/prometheus-operator/prometheus-operator, and
# its module zip carries the generated CRDs in example/prometheus-operator-crd/.
# The three files are copied OUT of the module cache (whose files are
# read-only) into
#
#   ${PERIPETY_CACHE:-$HOME/.cache/peripety}/monitoring-crds/<version>/
#
# next to the envtest binaries (GOMODCACHE is the same as hack/envtest-build.sh's).
# Idempotent: with the three files present nothing is fetched. `--check`
# fetches nothing: it prints the directory and exits 0 when the files are
# there, else exits 2.
#
# Version: v0.85.0 is the newest release the module proxy serves here
# (v0.86.0 and v0.87.0 answer 403 "not available"); `go list -m -versions`
# lists it. Moving versions: change PROM_OPERATOR_VERSION (the cache is keyed
# by it).
#
# Override: MONITORING_CRDS_DIR=<dir with the three files> skips everything.
set -euo pipefail

check=0
[ "${1:-}" = --check ] && check=1

PROM_OPERATOR_VERSION=v0.85.0
MODULE=github.com/prometheus-operator/prometheus-operator
FILES=(monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_podmonitors.yaml monitoring.coreos.com_prometheusrules.yaml)

log() { echo "hack/monitoring-crds.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

have_all() { # have_all DIR
  local f
  for f in "${FILES[@]}"; do [ -s "$1/$f" ] || return 1; done
}

if [ -n "${MONITORING_CRDS_DIR:-}" ]; then
  have_all "$MONITORING_CRDS_DIR" || die "MONITORING_CRDS_DIR=$MONITORING_CRDS_DIR lacks one of ${FILES[*]}"
  echo "$MONITORING_CRDS_DIR"
  exit 0
fi

home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache_root=${PERIPETY_CACHE:-$home/.cache/peripety}
dir="$cache_root/monitoring-crds/$PROM_OPERATOR_VERSION"
if have_all "$dir"; then
  echo "$dir"
  exit 0
fi
[ "$check" = 0 ] || exit 2

mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if have_all "$dir"; then
  echo "$dir"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "no Go toolchain on PATH: fetching $MODULE@$PROM_OPERATOR_VERSION from the module proxy needs go (or set MONITORING_CRDS_DIR)"
export GOMODCACHE="$cache_root/gomod" GOCACHE="$cache_root/gocache" GOPATH="$cache_root/gopath"
export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod
mkdir -p "$GOMODCACHE"
work=$(mktemp -d "$dir/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "fetching $MODULE@$PROM_OPERATOR_VERSION from the Go module proxy (about 4 MB)"
# Outside any module (an empty directory), `go mod download` fetches one module.
json=$(cd "$work" && go mod download -json "$MODULE@$PROM_OPERATOR_VERSION") || true
err=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p')
[ -z "$err" ] || die "go mod download $MODULE@$PROM_OPERATOR_VERSION: $err"
mod_dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$mod_dir" ] || [ ! -d "$mod_dir" ]; then
  die "go mod download printed no module directory: $json"
fi
src="$mod_dir/example/prometheus-operator-crd"
have_all "$src" || die "$src lacks one of ${FILES[*]} (the module's layout changed?)"

for f in "${FILES[@]}"; do
  cp "$src/$f" "$work/$f"
  chmod 0644 "$work/$f"
done
for f in "${FILES[@]}"; do mv "$work/$f" "$dir/$f"; done
log "CRDs of $MODULE@$PROM_OPERATOR_VERSION in $dir: ${FILES[*]}"
echo "$dir"
