#!/usr/bin/env bash
# hack/node.sh — a real single-node Kubernetes cluster on this machine, with no
# image registry and without touching the host's network, mounts, cgroups or
# sysctls. For the end-to-end test (test/e2e/, `npm run e2e`); usable by hand.
#
#   hack/node.sh up               start it (≈20 s when binaries and images are cached)
#   hack/node.sh load ARCHIVE…    import docker-archive images into its containerd
#   hack/node.sh exec CMD ARGS…   run CMD in the node's network namespace with
#                                 KUBECONFIG set (kubectl, helm, curl to the node)
#   hack/node.sh env              print the shell variables of the running node
#   hack/node.sh status           exit 0 when it runs and its Node is Ready
#   hack/node.sh down             stop everything, remove every trace; exit 1
#                                 (and say what) when something is left behind
#   hack/node.sh diag DIR         write logs and cluster state into DIR
#
# What it is. etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet and kube-proxy of ONE Kubernetes version (hack/node-build.sh builds
# them from Go modules into the cache), Debian's containerd with runc and
# Debian's CNI plugins (bridge, host-local, portmap), and a pause image made
# from the pause.c the Kubernetes module ships. Certificates and kubeconfigs
# come from `kubeadm init phase certs all` / `kubeconfig all`; nothing else of
# kubeadm is used (its preflight and static pods assume a systemd host).
#
# Containment. One holder process (`unshare --mount --net`, private mount
# propagation) owns a network and a mount namespace; every component is
# started inside both with nsenter. In the mount namespace a tmpfs covers /run
# and the node's own directories cover /var/lib and /var/log, so the
# kubelet, containerd, CNI IPAM, pod logs and the chart's hostPath state land
# under $NODE_ROOT. In the network namespace a veth pair carries the node IP
# (the kernel here has no dummy links) and the CNI bridge the pods. All
# processes (components, shims, containers) live under one cgroup root,
# /$CGROUP_ROOT in every hierarchy. The host's iptables, routes and mounts are
# never changed; `down` kills everything in that cgroup root and namespace,
# removes the cgroup directories and $NODE_ROOT, then checks.
#
# Fixes this host needs (measured: docs/packaging.md "The real node"):
#   - kubelet ≥ 1.35 refuses cgroup v1 unless failCgroupV1: false;
#   - the pause container asks for oom_score_adj -998, which needs
#     CAP_SYS_RESOURCE the VM does not give: containerd restrict_oom_score_adj;
#   - kubelet writes host-global sysctls unless protectKernelDefaults: true, and
#     then refuses to start when they differ from its wanted values: files
#     holding those values are bind-mounted over the three /proc/sys files in
#     the node's mount namespace only;
#   - kube-proxy writes global conntrack sysctls unless maxPerCore and the two
#     timeouts are 0;
#   - no default route → the kubelet finds no node IP: --node-ip, and a
#     device route for the service CIDR so hostNetwork pods reach ClusterIPs.
#
# Environment (defaults in brackets):
#   NODE_ROOT     [/var/tmp/peripety-node] all state of the node; removed by down
#   NODE_NAME     [peripety-node]          the Node's name
#   NODE_IP       [172.31.255.1]           on a veth inside the namespace
#   PERIPETY_CACHE                         binary cache (hack/node-build.sh)
# Needs root, and Debian's containerd, runc, containernetworking-plugins,
# iproute2, iptables, util-linux (hack/ci-deps.sh installs them).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE_ROOT=${NODE_ROOT:-/var/tmp/peripety-node}
NODE_NAME=${NODE_NAME:-peripety-node}
NODE_IP=${NODE_IP:-172.31.255.1}
NODE_PREFIX=24
SERVICE_CIDR=10.96.0.0/16
POD_CIDR=10.244.0.0/24
CGROUP_ROOT=peripety-node
CGROUP_FS=/sys/fs/cgroup
# The pause image the kubelet's containerd asks for: kubeadm's PauseVersion of
# this Kubernetes version (cmd/kubeadm/app/constants).
PAUSE_IMAGE=registry.k8s.io/pause:3.10.2
# The host sysctls the kubelet checks with protectKernelDefaults, and the
# values it wants; the node's mount namespace sees these values.
KUBELET_SYSCTLS=(vm/overcommit_memory=1 kernel/panic=10 kernel/panic_on_oops=1)

