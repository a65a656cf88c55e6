#!/usr/bin/env bash
# hack/e2e-kind.sh — peripety end to end on a real multi-node kind cluster.
#
#   1. builds the image (Dockerfile) with docker;
#   2. creates a kind cluster: 1 control plane + 2 workers, node image
#      $KIND_NODE_IMAGE;
#   3. loads the image into the nodes (`kind load docker-image`);
#   4. installs the chart with Helm (its crds/ first, as `helm install` does),
#      with the kmsg collector accepting user-space lines
#      (defaultResources.kmsg.acceptUserFacility=true), and waits for the
#      agents, the controller and every StorageEventPlugin/StorageBackend to be
#      Ready;
#   5. writes a SCSI medium-error line for a device no machine has into
#      /dev/kmsg on a worker (`docker exec <worker> … > /dev/kmsg`);
#   6. asserts, with retries up to a deadline, the Kubernetes Event regarding
#      that worker's Node (reason = the event type) and the metrics of that
#      worker's agent (peripety_device_errors_total for the device,
#      peripety_events_total for the type), read through the API server's pod
#      proxy (the agent listens on the node address, hostNetwork);
#   7. on failure exports diagnostics into $ARTIFACTS: `kind export logs`,
#      nodes, objects, describe, every pod's logs, Events, the peripety
#      resources, Helm's view, each agent's /metrics;
#   8. deletes the cluster (KEEP_CLUSTER=1 keeps it and prints its KUBECONFIG).
#
# kind nodes are containers on ONE host: they share its kernel, so every
# agent in the cluster reads the injected line and reports it on its own
# Node. The script asserts the worker's Event and metrics and prints which
# other nodes reported it.
#
# Tools from PATH, or from these variables: DOCKER, KIND, KUBECTL, HELM.
# Environment (defaults in brackets):
#   KIND_NODE_IMAGE   [kindest/node:v1.36.4] node image (a kind release's published image)
#   CLUSTER_NAME      [peripety-e2e]; an existing cluster of this name is deleted first
#   IMAGE_REPOSITORY  [peripety.local/peripety]   IMAGE_TAG [e2e-<timestamp>]
#   SKIP_BUILD=1      use an existing $IMAGE_REPOSITORY:$IMAGE_TAG instead of building it
#   ARTIFACTS         [${TMPDIR:-/tmp}/peripety-e2e-kind] diagnostics (written on failure)
#   E2E_KUBECONFIG    [${TMPDIR:-/tmp}/peripety-e2e-kind-$CLUSTER_NAME.kubeconfig] the cluster's kubeconfig
#   E2E_TIMEOUT       [300] seconds for each wait (rollouts, readiness, the Event)
#   KEEP_CLUSTER=1    leave the cluster running at the end
# Needs: docker (a running daemon), kind, kubectl, helm (v3). CI:
# .github/workflows/ci.yaml, job e2e-kind. docs/packaging.md describes it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

DOCKER=${DOCKER:-docker}
KIND=${KIND:-kind}
KUBECTL=${KUBECTL:-kubectl}
HELM=${HELM:-helm}
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-kindest/node:v1.36.4}
CLUSTER_NAME=${CLUSTER_NAME:-peripety-e2e}
IMAGE_REPOSITORY=${IMAGE_REPOSITORY:-peripety.local/peripety}
IMAGE_TAG=${IMAGE_TAG:-e2e-$(date -u +%Y%m%d%H%M%S)}
SKIP_BUILD=${SKIP_BUILD:-0}
ARTIFACTS=${ARTIFACTS:-${TMPDIR:-/tmp}/peripety-e2e-kind}
E2E_TIMEOUT=${E2E_TIMEOUT:-300}
KEEP_CLUSTER=${KEEP_CLUSTER:-0}

# What the chart is installed as, and what it is installed with.
RELEASE=peripety
NAMESPACE=peripety-system
CHART=charts/peripety
AGENT_PORT=9477                     # the chart's agent.port (default)
EVENTS_NAMESPACE=default            # the chart's agent.eventsNamespace (default)
AGENT_SELECTOR="app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=agent"
CONTROLLER_SELECTOR="app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=controller"
HELM_SET=(
  "image.repository=$IMAGE_REPOSITORY"
  "image.tag=$IMAGE_TAG"
  "image.pullPolicy=IfNotPresent"
  "defaultResources.kmsg.acceptUserFacility=true"
)

