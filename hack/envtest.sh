#!/usr/bin/env bash
# hack/envtest.sh start|stop|env|status — a real, throwaway Kubernetes API
# server (etcd + kube-apiserver, no kubelet, no controllers) for working by
# hand, the same one the tests start (test/helpers/envtest.ts):
#
#   eval "$(hack/envtest.sh start)"     # builds the binaries the first time
#   kubectl get crds                    # kubectl is the pinned, built one
#   hack/envtest.sh stop                # kills both, removes all state
#
# start   builds/finds the binaries (hack/envtest-build.sh), makes a throwaway
#         CA, a serving cert for 127.0.0.1/localhost, an admin client cert
#         (O=system:masters) and a service-account signing key with openssl,
#         starts etcd and kube-apiserver on free loopback ports, waits for
#         /readyz, applies crds/*.yaml (when any exist) and waits until they
#         are Established, then prints on stdout:
#           export KUBECONFIG=<state>/admin.kubeconfig
#           export PATH=<bindir>:$PATH
#         When one is already running from the same state dir, it only prints.
# env     prints those lines for the running one.
# status  says whether it runs.
# stop    kills both (their process groups) and removes the state dir.
#
# State dir: ${PERIPETY_ENVTEST_DIR:-${TMPDIR:-/tmp}/peripety-envtest}.
# Binaries: KUBEBUILDER_ASSETS / TEST_ASSET_* win (see hack/envtest-build.sh).
# Needs: openssl (Debian package `openssl`, in hack/ci-deps.sh), Go for the
# first build. Root is not needed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=${PERIPETY_ENVTEST_DIR:-${TMPDIR:-/tmp}/peripety-envtest}