log() { echo "hack/node.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

holder_pid() {
  local pid
  pid=$(cat "$NODE_ROOT/holder.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] && [ "$(readlink "/proc/$pid/ns/net")" != "$(readlink /proc/self/ns/net)" ] || return 1
  echo "$pid"
}
kubeconfig() { echo "$NODE_ROOT/kubeconfig/admin.conf"; }
in_node() { # in_node CMD… — run in the node's mount + network namespace
  nsenter --target "$(holder_pid)" --mount --net -- "$@"
}
in_net() { # in_net CMD… — run in the node's network namespace only (host files)
  nsenter --target "$(holder_pid)" --net -- env KUBECONFIG="$(kubeconfig)" "$@"
}
# The binaries of the running node: `up` builds or finds them once and records
# where (every other command reads that, instead of asking the build scripts again).
node_bin() { cat "$NODE_ROOT/bin.path"; }
kubectl_() { in_net "$BIN/kubectl" "$@"; }

# Every cgroup hierarchy mounted under /sys/fs/cgroup (v1 controllers, the
# named systemd one, the unified one of a hybrid host, or just the one of a
# pure v2 host).
hierarchies() {
  awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts | grep "^$CGROUP_FS" | sort -u
}

# --- up ----------------------------------------------------------------------
make_cgroups() {
  local h d
  while read -r h; do
    for d in "$h/$CGROUP_ROOT" "$h/$CGROUP_ROOT/system"; do
      mkdir -p "$d"
      # a new cpuset cgroup is empty (no CPU, no memory node) until told
      if [ -f "$h/cpuset.cpus" ]; then
        cat "$(dirname "$d")/cpuset.cpus" > "$d/cpuset.cpus"
        cat "$(dirname "$d")/cpuset.mems" > "$d/cpuset.mems"
      fi
    done
    # cgroup v2 (a pure-v2 host; on this hybrid one the unified root enables
    # nothing): the kubelet's subtree gets the controllers its parent passes
    # down. The components' processes sit in the leaf system/, as v2 wants.
    if [ -f "$h/cgroup.subtree_control" ]; then
      local c controllers
      read -r -a controllers < "$h/cgroup.subtree_control" || true
      for c in "${controllers[@]}"; do echo "+$c" > "$h/$CGROUP_ROOT/cgroup.subtree_control"; done
    fi
  done < <(hierarchies)
}

# spawn NAME CMD… — start a component in the node's namespaces and cgroup,
# detached, its output in $NODE_ROOT/logs/NAME.log.
spawn() {
  local name=$1 holder
  shift
  holder=$(holder_pid)
  (
    while read -r h; do echo "$BASHPID" > "$h/$CGROUP_ROOT/system/cgroup.procs"; done < <(hierarchies)
    exec setsid nsenter --target "$holder" --mount --net -- "$@"
  ) > "$NODE_ROOT/logs/$name.log" 2>&1 < /dev/null &
  echo "$!" > "$NODE_ROOT/pids/$name"
}

# wait_for WHAT SECONDS CMD… — retry CMD until it succeeds.
wait_for() {
  local what=$1 secs=$2 t0
  shift 2
  t0=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    if [ $(( $(date +%s) - t0 )) -ge "$secs" ]; then
      log "timed out after ${secs}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

write_configs() {
  local pki="$NODE_ROOT/pki" kc="$NODE_ROOT/kubeconfig"
  mkdir -p "$pki" "$kc" "$NODE_ROOT/cni/net.d" "$NODE_ROOT/containerd" "$NODE_ROOT/sysctl"
  cat > "$NODE_ROOT/kubeadm.yaml" <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: $NODE_IP
  bindPort: 6443
nodeRegistration:
  name: $NODE_NAME
  criSocket: unix://$NODE_ROOT/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $PERIPETY_K8S_VERSION
clusterName: peripety-node
certificatesDir: $pki
controlPlaneEndpoint: $NODE_IP:6443
networking:
  serviceSubnet: $SERVICE_CIDR
  podSubnet: $POD_CIDR
  dnsDomain: cluster.local
EOF
  "$BIN/kubeadm" init phase certs all --config "$NODE_ROOT/kubeadm.yaml" >/dev/null
  "$BIN/kubeadm" init phase kubeconfig all --config "$NODE_ROOT/kubeadm.yaml" --kubeconfig-dir "$kc" >/dev/null
  "$BIN/kubeadm" kubeconfig user --config "$NODE_ROOT/kubeadm.yaml" --client-name system:kube-proxy > "$kc/kube-proxy.conf"

  # containerd: Debian's 1.6, CRI plugin, runc with cgroupfs, the pods' CNI
  # config and every path under $NODE_ROOT.
  cat > "$NODE_ROOT/containerd/config.toml" <<EOF
version = 2
root = "$NODE_ROOT/containerd/root"
state = "$NODE_ROOT/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$NODE_ROOT/containerd/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_ROOT/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_ROOT/cni/net.d"
EOF
  cat > "$NODE_ROOT/cni/net.d/10-peripety-node.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "peripety-node",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$POD_CIDR" }]], "routes": [{ "dst": "0.0.0.0/0" }] }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
  cat > "$NODE_ROOT/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $pki/ca.crt }