# The injected kernel line (DEV is replaced by a fresh device name) and the
# event the parsers make of it: the scsi parser's SCSI_MEDIUM_ERROR, severity
# error (test/unit/packaging/e2e-kind.test.ts checks this pairing).
INJECT_LEVEL=3
INJECT_LINE='sd 2:0:0:0: [DEV] tag#0 Sense Key : Medium Error [current]'
EXPECT_REASON=SCSI_MEDIUM_ERROR
EXPECT_SYSTEM=scsi

IMAGE="$IMAGE_REPOSITORY:$IMAGE_TAG"
# The cluster's kubeconfig: never the user's ~/.kube/config, and not in $ARTIFACTS (uploaded by CI)
export KUBECONFIG=${E2E_KUBECONFIG:-${TMPDIR:-/tmp}/peripety-e2e-kind-$CLUSTER_NAME.kubeconfig}

log() { echo "hack/e2e-kind.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
k() { "$KUBECTL" "$@"; }

# until_ok WHAT SECONDS CMD… — run CMD until it succeeds; fail after SECONDS.
until_ok() {
  local what=$1 timeout=$2 delay=1
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "gave up after ${timeout}s: $what"
      return 1
    fi
    sleep "$delay"
    if [ "$delay" -lt 8 ]; then delay=$((delay * 2)); fi
  done
}

agent_metrics() { # agent_metrics POD
  k get --raw "/api/v1/namespaces/$NAMESPACE/pods/$1:$AGENT_PORT/proxy/metrics"
}

export_logs() {
  local d=$ARTIFACTS pod
  mkdir -p "$d/logs" "$d/metrics"
  log "exporting diagnostics into $d"
  "$KIND" export logs "$d/kind-logs" --name "$CLUSTER_NAME" >"$d/kind-export.txt" 2>&1
  k get nodes -o wide >"$d/nodes.txt" 2>&1
  k get all,leases,configmaps -n "$NAMESPACE" -o wide >"$d/objects.txt" 2>&1
  k get pods -A -o wide >"$d/pods-all.txt" 2>&1
  k describe nodes >"$d/describe-nodes.txt" 2>&1
  k describe daemonsets,deployments,pods -n "$NAMESPACE" >"$d/describe.txt" 2>&1
  k get storageeventplugins,storagebackends -o yaml >"$d/peripety-resources.yaml" 2>&1
  k get events.events.k8s.io -A -o yaml >"$d/events.yaml" 2>&1
  k get events -A --sort-by=.lastTimestamp >"$d/events-core.txt" 2>&1
  "$HELM" status "$RELEASE" -n "$NAMESPACE" >"$d/helm-status.txt" 2>&1
  "$HELM" get all "$RELEASE" -n "$NAMESPACE" >"$d/helm-release.txt" 2>&1
  for pod in $(k get pods -n "$NAMESPACE" -o name 2>/dev/null); do
    pod=${pod#pod/}
    k logs -n "$NAMESPACE" "$pod" --all-containers --prefix --timestamps >"$d/logs/$pod.log" 2>&1
    k logs -n "$NAMESPACE" "$pod" --all-containers --prefix --timestamps --previous >"$d/logs/$pod.previous.log" 2>/dev/null ||
      rm -f "$d/logs/$pod.previous.log"
  done
  for pod in $(k get pods -n "$NAMESPACE" -l "$AGENT_SELECTOR" -o name 2>/dev/null); do
    pod=${pod#pod/}
    agent_metrics "$pod" >"$d/metrics/$pod.txt" 2>&1
  done
}

created=0
on_exit() {
  local status=$?
  set +e
  if [ "$status" -ne 0 ] && [ "$created" = 1 ]; then export_logs; fi
  if [ "$created" = 1 ]; then
    if [ "$KEEP_CLUSTER" = 1 ]; then
      log "KEEP_CLUSTER=1: cluster $CLUSTER_NAME kept; export KUBECONFIG=$KUBECONFIG; delete it with: $KIND delete cluster --name $CLUSTER_NAME"
    else
      log "deleting cluster $CLUSTER_NAME"
      "$KIND" delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG" >/dev/null 2>&1
      rm -f "$KUBECONFIG"
    fi
  fi
  if [ "$status" -eq 0 ]; then log "PASSED"; else log "FAILED (exit $status); diagnostics in $ARTIFACTS"; fi
  exit "$status"
}
trap on_exit EXIT

# --- preflight ------------------------------------------------------------------
for tool in "$DOCKER" "$KIND" "$KUBECTL" "$HELM"; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (set DOCKER, KIND, KUBECTL, HELM or put them on PATH)"
done
"$DOCKER" info >/dev/null 2>&1 || die "$DOCKER cannot reach a container engine (kind needs one)"
mkdir -p "$ARTIFACTS"
log "kind $("$KIND" version 2>/dev/null | head -n1); $("$HELM" version --short 2>/dev/null); node image $KIND_NODE_IMAGE; artifacts $ARTIFACTS"
t_start=$SECONDS

# --- the image ------------------------------------------------------------------
if [ "$SKIP_BUILD" = 1 ]; then
  "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1 || die "SKIP_BUILD=1 but there is no image $IMAGE"
  log "using the existing image $IMAGE"
else
  log "building $IMAGE"
  "$DOCKER" build -t "$IMAGE" "$root"
fi

# --- the cluster ----------------------------------------------------------------
if "$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  log "a cluster named $CLUSTER_NAME exists: deleting it first"
  "$KIND" delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG"
fi
created=1
log "creating cluster $CLUSTER_NAME (1 control plane + 2 workers)"
"$KIND" create cluster --name "$CLUSTER_NAME" --image "$KIND_NODE_IMAGE" --kubeconfig "$KUBECONFIG" \
  --wait "${E2E_TIMEOUT}s" --config - <<'EOF'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: worker
- role: worker
EOF
k get nodes -o wide
log "loading $IMAGE into the nodes"
"$KIND" load docker-image "$IMAGE" --name "$CLUSTER_NAME"

# --- the chart ------------------------------------------------------------------
set_args=()
for s in "${HELM_SET[@]}"; do set_args+=(--set "$s"); done
log "helm install $RELEASE $CHART -n $NAMESPACE --create-namespace ${set_args[*]} --wait"
"$HELM" install "$RELEASE" "$CHART" -n "$NAMESPACE" --create-namespace "${set_args[@]}" \
  --wait --timeout "${E2E_TIMEOUT}s"
k wait --for=condition=Established --timeout="${E2E_TIMEOUT}s" crd/storageeventplugins.peripety.io crd/storagebackends.peripety.io
daemonset=$(k -n "$NAMESPACE" get daemonset -l "$AGENT_SELECTOR" -o jsonpath='{.items[0].metadata.name}')
[ -n "$daemonset" ] || die "no agent DaemonSet labelled $AGENT_SELECTOR"
k -n "$NAMESPACE" rollout status "daemonset/$daemonset" --timeout="${E2E_TIMEOUT}s"
k -n "$NAMESPACE" wait --for=condition=Available --timeout="${E2E_TIMEOUT}s" deployment -l "$CONTROLLER_SELECTOR"
nodes=$(k get nodes -o name | wc -l)
agents=$(k -n "$NAMESPACE" get pods -l "$AGENT_SELECTOR" --field-selector=status.phase=Running -o name | wc -l)
[ "$agents" -eq "$nodes" ] || die "$agents agents running on $nodes nodes"
log "$agents agents and the controller are up; waiting for the controller to configure them"
# Ready = every selected node applied the resource (the controller pushed it, the agent took it)
k wait --for=condition=Ready --timeout="${E2E_TIMEOUT}s" storageeventplugins --all
k wait --for=condition=Ready --timeout="${E2E_TIMEOUT}s" storagebackends --all
k get storageeventplugins,storagebackends -o wide

# --- inject on a worker -----------------------------------------------------------
worker=$(k get nodes -l '!node-role.kubernetes.io/control-plane' -o jsonpath='{.items[0].metadata.name}')
[ -n "$worker" ] || die "no worker node"
agent_pod=$(k -n "$NAMESPACE" get pods -l "$AGENT_SELECTOR" --field-selector "spec.nodeName=$worker" -o jsonpath='{.items[0].metadata.name}')
[ -n "$agent_pod" ] || die "no agent pod on $worker"
plugins_up() {
  local m
  m=$(agent_metrics "$agent_pod") || return 1
  grep -q '^peripety_plugin_up{plugin="kmsg"} 1' <<<"$m" && grep -q '^peripety_plugin_up{plugin="k8s-events"} 1' <<<"$m"
}
until_ok "kmsg and k8s-events running in $agent_pod" "$E2E_TIMEOUT" plugins_up

# a device name no machine has (letters only, like a kernel sd name), new on every run
letters=abcdefghijklmnopqrstuvwxyz
dev=sdpe
for _ in 1 2 3 4 5 6; do dev+=${letters:RANDOM%26:1}; done
line=${INJECT_LINE//DEV/$dev}
log "writing into /dev/kmsg on $worker: <$INJECT_LEVEL>$line"
# shellcheck disable=SC2016 # $1 and $2 are expanded by the node's sh
"$DOCKER" exec "$worker" sh -c 'printf "<%s>%s\n" "$1" "$2" > /dev/kmsg' sh "$INJECT_LEVEL" "$line"
t_inject=$SECONDS

# --- the Event on the worker's Node --------------------------------------------------
node_event() { # the notes of Events regarding the worker with the expected reason
  k get events.events.k8s.io -n "$EVENTS_NAMESPACE" \
    --field-selector "regarding.kind=Node,regarding.name=$worker,reason=$EXPECT_REASON" \
    -o jsonpath='{range .items[*]}{.note}{"\n"}{end}'
}
event_seen() { node_event | grep -q -- "$dev"; }
until_ok "an Event $EXPECT_REASON regarding Node $worker for $dev" "$E2E_TIMEOUT" event_seen
log "Event $EXPECT_REASON regarding Node/$worker after $((SECONDS - t_inject))s: $(node_event | grep -- "$dev" | head -n1)"
k get events.events.k8s.io -n "$EVENTS_NAMESPACE" --field-selector "regarding.name=$worker,reason=$EXPECT_REASON" \
  -o custom-columns='NODE:.regarding.name,REASON:.reason,TYPE:.type,CONTROLLER:.reportingController,NOTE:.note'
etype=$(k get events.events.k8s.io -n "$EVENTS_NAMESPACE" --field-selector "regarding.name=$worker,reason=$EXPECT_REASON" \
  -o jsonpath='{range .items[*]}{.type} {.reportingController} {.note}{"\n"}{end}' | grep -- "$dev" | head -n1 | cut -d' ' -f1,2)
[ "$etype" = "Warning peripety.io/agent" ] || die "the Event is \"$etype\", want type Warning from peripety.io/agent"

# --- the metrics of the worker's agent -----------------------------------------------
metric_seen() {
  local m
  m=$(agent_metrics "$agent_pod") || return 1
  grep -E "^peripety_device_errors_total\{" <<<"$m" | grep -F "device=\"$dev\"" | grep -F "system=\"$EXPECT_SYSTEM\"" |
    awk '{ if ($NF >= 1) found = 1 } END { exit !found }' &&
  grep -E "^peripety_events_total\{" <<<"$m" | grep -F "event_type=\"$EXPECT_REASON\"" |
    awk '{ if ($NF >= 1) found = 1 } END { exit !found }'
}
until_ok "peripety_device_errors_total{device=\"$dev\"} on $agent_pod" "$E2E_TIMEOUT" metric_seen
agent_metrics "$agent_pod" | grep -E "^peripety_(device_errors_total|events_total)\{" | grep -E "$dev|$EXPECT_REASON" >&2

# --- the other nodes (same kernel: informational) ------------------------------------
others=$(k get events.events.k8s.io -n "$EVENTS_NAMESPACE" --field-selector "reason=$EXPECT_REASON" \
  -o jsonpath='{range .items[*]}{.regarding.name} {.note}{"\n"}{end}' | grep -- "$dev" | cut -d' ' -f1 | sort -u | tr '\n' ' ')
log "nodes with an Event for $dev (kind nodes share one kernel): $others"
log "end to end in $((SECONDS - t_start))s (node image $KIND_NODE_IMAGE)"