log() { echo "hack/envtest.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { echo "usage: hack/envtest.sh start|stop|env|status   (state: $state)" >&2; exit 2; }

alive() { [ -f "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }
running() { alive etcd && alive kube-apiserver && [ -f "$state/admin.kubeconfig" ]; }

print_env() {
  echo "export KUBECONFIG=$state/admin.kubeconfig"
  echo "export PATH=$(cat "$state/bindir"):\$PATH"
}

kill_group() { # kill_group NAME: TERM its process group, then KILL after 10 s
  local f="$state/$1.pid" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop() {
  kill_group kube-apiserver
  kill_group etcd
  case "$state" in /|"") die "refusing to remove state dir '$state'" ;; esac
  rm -rf "$state"
}

free_port() { # a loopback port below the kernel's ephemeral range that nobody uses
  local lo p
  lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$lo" -gt 12000 ] || lo=32768
  for _ in $(seq 100); do
    p=$(( 10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000) ))
    if command -v ss >/dev/null 2>&1; then
      [ -z "$(ss -Hatn "( sport = :$p )" 2>/dev/null)" ] || continue
    fi
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free port found"
}

# --- throwaway PKI with openssl ------------------------------------------
# The same layout as test/helpers/envtest.ts: EC P-256 keys, certs valid for
# 2 days, one config file (hack/envtest-openssl.cnf) with an extension
# section per kind of cert.
pki() {
  local d=$1
  mkdir -p "$d"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  openssl req -x509 -new -config "$root/hack/envtest-openssl.cnf" -extensions ca "${ec[@]}" \
    -keyout "$d/ca.key" -subj "/CN=peripety-envtest-ca" -days 2 -out "$d/ca.crt" 2>/dev/null
  openssl req -x509 -new -config "$root/hack/envtest-openssl.cnf" -extensions server "${ec[@]}" \
    -keyout "$d/server.key" -subj "/CN=localhost" -CA "$d/ca.crt" -CAkey "$d/ca.key" -days 2 -out "$d/server.crt" 2>/dev/null
  openssl req -x509 -new -config "$root/hack/envtest-openssl.cnf" -extensions client "${ec[@]}" \
    -keyout "$d/admin.key" -subj "/O=system:masters/CN=peripety-envtest-admin" -CA "$d/ca.crt" -CAkey "$d/ca.key" -days 2 -out "$d/admin.crt" 2>/dev/null
  # Service-account token signing key (RSA, like kube-controller-manager's).
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/sa.key" 2>/dev/null
  openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  chmod 600 "$d"/*.key
}

kubeconfig() { # kubeconfig FILE SERVER CA CERT KEY USER
  local f=$1 server=$2 ca=$3 cert=$4 key=$5 user=$6
  cat > "$f" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: envtest
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 "$ca")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$cert")
    client-key-data: $(base64 -w0 "$key")
contexts:
- name: envtest
  context:
    cluster: envtest
    user: $user
current-context: envtest
EOF
  chmod 600 "$f"
}

start() {
  if running; then
    log "already running (state $state)"
    print_env
    return 0
  fi
  command -v openssl >/dev/null 2>&1 || die "needs openssl (apt-get install -y openssl, or hack/ci-deps.sh)"
  [ -d "$state" ] && stop
  local bindir
  bindir=$(bash "$root/hack/envtest-build.sh")
  mkdir -p "$state"
  chmod 700 "$state"
  echo "$bindir" > "$state/bindir"
  local t0 etcd_port peer_port api_port server attempt ok p="$state/pki"
  t0=$(date +%s%N)
  pki "$p"

  # `setsid` makes each daemon lead its own process group (pid = pgid), so
  # stop can kill the group and the daemons outlive this shell. A port taken
  # between choosing and binding makes a daemon exit at once: retried.
  for attempt in 1 2 3; do
    etcd_port=$(free_port); peer_port=$(free_port)
    rm -rf "$state/etcd"
    setsid "$bindir/etcd" \
      --name=envtest \
      --data-dir="$state/etcd" \
      --listen-client-urls="http://127.0.0.1:$etcd_port" \
      --advertise-client-urls="http://127.0.0.1:$etcd_port" \
      --listen-peer-urls="http://127.0.0.1:$peer_port" \
      --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
      --initial-cluster="envtest=http://127.0.0.1:$peer_port" \
      --unsafe-no-fsync \
      --log-level=warn \
      </dev/null >"$state/etcd.log" 2>&1 &
    echo $! > "$state/etcd.pid"
    ok=
    for _ in $(seq 150); do
      alive etcd || break
      # (a subshell: a bare `exec … 2>/dev/null` would silence this shell for good)
      if ( exec 3<>"/dev/tcp/127.0.0.1/$etcd_port" && printf 'GET /health HTTP/1.0\r\n\r\n' >&3 && cat <&3 ) 2>/dev/null |
        grep -q '"health":"true"'; then
        ok=1
        break
      fi
      sleep 0.2
    done
    [ -n "$ok" ] && break
    kill_group etcd
    if [ "$attempt" -lt 3 ] && grep -q 'address already in use' "$state/etcd.log"; then
      log "etcd: port taken, retrying"
      continue
    fi
    tail -20 "$state/etcd.log" >&2
    stop
    die "etcd did not become healthy"
  done

  for attempt in 1 2 3; do
    api_port=$(free_port)
    server="https://127.0.0.1:$api_port"
    setsid "$bindir/kube-apiserver" \
      --bind-address=127.0.0.1 \
      --advertise-address=127.0.0.1 \
      --secure-port="$api_port" \
      --tls-cert-file="$p/server.crt" \
      --tls-private-key-file="$p/server.key" \
      --client-ca-file="$p/ca.crt" \
      --etcd-servers="http://127.0.0.1:$etcd_port" \
      --service-cluster-ip-range=10.0.0.0/24 \
      --allow-privileged=true \
      --authorization-mode=RBAC \
      --service-account-issuer="$server" \
      --service-account-key-file="$p/sa.pub" \
      --service-account-signing-key-file="$p/sa.key" \
      --api-audiences="$server,peripety-agent" \
      --disable-admission-plugins=ServiceAccount \
      --endpoint-reconciler-type=none \
      --cert-dir="$state/apiserver-certs" \
      </dev/null >"$state/kube-apiserver.log" 2>&1 &
    echo $! > "$state/kube-apiserver.pid"
    kubeconfig "$state/admin.kubeconfig" "$server" "$p/ca.crt" "$p/admin.crt" "$p/admin.key" admin
    ok=
    for _ in $(seq 300); do
      alive kube-apiserver || break
      if [ "$("$bindir/kubectl" --kubeconfig="$state/admin.kubeconfig" get --raw /readyz 2>/dev/null)" = "ok" ]; then ok=1; break; fi
      sleep 0.2
    done
    [ -n "$ok" ] && break
    kill_group kube-apiserver
    if [ "$attempt" -lt 3 ] && grep -q 'address already in use' "$state/kube-apiserver.log"; then
      log "kube-apiserver: port taken, retrying"
      continue
    fi
    tail -30 "$state/kube-apiserver.log" >&2
    stop
    die "kube-apiserver did not become ready within 60 s"
  done
  local kc=("$bindir/kubectl" --kubeconfig="$state/admin.kubeconfig")
  log "kube-apiserver ready at $server in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

  shopt -s nullglob
  local crds=("$root"/crds/*.yaml "$root"/crds/*.yml)
  shopt -u nullglob
  if [ "${#crds[@]}" -gt 0 ]; then
    local args=() f
    for f in "${crds[@]}"; do args+=(-f "$f"); done
    "${kc[@]}" apply --server-side --force-conflicts --field-manager=peripety-envtest "${args[@]}" >&2
    "${kc[@]}" wait --for=condition=Established --timeout=60s "${args[@]}" >&2
    log "installed ${#crds[@]} CRD file(s) from crds/"
  else
    log "no crds/*.yaml yet: installed no CRDs"
  fi
  log "state in $state; stop with: hack/envtest.sh stop"
  print_env
}

case "${1:-}" in
  start) start ;;
  stop) stop; log "stopped; removed $state" ;;
  env) running || die "not running (state $state): hack/envtest.sh start"; print_env ;;
  status) if running; then log "running: $(grep server: "$state/admin.kubeconfig" | awk '{print $2}') (state $state)"; else log "not running (state $state)"; exit 1; fi ;;
  *) usage ;;
esac
