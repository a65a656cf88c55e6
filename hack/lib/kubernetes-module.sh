# hack/lib/kubernetes-module.sh — sourced by the scripts that build binaries of
# k8s.io/kubernetes from its Go module (hack/envtest-build.sh: kube-apiserver,
# kubectl; hack/node-build.sh: kubelet, kube-proxy, …). One place for the
# Go environment, the throwaway module and the version stamp, so both builds
# share one module and build cache and agree on how a version is built.
#
# k8s.io/kubernetes is not a normal dependency module: its go.mod replaces
# every staging module (k8s.io/api, k8s.io/client-go, …) with
# ./staging/src/…, which a consumer cannot see. The throwaway module requires
# k8s.io/kubernetes and replaces each staging module with its published
# v0.<minor>.<patch>; the list is read from that version's go.mod in the
# module cache, not hand-written.
# shellcheck shell=bash

# The one Kubernetes version of the project's tools: the envtest API server
# and kubectl, and the real node's kubelet, kube-proxy, controller manager,
# scheduler and kubeadm (hack/node-build.sh).
export PERIPETY_K8S_VERSION=v1.36.3

# k8s_go_env CACHE_ROOT — the Go environment of every cached build: caches
# outside the repository, never another toolchain, no VCS stamping, static.
k8s_go_env() {
  export GOMODCACHE="$1/gomod"
  export GOCACHE="$1/gocache"
  export GOTOOLCHAIN=local
  export GOFLAGS="-mod=mod -buildvcs=false"
  export GOWORK=off
  export CGO_ENABLED=0
  export GOPATH="$1/gopath"
  mkdir -p "$GOMODCACHE" "$GOCACHE"
}

# k8s_require_go — die unless the Go on PATH can build kubernetes 1.36.
k8s_require_go() {
  command -v go >/dev/null 2>&1 || { echo "no Go toolchain on PATH: building kubernetes binaries needs Go >= 1.26" >&2; return 1; }
  case "$(go env GOVERSION)" in
    go1.2[6-9]*|go1.[3-9][0-9]*) ;;
    *) echo "Go $(go env GOVERSION) is too old: kubernetes 1.36 needs go >= 1.26.0" >&2; return 1 ;;
  esac
}

# k8s_module DIR VERSION PKG… — write a module in DIR that builds the given
# k8s.io/kubernetes packages at VERSION (e.g. v1.36.3).
k8s_module() {
  local dir=$1 version=$2; shift 2
  local staging_version="v0.${version#v1.}" k8s_mod m p
  mkdir -p "$dir"
  k8s_mod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$k8s_mod" ] || { echo "could not fetch the go.mod of k8s.io/kubernetes@$version" >&2; return 1; }
  local -a staging
  mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$k8s_mod" | sort -u)
  [ "${#staging[@]}" -gt 10 ] || { echo "found only ${#staging[@]} staging replaces in $k8s_mod" >&2; return 1; }
  echo "replacing ${#staging[@]} staging modules with $staging_version" >&2
  {
    echo "module peripety.local/k8s-build"
    echo
    echo "go 1.26.0"
    echo
    echo "godebug default=go1.26"
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    echo "replace ("
    for m in "${staging[@]}"; do echo "	$m => $m $staging_version"; done
    echo ")"
  } > "$dir/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for p in "$@"; do echo "	_ \"$p\""; done
    echo ")"
  } > "$dir/tools.go"
}

# k8s_ldflags VERSION — what kubernetes' own hack/lib/version.sh stamps in,
# so /version, `kubectl version` and the Node's kubeletVersion tell the truth
# instead of v0.0.0-master. (The build date is left out: a date makes every
# link step differ and the Go cache miss.)
k8s_ldflags() {
  local version=$1 minor p out="-s -w"
  minor=${version#v1.}; minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    out+=" -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  echo "$out"
}

# k8s_go_build LOG_PREFIX GO-BUILD-ARGS… — `go build` under nice, with a line
# on stderr every minute: a cold build prints nothing for many minutes, and a
# CI log that is silent that long looks hung.
k8s_go_build() {
  local prefix=$1 t0=$SECONDS hb status=0
  shift
  ( while sleep 60; do echo "$prefix: still building ($(( SECONDS - t0 ))s so far)…" >&2; done ) &
  hb=$!
  nice -n 10 go build -p 2 -trimpath "$@" >&2 || status=$?
  kill "$hb" 2>/dev/null || true
  wait "$hb" 2>/dev/null || true
  return "$status"
}

# k8s_build_lock LOCKFILE WHAT: one builder at a time (test files, benches
# and CI steps may start the same build together). Takes an exclusive flock
# on LOCKFILE through descriptor 9, held until the calling script exits;
# when another process holds it, says so (the caller's log) and waits. The
# caller checks its cache again afterwards: the other process may have built it.
k8s_build_lock() {
  exec 9>"$1"
  if ! flock -n 9; then
    log "another build of $2 is running; waiting for it"
    flock 9
  fi
}