authorization: { mode: Webhook }
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
failCgroupV1: false
protectKernelDefaults: true
containerRuntimeEndpoint: unix://$NODE_ROOT/containerd/containerd.sock
failSwapOn: false
clusterDomain: cluster.local
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
rotateCertificates: false
serializeImagePulls: false
# a shared CI disk: never evict or garbage-collect because other work fills it
evictionHard: { memory.available: 100Mi, nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%" }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
  cat > "$NODE_ROOT/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: $kc/kube-proxy.conf }
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# 0 = leave the (host-global) conntrack sysctls alone
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
EOF
  local s
  for s in "${KUBELET_SYSCTLS[@]}"; do
    mkdir -p "$(dirname "$NODE_ROOT/sysctl/${s%%=*}")"
    echo "${s#*=}" > "$NODE_ROOT/sysctl/${s%%=*}"
  done
}

# The holder and the namespaces' contents (run as the holder's first job).
setup_namespaces() {
  local s
  in_node mount -t tmpfs -o mode=0755,size=256m peripety-node-run /run
  mkdir -p "$NODE_ROOT/var-lib" "$NODE_ROOT/var-log"
  in_node mount --bind "$NODE_ROOT/var-lib" /var/lib
  in_node mount --bind "$NODE_ROOT/var-log" /var/log
  for s in "${KUBELET_SYSCTLS[@]}"; do in_node mount --bind "$NODE_ROOT/sysctl/${s%%=*}" "/proc/sys/${s%%=*}"; done
  in_node ip link set lo up
  in_node ip link add pn0 type veth peer name pn1
  in_node ip addr add "$NODE_IP/$NODE_PREFIX" dev pn0
  in_node ip link set pn0 up
  in_node ip link set pn1 up
  in_node ip route add default dev pn0
  in_node sysctl -qw net.ipv4.ip_forward=1
}

