// The Helm chart charts/peripety: nothing generated has drifted from its
// source (hack/gen-chart.ts --check: values.schema.json, values.yaml and the
// README values table from src/generate/chart-values.ts, crds/ copied, Chart.yaml
// appVersion, manifests/ rendered); `helm lint --strict` and `helm template`
// pass for the default values and for every values file in ci/ (one per
// feature); every rendered object parses, carries the chart's labels and
// lives in the namespace it should; per feature, the objects it adds are
// there (and gone when it is off); what the chart hands to the programs is
// valid for them — the agent's [main] through the agent's own config loader,
// the default StorageEventPlugins/StorageBackend through the controller's
// validation, the command-line flags through their parsers; the identities line
// up (the agent's --controller-identity is the controller's ServiceAccount,
// the token audience is the agent's), also for another release name and
// namespace.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { defaultValues } from '../../src/generate/chart-values.ts';
import { validateStorageBackend, validateStorageEventPlugin } from '../../src/crd/validate.ts';
import { parseAgentConfig } from '../../src/agent/agent.ts';
import { manifestObjects, type ManifestObject } from '../helpers/manifests.ts';
import { CHART, CI_FILES, helm, helmBinary, HELM_BUILD_TIMEOUT_MS, one, ROOT, template } from './helm.ts';
import { asConfigMap, asWorkload, type Container, type Workload } from './k8s-types.ts';

