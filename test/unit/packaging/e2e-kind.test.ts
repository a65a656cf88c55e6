// hack/e2e-kind.sh without a container engine (none runs on the project's
// machines; CI's e2e-kind job runs it for real):
//
// - static: bash -n, shellcheck (when installed), the values it sets exist in
//   the chart, its port/namespace/labels/plugin names are the chart's, and
//   the kernel line it injects is one the parsers turn into the event type it
//   waits for (the real parser, through `prpt parse`);
// - its control flow, with fake docker/kind/kubectl/helm that record their
//   calls and answer like a cluster would: a passing run (the line written by
//   the script's own `docker exec … sh -c` command lands in a file standing
//   for /dev/kmsg, the fake cluster then shows the Event and the metrics for
//   that device), a run where the Event never comes (fails at the deadline,
//   exports diagnostics, deletes the cluster), KEEP_CLUSTER=1, and a missing
//   container engine (fails before creating anything).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { repoRoot } from './dockerfile.ts';
import { helmBinary, renderChart } from './chart.ts';

const SCRIPT = path.join(repoRoot, 'hack/e2e-kind.sh');
const text = readFileSync(SCRIPT, 'utf8');
const scalar = (name: string): string => {
  const m = new RegExp(`^${name}=(.*)$`, 'm').exec(text);
  assert.ok(m, `hack/e2e-kind.sh has no ${name}=`);
  return m[1]!.replace(/\s+#.*$/, '').replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1');
};
const helmSet = (): string[] => {
  const m = /^HELM_SET=\(\n([\s\S]*?)^\)/m.exec(text);
  assert.ok(m, 'no HELM_SET=( … )');
  return m[1]!.split('\n').map((l) => l.trim()).filter((l) => l !== '').map((l) => l.replace(/^"(.*)"$/, '$1'));
};
/** HELM_SET with the script's variables given the values they have in a run. */
const helmSetExpanded = (): string[] => helmSet().map((s) => s.replace('$IMAGE_REPOSITORY', 'peripety.local/peripety').replace('$IMAGE_TAG', 'e2e-20260101000000'));

describe('hack/e2e-kind.sh (static)', () => {
  it('is executable bash that parses, with strict mode and a cleanup trap', () => {
    assert.ok(statSync(SCRIPT).mode & 0o111, 'not executable');
    const r = spawnSync('bash', ['-n', SCRIPT], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(text, /^set -euo pipefail$/m);
    assert.match(text, /^trap on_exit EXIT$/m);
    for (const v of ['KIND_NODE_IMAGE', 'KEEP_CLUSTER', 'ARTIFACTS', 'KIND', 'HELM', 'KUBECTL', 'DOCKER']) assert.match(text, new RegExp(`^${v}=\\$\\{${v}:-`, 'm'), `${v} is not overridable`);
  });

  it('is shellcheck-clean', (t) => {
    const r = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' });
    if (r.error) {
      t.skip('*** shellcheck is not installed (apt-get install shellcheck): NOT CHECKED ***');
      return;
    }
    // every hack/*.sh (hack/image.sh, hack/envtest.sh, …), not only this one
    const scripts = readdirSync(path.join(repoRoot, 'hack')).filter((f) => f.endsWith('.sh')).map((f) => `hack/${f}`);
    assert.ok(scripts.includes('hack/e2e-kind.sh') && scripts.includes('hack/image.sh'));
    for (const f of scripts) {
      const c = spawnSync('shellcheck', ['-x', path.join(repoRoot, f)], { encoding: 'utf8' });
      assert.equal(c.status, 0, `${f}:\n${c.stdout}${c.stderr}`);
    }
  });

  it('sets only values the chart has, and agrees with the chart on port, namespaces, labels and plugin names', async () => {
    const values = parse(readFileSync(path.join(repoRoot, 'charts/peripety/values.yaml'), 'utf8')) as Record<string, unknown>;
    for (const s of helmSet()) {
      const key = s.slice(0, s.indexOf('='));
      let node: unknown = values;
      for (const part of key.split('.')) {
        assert.ok(node !== null && typeof node === 'object' && part in node, `--set ${key}: the chart's values.yaml has no ${key}`);
        node = (node as Record<string, unknown>)[part];
      }
    }
    const agent = values.agent as { port: number; eventsNamespace: string };
    assert.equal(Number(scalar('AGENT_PORT')), agent.port, 'AGENT_PORT is not the chart\'s agent.port');
    assert.equal(scalar('EVENTS_NAMESPACE'), agent.eventsNamespace);

    const objects = await renderChart(await helmBinary(), helmSetExpanded().flatMap((s) => ['--set', s]));
    const image = (objects.find((o) => o.kind === 'DaemonSet')!.spec as { template: { spec: { containers: { image: string; imagePullPolicy: string }[] } } }).template.spec.containers[0]!;
    assert.equal(image.image, 'peripety.local/peripety:e2e-20260101000000', 'the agent does not run the image the script loads');
    assert.equal(image.imagePullPolicy, 'IfNotPresent', 'a loaded image must not be pulled');
    const release = scalar('RELEASE');
    assert.equal(release, 'peripety');
    const podLabels = (kind: string) => {
      const o = objects.find((x) => x.kind === kind);
      assert.ok(o, `no ${kind}`);
      return (o.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    };
    const matches = (selector: string, labels: Record<string, string>) =>
      selector.replace('$RELEASE', release).split(',').every((kv) => labels[kv.split('=')[0]!] === kv.split('=')[1]);
    assert.ok(matches(scalar('AGENT_SELECTOR'), podLabels('DaemonSet')), 'AGENT_SELECTOR does not select the agent pods');
    assert.ok(matches(scalar('CONTROLLER_SELECTOR'), podLabels('Deployment')), 'CONTROLLER_SELECTOR does not select the controller pods');
    assert.ok(!matches(scalar('AGENT_SELECTOR'), podLabels('Deployment')), 'AGENT_SELECTOR also selects the controller');
    const seps = objects.filter((o) => o.kind === 'StorageEventPlugin');
    for (const name of ['kmsg', 'k8s-events']) assert.ok(seps.some((o) => o.metadata.name === name), `the script waits for plugin ${name}, the chart creates no StorageEventPlugin of that name`);
    const kmsg = seps.find((o) => o.metadata.name === 'kmsg')!;
    assert.equal((kmsg.spec as { config: { accept_user_facility: boolean } }).config.accept_user_facility, true, 'the kmsg collector does not accept the injected (user facility) line');
    const ns = objects.find((o) => o.kind === 'DaemonSet')!.metadata.namespace;
    assert.equal(scalar('NAMESPACE'), ns);
  });

  it('the injected line becomes the event the script waits for (real parsers)', () => {
    const dev = 'sdpeabcdef';
    const line = scalar('INJECT_LINE').replace('DEV', dev);
    const level = scalar('INJECT_LEVEL');
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin/prpt'), 'parse', '--json', '--no-resolve', '-'], { input: `${level},1,1000,-;${line}\n`, encoding: 'utf8', cwd: repoRoot });
    assert.equal(r.status, 0, r.stderr);
    const events = r.stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { event_type: string; system: string; severity: string; dev_name: string; msg: string });
    assert.equal(events.length, 1, r.stdout);
    assert.equal(events[0]!.event_type, scalar('EXPECT_REASON'));
    assert.equal(events[0]!.system, scalar('EXPECT_SYSTEM'));
    assert.equal(events[0]!.severity, 'error', 'severity error: a Warning Event (k8s-events min_severity warn) and peripety_device_errors_total');
    assert.equal(events[0]!.dev_name, dev);
    assert.ok(events[0]!.msg.includes(dev), 'the Event note (the event msg) names the device the script greps for');
    for (const metric of ['peripety_device_errors_total', 'peripety_events_total', 'peripety_plugin_up']) {
      const hit = spawnSync('grep', ['-rqF', `'${metric}'`, path.join(repoRoot, 'src')]);
      assert.equal(hit.status, 0, `no metric ${metric} in src/`);
    }
  });
});

// ---------------------------------------------------------------------------
// fake tools

const FAKE = String.raw`#!/usr/bin/env bash
# one fake for docker, kind, kubectl, helm: logs each call, answers like a 3-node cluster
set -u
tool=$(basename "$0")
echo "$tool $*" >> "$FAKE_DIR/calls"
all="$*"
injected_dev() { [ -f "$FAKE_DIR/kmsg" ] && sed -n 's/^<[0-9]*>sd [0-9:]* \[\([a-z0-9]*\)\].*/\1/p' "$FAKE_DIR/kmsg" | head -n1; }
case "$tool" in
docker)
  case "$1" in
  info) [ "$FAKE_MODE" = no-engine ] && { echo "Cannot connect to the Docker daemon" >&2; exit 1; }; exit 0 ;;
  build) exit 0 ;;
  exec)
    # run the script's own command, with /dev/kmsg standing in a file
    shift 2
    [ "$1" = sh ] && [ "$2" = -c ] || exit 90
    script=$(printf '%s' "$3" | sed "s#/dev/kmsg#$FAKE_DIR/kmsg#g")
    shift 3
    sh -c "$script" "$@"; exit $? ;;
  image) exit 0 ;;
  esac ;;
kind)
  case "$1" in
  version) echo "kind v0.33.0 fake" ;;
  get) [ -f "$FAKE_DIR/cluster" ] && echo peripety-e2e ;;
  create) touch "$FAKE_DIR/cluster"; cat > "$FAKE_DIR/kind-config.yaml" ;;
  delete) rm -f "$FAKE_DIR/cluster" ;;
  load) ;;
  export) mkdir -p "$3"; echo "node logs" > "$3/fake.log" ;;
  esac
  exit 0 ;;
helm)
  case "$1" in version) echo "v3.22.0+fake" ;; esac
  exit 0 ;;
kubectl)
  dev=$(injected_dev)
  case "$all" in
  "get nodes -o name") printf 'node/peripety-e2e-control-plane\nnode/peripety-e2e-worker\nnode/peripety-e2e-worker2\n' ;;
  "get nodes -l !node-role.kubernetes.io/control-plane -o jsonpath="*) printf 'peripety-e2e-worker' ;;
  *"get daemonset -l "*) printf 'peripety-agent' ;;
  *"get pods -l "*"--field-selector=status.phase=Running -o name"|"get pods -n peripety-system -l "*" -o name") printf 'pod/peripety-agent-a\npod/peripety-agent-b\npod/peripety-agent-c\n' ;;
  "get pods -n peripety-system -o name") printf 'pod/peripety-agent-a\npod/peripety-agent-b\npod/peripety-agent-c\npod/peripety-controller-x\npod/peripety-controller-y\n' ;;
  *"get pods -l "*"--field-selector spec.nodeName=peripety-e2e-worker -o jsonpath="*) printf 'peripety-agent-b' ;;
  "get --raw /api/v1/namespaces/peripety-system/pods/peripety-agent-"*":9477/proxy/metrics")
    echo 'peripety_plugin_up{plugin="kmsg"} 1'
    echo 'peripety_plugin_up{plugin="k8s-events"} 1'
    if [ -n "$dev" ] && [ "$FAKE_MODE" != no-metric ]; then
      echo "peripety_device_errors_total{device=\"$dev\",system=\"scsi\"} 1"
      echo 'peripety_events_total{system="scsi",event_type="SCSI_MEDIUM_ERROR",severity="error"} 1'
    fi ;;
  "get events.events.k8s.io "*)
    [ -n "$dev" ] && [ "$FAKE_MODE" != no-event ] || exit 0
    case "$all" in
    *"{.type} {.reportingController} {.note}"*) echo "Warning peripety.io/agent SCSI medium error on $dev: Medium Error [current]" ;;
    *"{.regarding.name} {.note}"*) printf '%s\n' "peripety-e2e-worker SCSI medium error on $dev" "peripety-e2e-worker2 SCSI medium error on $dev" ;;
    *"regarding.kind=Node,regarding.name=peripety-e2e-worker,reason=SCSI_MEDIUM_ERROR"*"{.note}"*) echo "SCSI medium error on $dev: Medium Error [current]" ;;
    *) echo "events table" ;;
    esac ;;
  *) echo "fake kubectl output" ;;
  esac
  exit 0 ;;
esac
exit 0
`;

describe('hack/e2e-kind.sh with fake docker, kind, kubectl and helm', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-e2e-fake-'));
    mkdirSync(path.join(dir, 'bin'));
    writeFileSync(path.join(dir, 'bin/fake'), FAKE);
    chmodSync(path.join(dir, 'bin/fake'), 0o755);
    for (const t of ['docker', 'kind', 'kubectl', 'helm']) symlinkSync(path.join(dir, 'bin/fake'), path.join(dir, 'bin', t));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const runScript = (name: string, mode: string, extra: Record<string, string> = {}) => {
    const run = path.join(dir, name);
    mkdirSync(run);
    const r = spawnSync('bash', [SCRIPT], {
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: run,
        TMPDIR: run,
        DOCKER: path.join(dir, 'bin/docker'), KIND: path.join(dir, 'bin/kind'), KUBECTL: path.join(dir, 'bin/kubectl'), HELM: path.join(dir, 'bin/helm'),
        FAKE_DIR: run, FAKE_MODE: mode, ARTIFACTS: path.join(run, 'artifacts'), E2E_TIMEOUT: '3',
        ...extra,
      },
    });
    const calls = existsSync(path.join(run, 'calls')) ? readFileSync(path.join(run, 'calls'), 'utf8').trim().split('\n') : [];
    return { ...r, run, calls, out: `${r.stdout}${r.stderr}` };
  };

  it('a passing run: builds, creates 1+2 nodes, loads, installs with the values, injects on a worker, sees Event and metrics, deletes the cluster', () => {
    const r = runScript('pass', 'ok', { KIND_NODE_IMAGE: 'kindest/node:v1.36.4' });
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /PASSED/);
    const first = (re: RegExp) => r.calls.findIndex((c) => re.test(c));
    const order = [/^docker build -t peripety\.local\/peripety:e2e-\d+ /, /^kind create cluster --name peripety-e2e --image kindest\/node:v1\.36\.4 /,
      /^kind load docker-image peripety\.local\/peripety:e2e-\d+ --name peripety-e2e$/, /^helm install peripety charts\/peripety -n peripety-system --create-namespace .*--wait/,
      /^docker exec peripety-e2e-worker sh -c /, /^kubectl get events\.events\.k8s\.io /, /^kind delete cluster --name peripety-e2e/].map(first);
    assert.ok(order.every((i) => i >= 0), `missing calls:\n${r.calls.join('\n')}`);
    assert.deepEqual([...order].sort((a, b) => a - b), order, `calls out of order:\n${r.calls.join('\n')}`);
    const install = r.calls.find((c) => c.startsWith('helm install'))!;
    assert.match(install, /--set image\.repository=peripety\.local\/peripety --set image\.tag=e2e-\d+ --set image\.pullPolicy=IfNotPresent --set defaultResources\.kmsg\.acceptUserFacility=true/);
    const config = parse(readFileSync(path.join(r.run, 'kind-config.yaml'), 'utf8')) as { nodes: { role: string }[] };
    assert.deepEqual(config.nodes.map((n) => n.role), ['control-plane', 'worker', 'worker']);
    const kmsg = readFileSync(path.join(r.run, 'kmsg'), 'utf8');
    assert.match(kmsg, /^<3>sd 2:0:0:0: \[sdpe[a-z]{6}\] tag#0 Sense Key : Medium Error \[current\]\n$/);
    assert.match(r.out, /nodes with an Event for sdpe[a-z]{6} \(kind nodes share one kernel\): peripety-e2e-worker peripety-e2e-worker2/);
    assert.ok(!existsSync(path.join(r.run, 'artifacts', 'kind-logs')), 'diagnostics exported although the run passed');
    assert.ok(!existsSync(path.join(r.run, 'cluster')), 'cluster not deleted');
  });

  it('no Event by the deadline: fails, exports diagnostics, deletes the cluster', () => {
    const r = runScript('no-event', 'no-event');
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /gave up after 3s: an Event SCSI_MEDIUM_ERROR regarding Node peripety-e2e-worker/);
    assert.match(r.out, /FAILED \(exit 1\); diagnostics in /);
    const files = readdirSync(path.join(r.run, 'artifacts')).sort();
    for (const f of ['kind-logs', 'logs', 'metrics', 'describe.txt', 'events.yaml', 'peripety-resources.yaml', 'helm-release.txt', 'nodes.txt']) assert.ok(files.includes(f), `no ${f} in the artifacts: ${files.join(', ')}`);
    assert.deepEqual(readdirSync(path.join(r.run, 'artifacts', 'metrics')).sort(), ['peripety-agent-a.txt', 'peripety-agent-b.txt', 'peripety-agent-c.txt']);
    assert.deepEqual(readdirSync(path.join(r.run, 'artifacts', 'logs')).filter((f) => !f.includes('previous')).sort(),
      ['peripety-agent-a.log', 'peripety-agent-b.log', 'peripety-agent-c.log', 'peripety-controller-x.log', 'peripety-controller-y.log']);
    assert.ok(!files.some((f) => /kubeconfig/.test(f)), 'the kubeconfig must not be among the uploaded artifacts');
    assert.ok(r.calls.some((c) => c.startsWith('kind export logs')), 'kind export logs not called');
    assert.ok(!existsSync(path.join(r.run, 'cluster')), 'cluster not deleted after a failure');
  });

  it('no metric by the deadline: fails', () => {
    const r = runScript('no-metric', 'no-metric');
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /gave up after 3s: peripety_device_errors_total\{device="sdpe[a-z]{6}"\}/);
  });

  it('KEEP_CLUSTER=1 keeps the cluster and says how to reach it', () => {
    const r = runScript('keep', 'ok', { KEEP_CLUSTER: '1' });
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /KEEP_CLUSTER=1: cluster peripety-e2e kept; export KUBECONFIG=\S+/);
    assert.ok(existsSync(path.join(r.run, 'cluster')), 'cluster deleted despite KEEP_CLUSTER=1');
    assert.ok(!r.calls.some((c) => c.startsWith('kind delete')));
  });

  it('no container engine: fails before creating anything', () => {
    const r = runScript('no-engine', 'no-engine');
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /cannot reach a container engine/);
    assert.ok(!r.calls.some((c) => c.startsWith('kind create') || c.startsWith('kind delete')), r.calls.join('\n'));
  });
});