cmd_up() {
  [ "$(id -u)" -eq 0 ] || die "needs root (namespaces, cgroups, containerd)"
  if holder_pid >/dev/null; then die "a node is already running (NODE_ROOT=$NODE_ROOT); hack/node.sh down first"; fi
  [ ! -e "$NODE_ROOT" ] || die "$NODE_ROOT exists from an earlier run; hack/node.sh down removes it"
  local c
  for c in containerd ctr runc nsenter unshare ip iptables; do command -v "$c" >/dev/null || die "no $c on PATH (hack/ci-deps.sh installs it)"; done
  [ -x /usr/lib/cni/bridge ] || die "no CNI plugins in /usr/lib/cni (Debian containernetworking-plugins)"
  local t0 t1
  t0=$(now)
  BIN=$(bash "$root/hack/node-build.sh")
  # shellcheck source=hack/lib/kubernetes-module.sh
  . "$root/hack/lib/kubernetes-module.sh"
  mkdir -p "$NODE_ROOT/logs" "$NODE_ROOT/pids"
  echo "$BIN" > "$NODE_ROOT/bin.path"
  write_configs
  make_cgroups

  # the holder: sleeps in the new namespaces until down kills it
  (
    while read -r h; do echo "$BASHPID" > "$h/$CGROUP_ROOT/system/cgroup.procs"; done < <(hierarchies)
    exec setsid unshare --mount --net --propagation private -- sleep infinity
  ) < /dev/null > /dev/null 2>&1 &
  echo "$!" > "$NODE_ROOT/holder.pid"
  wait_for "the namespace holder" 10 holder_pid
  setup_namespaces

  spawn etcd "$BIN/etcd" --name "$NODE_NAME" --data-dir "$NODE_ROOT/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "$NODE_NAME=http://127.0.0.1:2380" --log-level warn
  local pki="$NODE_ROOT/pki" kc="$NODE_ROOT/kubeconfig"
  spawn kube-apiserver "$BIN/kube-apiserver" \
    --advertise-address "$NODE_IP" --bind-address "$NODE_IP" --secure-port 6443 \
    --etcd-servers http://127.0.0.1:2379 \
    --allow-privileged=true --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --client-ca-file "$pki/ca.crt" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key" \
    --requestheader-client-ca-file "$pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-extra-headers-prefix X-Remote-Extra- --requestheader-group-headers X-Remote-Group \
    --requestheader-username-headers X-Remote-User \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR"
  spawn containerd containerd --config "$NODE_ROOT/containerd/config.toml"
  wait_for "kube-apiserver" 60 in_net "$BIN/kubectl" --kubeconfig "$kc/super-admin.conf" get --raw /readyz
  log "API server ready after $(since "$t0")s"
  # What kubeadm init would create: admin.conf's group as cluster admin, and
  # the API server's kubelet client allowed to read logs and exec.
  in_net "$BIN/kubectl" --kubeconfig "$kc/super-admin.conf" create clusterrolebinding kubeadm:cluster-admins \
    --clusterrole cluster-admin --group kubeadm:cluster-admins >/dev/null
  in_net "$BIN/kubectl" --kubeconfig "$kc/super-admin.conf" create clusterrolebinding kube-apiserver:kubelet-api-admin \
    --clusterrole system:kubelet-api-admin --user kube-apiserver-kubelet-client >/dev/null

  spawn kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$kc/controller-manager.conf" \
    --authentication-kubeconfig "$kc/controller-manager.conf" --authorization-kubeconfig "$kc/controller-manager.conf" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --root-ca-file "$pki/ca.crt" --service-account-private-key-file "$pki/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --controllers '*,bootstrapsigner,tokencleaner'
  spawn kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$kc/scheduler.conf" \
    --authentication-kubeconfig "$kc/scheduler.conf" --authorization-kubeconfig "$kc/scheduler.conf" \
    --bind-address 127.0.0.1 --leader-elect=false

  wait_for "containerd" 30 ctr --address "$NODE_ROOT/containerd/containerd.sock" version
  load_pause
  spawn kubelet "$BIN/kubelet" --config "$NODE_ROOT/kubelet.yaml" --kubeconfig "$kc/kubelet.conf" \
    --node-ip "$NODE_IP" --hostname-override "$NODE_NAME" --v 1
  spawn kube-proxy "$BIN/kube-proxy" --config "$NODE_ROOT/kube-proxy.yaml"
  t1=$(now)
  wait_for "Node $NODE_NAME to be Ready" 120 kubectl_ wait --for condition=Ready "node/$NODE_NAME" --timeout 2s
  log "Node $NODE_NAME Ready $(since "$t1")s after the kubelet started ($(since "$t0")s in all); KUBECONFIG=$(kubeconfig)"
}

# The pause image: the static pause binary in an image FROM scratch, built
# with the project's podman (hack/image.sh podman) once per version.
load_pause() {
  local archive="$BIN/../pause-${PAUSE_IMAGE##*:}.tar" ctx
  if [ ! -f "$archive" ]; then
    ctx=$(mktemp -d)
    cp "$BIN/pause" "$ctx/pause"
    printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$ctx/Containerfile"
    bash "$root/hack/image.sh" podman build --network=none -q -t "$PAUSE_IMAGE" "$ctx" >/dev/null
    bash "$root/hack/image.sh" podman save --format docker-archive -o "$archive.new" "$PAUSE_IMAGE" >/dev/null
    mv "$archive.new" "$archive"
    rm -rf "$ctx"
  fi
  cmd_load "$archive"
}

cmd_load() {
  holder_pid >/dev/null || die "no node running"
  local a
  for a in "$@"; do
    [ -f "$a" ] || die "no such image archive: $a"
    ctr --address "$NODE_ROOT/containerd/containerd.sock" -n k8s.io images import "$a" >&2
  done
}