const NAMESPACE = 'peripety-system';
const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding', 'StorageEventPlugin', 'StorageBackend', 'Namespace', 'CustomResourceDefinition', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
const CHART_LABELS = ['helm.sh/chart', 'app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/version', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/part-of', 'app.kubernetes.io/component'];
const hasTemplate = (name: string) => readdirSync(path.join(CHART, 'templates')).includes(name);

const argValue = (c: Container, flag: string): string | undefined => c.args?.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
const container = (w: Workload): Container => w.spec.template.spec.containers[0]!;

/** Objects in the namespace they belong to, with the chart's labels, no duplicates. */
function checkObjects(objs: readonly ManifestObject[], o: { namespace: string; release: string; elsewhere?: Record<string, string> }): void {
  const seen = new Set<string>();
  for (const obj of objs) {
    const id = `${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    assert.ok(!seen.has(id), `${id} rendered twice`);
    seen.add(id);
    assert.match(obj.apiVersion, /^[a-z0-9.]+(\/v[0-9a-z]+)?$|^v1$/, `${id}: apiVersion`);
    assert.match(obj.metadata.name, /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, `${id}: a valid name`);
    assert.ok(obj.metadata.name.length <= 63 || obj.kind === 'ClusterRole', `${id}: name within 63 characters`);
    if (CLUSTER_SCOPED.has(obj.kind)) assert.equal(obj.metadata.namespace, undefined, `${id}: cluster-scoped, no namespace`);
    else assert.equal(obj.metadata.namespace, o.elsewhere?.[`${obj.kind}/${obj.metadata.name}`] ?? o.namespace, `${id}: namespace`);
    for (const l of CHART_LABELS) assert.ok(obj.metadata.labels?.[l], `${id}: label ${l}`);
    assert.equal(obj.metadata.labels?.['app.kubernetes.io/instance'], o.release, `${id}: instance label`);
    assert.equal(obj.metadata.labels?.['app.kubernetes.io/managed-by'], 'Helm');
  }
  // a workload selects exactly its own pods: selector ⊆ pod labels, and the component is in it
  for (const w of objs.filter((x) => x.kind === 'Deployment' || x.kind === 'DaemonSet').map(asWorkload)) {
    for (const [k, v] of Object.entries(w.spec.selector.matchLabels)) assert.equal(w.spec.template.metadata.labels[k], v, `${w.kind}: pod label ${k}`);
    assert.ok(w.spec.selector.matchLabels['app.kubernetes.io/component'], `${w.kind}: the selector names the component`);
    for (const c of w.spec.template.spec.containers) {
      assert.ok(c.resources?.requests && c.resources.limits, `${w.kind}/${c.name}: requests and limits`);
      assert.ok(c.livenessProbe?.httpGet && c.readinessProbe?.httpGet, `${w.kind}/${c.name}: liveness and readiness probes`);
      assert.equal(c.image, `ghcr.io/peripety/peripety:${appVersion()}`, `${w.kind}/${c.name}: image`);
    }
  }
}

function appVersion(): string {
  return (parseYaml(readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8')) as { appVersion: string }).appVersion;
}

/** The agent's and the controller's flags, config and identities agree with each other and with what the programs accept. */
function checkWiring(objs: readonly ManifestObject[], o: { namespace: string; controllerSa: string; agentSa: string }): void {
  const ds = asWorkload(one(objs, 'DaemonSet'));
  const dep = asWorkload(one(objs, 'Deployment'));
  const agent = container(ds);
  const controller = container(dep);
  assert.equal(agent.args?.[0], 'agent');
  assert.ok(agent.args?.includes('--kubernetes'));
  assert.equal(argValue(agent, '--namespace'), o.namespace);
  assert.equal(argValue(agent, '--controller-identity'), `system:serviceaccount:${o.namespace}:${o.controllerSa}`);
  assert.equal(argValue(agent, '--api-listen-ip'), '$(NODE_IP)');
  assert.equal(argValue(agent, '--advertise'), undefined, 'the agent derives its advertised URL from the address it binds (IPv6 bracketed)');
  assert.equal(ds.spec.template.spec.serviceAccountName, o.agentSa);
  const env = new Map((agent.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
  assert.equal(env.get('NODE_NAME'), 'spec.nodeName');
  assert.equal(env.get('NODE_IP'), 'status.hostIP');
  // the agent's own Pod owns its Lease, so the garbage collector deletes the Lease with it (helm uninstall)
  assert.equal(env.get('POD_NAME'), 'metadata.name');
  assert.equal(env.get('POD_UID'), 'metadata.uid');

  // the [main] the agent runs with: through the agent's own loader, as `peripety agent --config` reads it
  const configPath = argValue(agent, '--config')!;
  const mount = agent.volumeMounts?.find((m) => configPath.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `--config ${configPath} is on a mounted volume`);
  const volume = ds.spec.template.spec.volumes?.find((v) => v.name === mount.name);
  const cm = asConfigMap(one(objs, 'ConfigMap', volume?.configMap?.name));
  const toml = cm.data[path.basename(configPath)];
  assert.ok(toml, `the ConfigMap has ${path.basename(configPath)}`);
  const config = parseAgentConfig(toml, 'the chart\'s agent.toml');
  assert.deepEqual(config.plugins, [], 'only [main]: the plugin sections come from the controller');
  assert.equal(config.main.api_listen, '0.0.0.0:9477');
  assert.equal(config.main.state_dir, '/var/lib/peripety');
  assert.equal(config.main.mountinfo, '/proc/1/mountinfo');
  const mounted = (p: string) => agent.volumeMounts?.some((m) => m.mountPath === p);
  for (const p of [config.main.state_dir, config.main.sysfs_root, config.main.dev_root]) assert.ok(mounted(p), `${p} is a mount of the agent`);
  assert.equal(ds.spec.template.spec.hostPID, true, `${config.main.mountinfo} is the host's only with hostPID`);

  assert.equal(controller.args?.[0], 'controller');
  assert.equal(argValue(controller, '--namespace'), o.namespace);
  assert.equal(argValue(controller, '--identity'), '$(POD_NAME)');
  const controllerEnv = new Map((controller.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
  assert.equal(controllerEnv.get('POD_NAME'), 'metadata.name');
  assert.equal(controllerEnv.get('POD_UID'), 'metadata.uid', 'the leader\'s own Pod owns the leader Lease');
  assert.equal(controller.env?.find((e) => e.name === 'NODE_OPTIONS')?.value, '--max-semi-space-size=1', 'the controller\'s young generation is capped (docs/performance.md)');
  assert.equal(controller.env?.find((e) => e.name === 'MALLOC_ARENA_MAX')?.value, '2', 'two malloc arenas (docs/performance.md)');
  assert.equal(argValue(controller, '--metrics-listen'), '0.0.0.0:9478');
  assert.equal(dep.spec.template.spec.serviceAccountName, o.controllerSa);
  // no shared token file: the controller requests a token per node for its own ServiceAccount
  assert.equal(argValue(controller, '--agent-token-file'), undefined);
  assert.equal(argValue(controller, '--service-account'), o.controllerSa, 'the per-node tokens are requested for the pod\'s own ServiceAccount');
  assert.equal(argValue(controller, '--agent-token-seconds'), '600');
  assert.ok(!(dep.spec.template.spec.volumes ?? []).some((v) => v.projected?.sources.some((s) => s.serviceAccountToken)), 'no projected token for the agents');
  assert.ok(objs.some((x) => x.kind === 'ServiceAccount' && x.metadata.name === o.controllerSa && x.metadata.namespace === o.namespace));
  assert.ok(objs.some((x) => x.kind === 'ServiceAccount' && x.metadata.name === o.agentSa && x.metadata.namespace === o.namespace));
  assert.equal(dep.spec.replicas, 2, 'two controller replicas (leader election)');
}

describe('Helm chart charts/peripety', () => {
  before(async () => {
    await helmBinary();
  }, { timeout: HELM_BUILD_TIMEOUT_MS });

  it('nothing generated has drifted (hack/gen-chart.ts --check)', async () => {
    const r = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(process.execPath, [path.join(ROOT, 'hack/gen-chart.ts'), '--check'], { cwd: ROOT, timeout: HELM_BUILD_TIMEOUT_MS }, (err, stdout, stderr) => {
        resolve({ code: err ? Number(err.code ?? 1) : 0, out: `${stdout}${stderr}` });
      });
    });
    assert.equal(r.code, 0, r.out);
  });

  it('the chart\'s crds/ are the top-level crds/, byte for byte', () => {
    const top = readdirSync(path.join(ROOT, 'crds')).filter((f) => f.endsWith('.yaml')).sort();
    assert.deepEqual(readdirSync(path.join(CHART, 'crds')).filter((f) => f.endsWith('.yaml')).sort(), top);
    for (const f of top) assert.equal(readFileSync(path.join(CHART, 'crds', f), 'utf8'), readFileSync(path.join(ROOT, 'crds', f), 'utf8'), f);
  });

  it('Chart.yaml: apiVersion v2, appVersion = package.json version', () => {
    const chart = parseYaml(readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8')) as { apiVersion: string; name: string; appVersion: string };
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.name, 'peripety');
    assert.equal(chart.appVersion, pkg.version);
  });

  it('kubeVersion: the chart refuses Kubernetes 1.29 by name (ValidatingAdmissionPolicy v1 and node-bound tokens need 1.30); the pinned helm is stamped with a current version', async () => {
    const old = await helm(['template', 'peripety', CHART, '--kube-version', '1.29.0']);
    assert.notEqual(old.code, 0);
    assert.match(old.stderr, /chart requires kubeVersion: >= 1\.30\.0-0 which is incompatible with Kubernetes v1\.29\.0/);
    // without --kube-version helm uses its build's stamp (hack/helm-build.sh), which must satisfy the chart
    const cm = await helm(['template', 'peripety', CHART, '--show-only', 'templates/agent-configmap.yaml']);
    assert.equal(cm.code, 0, cm.stderr);
  });

  it('values.yaml holds exactly the schema\'s defaults, and every value is in the README', () => {
    const values = parseYaml(readFileSync(path.join(CHART, 'values.yaml'), 'utf8')) as unknown;
    assert.deepEqual(values, JSON.parse(JSON.stringify(defaultValues())));
    const readme = readFileSync(path.join(CHART, 'README.md'), 'utf8');
    const leaves = (o: unknown, prefix: string): string[] => typeof o === 'object' && o !== null && !Array.isArray(o) && Object.keys(o).length > 0 && !['resources', 'labels', 'dashboard.labels'].some((k) => prefix.endsWith(k))
      ? Object.entries(o).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k))
      : [prefix];
    for (const key of leaves(values, '')) assert.ok(readme.includes(`| \`${key}\` |`), `README lists ${key}`);
  });

  it('helm lint --strict passes for the default values and every ci/ values file', async () => {
    assert.ok(CI_FILES.length >= 3, `ci/ has ${CI_FILES.join(', ')}`);
    for (const f of [null, ...CI_FILES]) {
      const r = await helm(['lint', '--strict', CHART, '--namespace', NAMESPACE, ...(f ? ['-f', path.join(CHART, 'ci', f)] : [])]);
      assert.equal(r.code, 0, `helm lint ${f ?? '(defaults)'}:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it('helm template with default values: the objects, their labels and namespaces, the wiring', async () => {
    const objs = await template();
    checkObjects(objs, { namespace: NAMESPACE, release: 'peripety', elsewhere: { 'Role/peripety-agent-events': 'default', 'RoleBinding/peripety-agent-events': 'default' } });
    checkWiring(objs, { namespace: NAMESPACE, controllerSa: 'peripety-controller', agentSa: 'peripety-agent' });
    const kinds = [...new Set(objs.map((o) => o.kind))].sort();
    assert.deepEqual(kinds, ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet', 'Deployment', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'ServiceAccount', 'StorageBackend', 'StorageEventPlugin', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
    for (const k of ['ServiceMonitor', 'PodMonitor', 'PrometheusRule']) assert.ok(!kinds.includes(k), `${k} is off by default`);
    assert.equal(objs.filter((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard).length, 0, 'no dashboard by default');
  });

  it('default resources: kmsg, udev, every parser, k8s-events, sqlite — all valid for the controller', async () => {
    const objs = await template();
    const seps = objs.filter((o) => o.kind === 'StorageEventPlugin');
    const sbes = objs.filter((o) => o.kind === 'StorageBackend');
    assert.deepEqual(seps.map((o) => o.metadata.name), ['kmsg', 'udev', 'scsi', 'nvme', 'block', 'multipath', 'dm', 'lvm', 'mdraid', 'fs', 'k8s-events']);
    assert.deepEqual(sbes.map((o) => o.metadata.name), ['local']);
    for (const o of seps) {
      const v = validateStorageEventPlugin(o);
      assert.ok(v.ok, `${o.metadata.name}: ${JSON.stringify(v.problems)}`);
      assert.equal(v.warnings.length, 0, `${o.metadata.name}: ${JSON.stringify(v.warnings)}`);
    }
    for (const o of sbes) {
      const v = validateStorageBackend(o);
      assert.ok(v.ok, `${o.metadata.name}: ${JSON.stringify(v.problems)}`);
      assert.equal(v.filterErrors.length, 0);
    }
    const kmsg = one(objs, 'StorageEventPlugin', 'kmsg') as ManifestObject & { spec: { config: Record<string, unknown> } };
    assert.equal(kmsg.spec.config.accept_user_facility, false, 'user-space lines are not kernel events by default');
    const on = one(await template({ set: ['defaultResources.kmsg.acceptUserFacility=true', 'defaultResources.udev.enabled=false', 'defaultResources.parsers={scsi}', 'defaultResources.k8sEvents.enabled=false'] }), 'StorageEventPlugin', 'kmsg') as typeof kmsg;
    assert.equal(on.spec.config.accept_user_facility, true);
    const few = (await template({ set: ['defaultResources.udev.enabled=false', 'defaultResources.parsers={scsi}', 'defaultResources.k8sEvents.enabled=false', 'defaultResources.sqlite.enabled=false'] }))
      .filter((o) => o.kind === 'StorageEventPlugin' || o.kind === 'StorageBackend').map((o) => o.metadata.name);
    assert.deepEqual(few, ['kmsg', 'scsi']);
  });

  it('ci/no-default-resources.yaml: no StorageEventPlugin or StorageBackend, everything else as before', async () => {
    const objs = await template({ files: [path.join(CHART, 'ci/no-default-resources.yaml')] });
    assert.equal(objs.filter((o) => o.kind === 'StorageEventPlugin' || o.kind === 'StorageBackend').length, 0);
    const others = (await template()).filter((o) => o.kind !== 'StorageEventPlugin' && o.kind !== 'StorageBackend');
    assert.deepEqual(objs, others);
  });

  it('ci/monitoring-on.yaml: ServiceMonitor (controller Service), PodMonitor (agents), PrometheusRule', async () => {
    const objs = await template({ files: [path.join(CHART, 'ci/monitoring-on.yaml')] });
    checkObjects(objs, { namespace: NAMESPACE, release: 'peripety', elsewhere: { 'Role/peripety-agent-events': 'default', 'RoleBinding/peripety-agent-events': 'default' } });
    const sm = one(objs, 'ServiceMonitor') as ManifestObject & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; interval: string }[] } };
    assert.equal(sm.metadata.labels?.release, 'kube-prometheus-stack');
    const svc = one(objs, 'Service') as ManifestObject & { spec: { selector: Record<string, string>; ports: { name: string }[] } };
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) assert.equal(svc.metadata.labels?.[k], v, `the ServiceMonitor selects the metrics Service (${k})`);
    assert.deepEqual(sm.spec.endpoints.map((e) => [e.port, e.interval]), [[svc.spec.ports[0]!.name, '1m']]);
    const controllerPod = asWorkload(one(objs, 'Deployment')).spec.template;
    for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(controllerPod.metadata.labels[k], v, `the Service selects the controller pods (${k})`);
    assert.ok(container(asWorkload(one(objs, 'Deployment'))).ports?.some((p) => p.name === svc.spec.ports[0]!.name));
    const pm = one(objs, 'PodMonitor') as ManifestObject & { spec: { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; interval: string }[] } };
    const agentPod = asWorkload(one(objs, 'DaemonSet')).spec.template;
    for (const [k, v] of Object.entries(pm.spec.selector.matchLabels)) assert.equal(agentPod.metadata.labels[k], v, `the PodMonitor selects the agent pods (${k})`);
    assert.ok(agentPod.spec.containers[0]!.ports?.some((p) => p.name === pm.spec.podMetricsEndpoints[0]!.port), 'the PodMonitor scrapes a named agent port');
    assert.equal(pm.spec.podMetricsEndpoints[0]!.interval, '30s');
    if (hasTemplate('prometheusrule.yaml')) {
      const rule = one(objs, 'PrometheusRule');
      assert.equal(rule.metadata.labels?.release, 'kube-prometheus-stack');
    }
  });

  it('ci/dashboard-on.yaml: the dashboard ConfigMap in dashboard.namespace with the sidecar label', async (t) => {
    if (!hasTemplate('dashboard-configmap.yaml')) {
      t.skip('templates/dashboard-configmap.yaml is not there yet');
      return;
    }
    const objs = await template({ files: [path.join(CHART, 'ci/dashboard-on.yaml')] });
    const dash = objs.filter((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1');
    assert.equal(dash.length, 1, 'one dashboard ConfigMap');
    assert.equal(dash[0]!.metadata.namespace, 'monitoring');
    assert.equal(dash[0]!.metadata.labels?.team, 'storage');
    checkObjects(objs, { namespace: NAMESPACE, release: 'peripety', elsewhere: { 'Role/peripety-agent-events': 'default', 'RoleBinding/peripety-agent-events': 'default', [`ConfigMap/${dash[0]!.metadata.name}`]: 'monitoring' } });
  });

  it('every ci/ values file renders objects that parse, labelled, in their namespaces', async () => {
    for (const f of CI_FILES) {
      const values = parseYaml(readFileSync(path.join(CHART, 'ci', f), 'utf8')) as { dashboard?: { enabled?: boolean; namespace?: string } };
      const objs = await template({ files: [path.join(CHART, 'ci', f)] });
      const elsewhere: Record<string, string> = { 'Role/peripety-agent-events': 'default', 'RoleBinding/peripety-agent-events': 'default' };
      for (const o of objs) if (values.dashboard?.enabled && o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard) elsewhere[`ConfigMap/${o.metadata.name}`] = values.dashboard.namespace ?? NAMESPACE;
      checkObjects(objs, { namespace: NAMESPACE, release: 'peripety', elsewhere });
    }
  });

  it('another release name and namespace: names, identities and bindings follow', async () => {
    const objs = await template({ release: 'prod', namespace: 'storage' });
    checkObjects(objs, { namespace: 'storage', release: 'prod', elsewhere: { 'Role/prod-peripety-agent-events': 'default', 'RoleBinding/prod-peripety-agent-events': 'default' } });
    checkWiring(objs, { namespace: 'storage', controllerSa: 'prod-peripety-controller', agentSa: 'prod-peripety-agent' });
    for (const o of objs.filter((x) => x.kind === 'RoleBinding' || x.kind === 'ClusterRoleBinding')) {
      for (const s of (o as ManifestObject & { subjects: { namespace: string }[] }).subjects) assert.equal(s.namespace, 'storage', `${o.metadata.name}: subject namespace`);
    }
    // the agent admission policies apply to this release's agent ServiceAccount, and each binding to its own policy
    const policies = (list: ManifestObject[]) => list.filter((x) => x.kind === 'ValidatingAdmissionPolicy') as (ManifestObject & { spec: { matchConditions: { expression: string }[] } })[];
    const bindings = (list: ManifestObject[]) => list.filter((x) => x.kind === 'ValidatingAdmissionPolicyBinding').map((b) => (b as ManifestObject & { spec: { policyName: string } }).spec.policyName).sort();
    assert.deepEqual(policies(objs).map((p) => p.metadata.name).sort(), ['prod-peripety-agent-own-events', 'prod-peripety-agent-own-lease']);
    assert.deepEqual(bindings(objs), ['prod-peripety-agent-own-events', 'prod-peripety-agent-own-lease']);
    for (const p of policies(objs)) assert.equal(p.spec.matchConditions[0]?.expression, "request.userInfo.username == 'system:serviceaccount:storage:prod-peripety-agent'");
    const named = await template({ set: ['controller.serviceAccount.name=ctl', 'agent.serviceAccount.name=agt', 'fullnameOverride=pp'] });
    checkWiring(named, { namespace: NAMESPACE, controllerSa: 'ctl', agentSa: 'agt' });
    for (const p of policies(named)) assert.equal(p.spec.matchConditions[0]?.expression, `request.userInfo.username == 'system:serviceaccount:${NAMESPACE}:agt'`);
    assert.ok(named.some((o) => o.kind === 'DaemonSet' && o.metadata.name === 'pp-agent'));
  });

  it('image: tag defaults to appVersion; a digest wins; pull secrets reach both pods', async () => {
    const digest = `sha256:${'0'.repeat(64)}`;
    const objs = await template({ set: [`image.digest=${digest}`, 'image.repository=registry.example.com:5000/peripety', 'imagePullSecrets[0].name=regcred'] });
    for (const w of objs.filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet').map(asWorkload)) {
      assert.equal(container(w).image, `registry.example.com:5000/peripety@${digest}`);
      assert.deepEqual((w.spec.template.spec as { imagePullSecrets?: unknown }).imagePullSecrets, [{ name: 'regcred' }]);
    }
    const tagged = await template({ set: ['image.tag=v9'] });
    assert.equal(container(asWorkload(one(tagged, 'DaemonSet'))).image, 'ghcr.io/peripety/peripety:v9');
  });

  it('a changed [main] rolls the agents (config checksum on the pod template)', async () => {
    const a = asWorkload(one(await template(), 'DaemonSet')).spec.template.metadata.annotations?.['checksum/config'];
    const b = asWorkload(one(await template({ set: ['agent.logLevel=debug'] }), 'DaemonSet')).spec.template.metadata.annotations?.['checksum/config'];
    assert.match(a ?? '', /^[0-9a-f]{64}$/);
    assert.notEqual(a, b);
  });

  // Found on a real kubelet (test/e2e/chart-on-node.e2e.ts): a readiness probe
  // from the container's first second hit a closed port — a Warning
  // "Unhealthy" Event on every pod start, and Ready one period (10 s) late.
  it('probes: a startup probe waits for the server (no probe before 1 s, then every ≤ 2 s), liveness and readiness start after it', async () => {
    for (const w of (await template()).filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet').map(asWorkload)) {
      const c = container(w);
      const s = c.startupProbe;
      assert.ok(s?.httpGet, `${w.metadata.name}: an HTTP startup probe`);
      assert.deepEqual(s.httpGet, c.livenessProbe?.httpGet, `${w.metadata.name}: the startup probe asks what liveness asks`);
      assert.ok((s.initialDelaySeconds ?? 0) >= 1, `${w.metadata.name}: startup probe initialDelaySeconds ${s.initialDelaySeconds}`);
      assert.ok((s.periodSeconds ?? 10) <= 2, `${w.metadata.name}: startup probe periodSeconds ${s.periodSeconds}`);
      assert.ok((s.periodSeconds ?? 10) * (s.failureThreshold ?? 3) >= 60, `${w.metadata.name}: a minute or more to start on a loaded node`);
      for (const p of [c.livenessProbe, c.readinessProbe]) assert.equal(p?.initialDelaySeconds, undefined, `${w.metadata.name}: the startup probe gates the others`);
    }
  });

  it('one controller replica: no PodDisruptionBudget (it would block every drain)', async () => {
    assert.ok(!(await template({ set: ['controller.replicas=1'] })).some((o) => o.kind === 'PodDisruptionBudget'));
  });

  it('manifests/: a Namespace that admits the agent, then the chart objects; default resources in their own directory', () => {
    const objs = manifestObjects();
    const ns = one(objs, 'Namespace');
    assert.equal(ns.metadata.name, NAMESPACE);
    assert.equal(ns.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'privileged');
    const peripety = readFileSync(path.join(ROOT, 'manifests/peripety.yaml'), 'utf8');
    assert.ok(peripety.indexOf('kind: Namespace') < peripety.indexOf('kind: ServiceAccount'), 'the Namespace comes first');
    // `kubectl apply -f crds/ -f manifests/` maps every object before applying: a custom
    // resource there would be refused on a fresh cluster (its CRD is not established yet)
    assert.ok(!/kind: Storage(EventPlugin|Backend)/.test(peripety), 'no custom resources in peripety.yaml');
    assert.deepEqual(readdirSync(path.join(ROOT, 'manifests')).filter((f) => /\.(ya?ml|json)$/.test(f)), ['peripety.yaml'], 'kubectl apply -f manifests/ takes only peripety.yaml');
    const defaults = manifestObjects(path.join(ROOT, 'manifests/default-resources'));
    assert.deepEqual([...new Set(defaults.map((o) => o.kind))].sort(), ['StorageBackend', 'StorageEventPlugin']);
    assert.equal(defaults.length, 12);
  });
});