# --- down --------------------------------------------------------------------
# Every process of the node: in its cgroup root (components, shims,
# containers) or in its mount namespace.
node_pids() {
  local h mnt p
  while read -r h; do
    [ -d "$h/$CGROUP_ROOT" ] && find "$h/$CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null
  done < <(hierarchies)
  mnt=$(readlink "/proc/$(cat "$NODE_ROOT/holder.pid" 2>/dev/null || echo 0)/ns/mnt" 2>/dev/null || true)
  if [ -n "$mnt" ]; then
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$mnt" ] && echo "${p#/proc/}"
    done
  fi
  return 0
}

cmd_down() {
  [ "$(id -u)" -eq 0 ] || die "needs root"
  local t0 pids h left=()
  t0=$(now)
  # the kubelet first, so that it restarts nothing while the rest goes
  if [ -f "$NODE_ROOT/pids/kubelet" ]; then kill -9 "$(cat "$NODE_ROOT/pids/kubelet")" 2>/dev/null || true; fi
  for _ in $(seq 1 50); do
    mapfile -t pids < <(node_pids | sort -u | grep -v "^$$\$" || true)
    [ "${#pids[@]}" -eq 0 ] && break
    kill -9 "${pids[@]}" 2>/dev/null || true
    sleep 0.2
  done
  [ "${#pids[@]}" -eq 0 ] || left+=("processes: ${pids[*]}")
  # cgroup directories, deepest first (a directory goes once its processes have)
  while read -r h; do
    [ -d "$h/$CGROUP_ROOT" ] || continue
    for _ in $(seq 1 25); do
      find "$h/$CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$h/$CGROUP_ROOT" ] || break
      sleep 0.2
    done
    [ ! -d "$h/$CGROUP_ROOT" ] || left+=("cgroup: $h/$CGROUP_ROOT")
  done < <(hierarchies)
  if grep -q " $NODE_ROOT" /proc/self/mountinfo; then
    left+=("mounts: $(grep " $NODE_ROOT" /proc/self/mountinfo | awk '{print $5}' | tr '\n' ' ')")
  elif [ -e "$NODE_ROOT" ]; then
    rm -rf "$NODE_ROOT"
  fi
  if [ "${#left[@]}" -gt 0 ]; then
    log "down left things behind: ${left[*]}"
    return 1
  fi
  log "down in $(since "$t0")s: no process, cgroup, mount or file of the node is left"
}

# --- the rest ----------------------------------------------------------------
cmd_env() {
  local pid
  pid=$(holder_pid) || die "no node running (NODE_ROOT=$NODE_ROOT)"
  echo "export KUBECONFIG=$(kubeconfig)"
  echo "export PERIPETY_NODE_PID=$pid"
  echo "export PERIPETY_NODE_NAME=$NODE_NAME"
  echo "export PERIPETY_NODE_IP=$NODE_IP"
  echo "export PERIPETY_NODE_BIN=$(node_bin)"
  echo "# the API server listens at https://$NODE_IP:6443 inside the node's network namespace:"
  echo "# run clients with: hack/node.sh exec kubectl … (or nsenter --target $pid --net -- …)"
}

cmd_exec() {
  holder_pid >/dev/null || die "no node running (NODE_ROOT=$NODE_ROOT)"
  nsenter --target "$(holder_pid)" --net -- env KUBECONFIG="$(kubeconfig)" PATH="$(node_bin):$root/hack/bin:$PATH" "$@"
}

cmd_status() {
  holder_pid >/dev/null || { log "no node running"; return 1; }
  BIN=$(node_bin)
  kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}

cmd_diag() {
  local dir=${1:?usage: hack/node.sh diag DIR}
  mkdir -p "$dir"
  cp -r "$NODE_ROOT/logs" "$dir/components" 2>/dev/null || true
  cp -r "$NODE_ROOT/var-log/pods" "$dir/pods" 2>/dev/null || true
  if holder_pid >/dev/null; then
    BIN=$(node_bin)
    kubectl_ get nodes,pods,ds,deploy,svc,events -A -o wide > "$dir/objects.txt" 2>&1 || true
    kubectl_ describe nodes > "$dir/describe-nodes.txt" 2>&1 || true
    kubectl_ describe pods -A > "$dir/describe-pods.txt" 2>&1 || true
    in_node iptables-save > "$dir/node-iptables.txt" 2>&1 || true
    in_node ip addr > "$dir/node-ip-addr.txt" 2>&1 || true
  fi
  log "diagnostics in $dir"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  load) shift; cmd_load "$@" ;;
  exec) shift; [ $# -gt 0 ] || die "usage: hack/node.sh exec CMD [ARGS…]"; cmd_exec "$@" ;;
  diag) shift; cmd_diag "$@" ;;
  *) echo "usage: hack/node.sh up|down|env|status|load ARCHIVE…|exec CMD…|diag DIR" >&2; exit 2 ;;
esac
