// What the chart lets its pods do on a node, and what its ServiceAccounts may
// do in the cluster, against allow-lists written here (docs/architecture.md "Components", packaging; docs/security.md):
// every hostPath of the agent DaemonSet (path, type, where it is mounted,
// read-only or not), its host namespaces and its privileges/capabilities in
// both modes (privileged without a kmsg device plugin; unprivileged with only
// CAP_SYSLOG, and CAP_NET_ADMIN on request); the controller with no host
// access, non-root, read-only root filesystem, no capabilities; and every RBAC
// rule of both ServiceAccounts, exactly. The template's own comment must
// justify every host mount and capability. The rendered manifests/ (what
// `kubectl apply` installs) are checked the same way as `helm template`.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { manifestObjects, type ManifestObject } from '../helpers/manifests.ts';
import { CHART, helmBinary, HELM_BUILD_TIMEOUT_MS, one, template } from './helm.ts';
import { asBinding, asRole, asWorkload, type Container, type PolicyRule, type Workload } from './k8s-types.ts';

/** Every host path the agent may mount: where, how, and why (the why is also in the template's comment). */
const HOST_PATHS: Record<string, { type: string; mountPath: string; readOnly: boolean; why: string }> = {
  '/dev/kmsg': { type: 'CharDevice', mountPath: '/dev/kmsg', readOnly: true, why: 'the kernel log, read only' },
  '/dev': { type: 'Directory', mountPath: '/host/dev', readOnly: true, why: 'udev symlinks naming devices by WWID/UUID' },
  '/sys': { type: 'Directory', mountPath: '/host/sys', readOnly: true, why: 'device identity and stacks' },
  '/run/udev': { type: 'DirectoryOrCreate', mountPath: '/run/udev', readOnly: true, why: 'whether udevd runs (its control socket)' },
  '/run/systemd/journal': { type: 'Directory', mountPath: '/run/systemd/journal', readOnly: true, why: 'journald\'s socket, for the journald receiver (agent.journald.enabled only)' },
  '/var/lib/peripety': { type: 'DirectoryOrCreate', mountPath: '/var/lib/peripety', readOnly: false, why: 'the state directory' },
};
/** Volumes that are not host paths and are allowed in the agent pod. */
const AGENT_OTHER_VOLUMES = new Set(['configMap']);
/** Capabilities the unprivileged agent may have; nothing else. */
const AGENT_CAPABILITIES = { always: ['SYSLOG'], withNetAdmin: ['SYSLOG', 'NET_ADMIN'] };

const AGENT_RULES: Record<string, PolicyRule[]> = {
  'ClusterRole peripety-agent': [
    { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
    { apiGroups: [''], resources: ['nodes'], verbs: ['get'] },
  ],
  'Role peripety-system/peripety-agent': [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }],
  'Role default/peripety-agent-events': [{ apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] }],
};
const CONTROLLER_RULES: Record<string, PolicyRule[]> = {
  'ClusterRole peripety-controller': [
    { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'] },
    { apiGroups: ['peripety.io'], resources: ['storageeventplugins', 'storagebackends'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['peripety.io'], resources: ['storageeventplugins/status', 'storagebackends/status'], verbs: ['update'] },
  ],
  'Role peripety-system/peripety-controller': [
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update'] },
    // the per-node tokens for the agents (TokenRequest): its own ServiceAccount only
    { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'], resourceNames: ['peripety-controller'] },
  ],
};

const podOf = (w: Workload) => w.spec.template.spec;
const containerOf = (w: Workload, name: string): Container => {
  const c = podOf(w).containers.find((x) => x.name === name);
  assert.ok(c, `${w.kind} ${w.metadata.name} has a container ${name}`);
  return c;
};

/** host paths that are there only when a value asks for them */
const OPTIONAL_HOST_PATHS: Record<string, 'journald'> = { '/run/systemd/journal': 'journald' };

function checkAgent(objs: readonly ManifestObject[], mode: { unprivileged?: { netAdmin: boolean; resource: string }; journald?: boolean } = {}): void {
  const expected = (paths: string[]) => paths.filter((p) => OPTIONAL_HOST_PATHS[p] !== 'journald' || mode.journald === true).sort();
  const ds = asWorkload(one(objs, 'DaemonSet'));
  const pod = podOf(ds);
  assert.equal(pod.hostNetwork, true, 'hostNetwork: udevd multicasts in the host network namespace only');
  assert.equal(pod.hostPID, true, 'hostPID: /proc/1/mountinfo is the host mount table');
  assert.notEqual(pod.hostIPC, true, 'no hostIPC');
  assert.notEqual(pod.shareProcessNamespace, true);
  assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet', 'cluster DNS despite hostNetwork');
  assert.equal(pod.initContainers, undefined, 'no init containers (nothing else runs with host access)');
  assert.equal(pod.containers.length, 1);
  assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault');
  assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }], 'every node by default');

  const c = containerOf(ds, 'agent');
  const mounts = new Map((c.volumeMounts ?? []).map((m) => [m.name, m]));
  const hostPaths = new Set<string>();
  for (const v of pod.volumes ?? []) {
    const kinds = Object.keys(v).filter((k) => k !== 'name');
    assert.equal(kinds.length, 1, `volume ${v.name}: one source`);
    if (v.hostPath) {
      const allowed = HOST_PATHS[v.hostPath.path];
      assert.ok(allowed, `hostPath ${v.hostPath.path} is not in the allow-list`);
      assert.equal(v.hostPath.type, allowed.type, `hostPath ${v.hostPath.path} type`);
      const m = mounts.get(v.name);
      assert.ok(m, `hostPath ${v.hostPath.path} is mounted`);
      assert.equal(m.mountPath, allowed.mountPath, `${v.hostPath.path} mounted at ${allowed.mountPath}`);
      assert.equal(m.readOnly === true, allowed.readOnly, `${v.hostPath.path} readOnly ${allowed.readOnly} (${allowed.why})`);
      assert.equal(m.mountPropagation, undefined, `${v.hostPath.path}: no mount propagation`);
      hostPaths.add(v.hostPath.path);
    } else {
      assert.ok(AGENT_OTHER_VOLUMES.has(kinds[0]!), `volume ${v.name} (${kinds[0]}) is not allowed in the agent pod`);
    }
  }
  for (const m of c.volumeMounts ?? []) assert.ok((pod.volumes ?? []).some((v) => v.name === m.name), `mount ${m.name} has a volume`);

  const sc = c.securityContext ?? {};
  assert.equal(sc.readOnlyRootFilesystem, true, 'read-only root filesystem');
  assert.equal(pod.securityContext?.runAsUser, 0, 'root: the state directory and /dev/kmsg belong to root on the host');
  if (mode.unprivileged) {
    assert.equal(sc.privileged, false);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.deepEqual(sc.capabilities?.drop, ['ALL']);
    assert.deepEqual(sc.capabilities?.add, mode.unprivileged.netAdmin ? AGENT_CAPABILITIES.withNetAdmin : AGENT_CAPABILITIES.always);
    assert.equal(c.resources?.limits?.[mode.unprivileged.resource], '1', 'the device plugin resource that brings /dev/kmsg');
    assert.ok(!hostPaths.has('/dev/kmsg'), 'no /dev/kmsg hostPath: the device plugin injects the device');
    assert.deepEqual([...hostPaths].sort(), expected(Object.keys(HOST_PATHS).filter((p) => p !== '/dev/kmsg')));
  } else {
    // The one privileged container: /dev/kmsg cannot be opened otherwise on a stock runtime.
    assert.equal(sc.privileged, true);
    assert.equal(sc.capabilities, undefined, 'no capability list: a privileged container has them all, a list would mislead');
    assert.deepEqual([...hostPaths].sort(), expected(Object.keys(HOST_PATHS)), 'exactly the allowed host paths');
  }
  assert.deepEqual((c.ports ?? []).map((p) => p.containerPort), [9477], 'one port: the agent API');
}

function checkController(objs: readonly ManifestObject[]): void {
  const dep = asWorkload(one(objs, 'Deployment'));
  const pod = podOf(dep);
  for (const k of ['hostNetwork', 'hostPID', 'hostIPC'] as const) assert.notEqual(pod[k], true, `controller: no ${k}`);
  assert.equal(pod.securityContext?.runAsNonRoot, true);
  assert.ok((pod.securityContext?.runAsUser ?? 0) > 0, 'a non-root uid');
  assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault');
  for (const v of pod.volumes ?? []) {
    assert.equal(v.hostPath, undefined, `controller volume ${v.name}: no hostPath`);
    assert.ok(v.projected, `controller volume ${v.name}: only the projected agent token`);
    assert.deepEqual(v.projected.sources.map((s) => s.serviceAccountToken?.audience), ['peripety-agent']);
  }
  const c = containerOf(dep, 'controller');
  const sc = c.securityContext ?? {};
  assert.notEqual(sc.privileged, true);
  assert.equal(sc.allowPrivilegeEscalation, false);
  assert.equal(sc.readOnlyRootFilesystem, true);
  assert.deepEqual(sc.capabilities, { drop: ['ALL'] }, 'drop ALL, add nothing');
  assert.equal(c.ports?.some((p) => p.hostPort !== undefined), false, 'no hostPort');
}

function rulesOf(objs: readonly ManifestObject[], component: string): Record<string, PolicyRule[]> {
  const out: Record<string, PolicyRule[]> = {};
  for (const o of objs) {
    if ((o.kind !== 'Role' && o.kind !== 'ClusterRole') || o.metadata.labels?.['app.kubernetes.io/component'] !== component) continue;
    out[`${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`] = asRole(o).rules;
  }
  return out;
}

function checkBindings(objs: readonly ManifestObject[]): void {
  const roles = new Set(objs.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole').map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`));
  const sas = new Set(objs.filter((o) => o.kind === 'ServiceAccount').map((o) => `${o.metadata.namespace}/${o.metadata.name}`));
  for (const o of objs.filter((x) => x.kind === 'RoleBinding' || x.kind === 'ClusterRoleBinding')) {
    const b = asBinding(o);
    const ns = b.roleRef.kind === 'Role' ? b.metadata.namespace ?? '' : '';
    assert.ok(roles.has(`${b.roleRef.kind}/${ns}/${b.roleRef.name}`), `${b.kind} ${b.metadata.name}: its ${b.roleRef.kind} ${b.roleRef.name} is rendered`);
    for (const s of b.subjects) {
      assert.equal(s.kind, 'ServiceAccount', `${b.metadata.name}: only ServiceAccounts are bound`);
      assert.ok(sas.has(`${s.namespace}/${s.name}`), `${b.metadata.name}: ServiceAccount ${s.namespace}/${s.name} is rendered`);
      assert.equal(s.name.endsWith(o.metadata.labels?.['app.kubernetes.io/component'] ?? '?'), true, `${b.metadata.name} binds its own component's ServiceAccount`);
    }
  }
}

describe('chart security: host access and RBAC against allow-lists', () => {
  before(async () => {
    await helmBinary();
  }, { timeout: HELM_BUILD_TIMEOUT_MS });

  it('the default agent DaemonSet: only the allowed host paths, host namespaces, privileged for /dev/kmsg', async () => {
    checkAgent(await template());
  });

  it('with a kmsg device plugin the agent is unprivileged: drop ALL, add SYSLOG only (NET_ADMIN on request)', async () => {
    checkAgent(await template({ set: ['agent.kmsgDeviceResource=smarter-devices/kmsg'] }), { unprivileged: { netAdmin: false, resource: 'smarter-devices/kmsg' } });
    checkAgent(await template({ set: ['agent.kmsgDeviceResource=example.com/kmsg', 'agent.netAdmin=true'] }), { unprivileged: { netAdmin: true, resource: 'example.com/kmsg' } });
  });

  it('agent.journald.enabled adds exactly the read-only journal directory, privileged or not', async () => {
    checkAgent(await template({ set: ['agent.journald.enabled=true'] }), { journald: true });
    checkAgent(await template({ set: ['agent.journald.enabled=true', 'agent.kmsgDeviceResource=smarter-devices/kmsg'] }), { journald: true, unprivileged: { netAdmin: false, resource: 'smarter-devices/kmsg' } });
  });

  it('netAdmin changes nothing in privileged mode', async () => {
    const a = one(await template({ set: ['agent.netAdmin=true'] }), 'DaemonSet');
    const b = one(await template(), 'DaemonSet');
    assert.deepEqual(a, b);
  });

  it('the controller: no host access, non-root, read-only root filesystem, no capabilities', async () => {
    checkController(await template());
  });

  it('manifests/ (kubectl apply) passes the same checks', () => {
    const objs = manifestObjects();
    checkAgent(objs);
    checkController(objs);
    checkBindings(objs);
    assert.deepEqual(rulesOf(objs, 'agent'), AGENT_RULES);
    assert.deepEqual(rulesOf(objs, 'controller'), CONTROLLER_RULES);
  });

  it('the template justifies every host mount, host namespace and capability in its comment', () => {
    const text = readFileSync(path.join(CHART, 'templates/agent-daemonset.yaml'), 'utf8');
    const comment = text.slice(0, text.indexOf('*/'));
    for (const p of [...Object.keys(HOST_PATHS).filter((x) => x !== '/var/lib/peripety'), 'state directory', 'hostNetwork', 'hostPID', 'root', 'privileged', 'CAP_SYSLOG', 'CAP_NET_ADMIN', 'dmesg_restrict']) {
      assert.ok(comment.includes(p), `the comment at the top of agent-daemonset.yaml says why: ${p}`);
    }
  });

  it('agent RBAC: exactly what src/ calls (TokenReview, its Lease, Events in default, get Node)', async () => {
    const objs = await template();
    assert.deepEqual(rulesOf(objs, 'agent'), AGENT_RULES);
    checkBindings(objs);
  });

  it('agent Secrets: get by name on agent.secretNames only, nothing when empty', async () => {
    const objs = await template({ set: ['agent.secretNames={peripety-pg,other-db}'] });
    assert.deepEqual(rulesOf(objs, 'agent'), {
      ...AGENT_RULES,
      'Role peripety-system/peripety-agent-secrets': [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['peripety-pg', 'other-db'], verbs: ['get'] }],
    });
    checkBindings(objs);
    for (const o of await template()) {
      const rules = o.kind === 'Role' || o.kind === 'ClusterRole' ? asRole(o).rules : [];
      assert.ok(!rules.some((r) => r.resources?.includes('secrets')), `${o.kind} ${o.metadata.name}: no Secret access by default`);
    }
  });

  it('agent Events RBAC follows agent.eventsNamespace, and so does the default k8s-events receiver', async () => {
    const objs = await template({ set: ['agent.eventsNamespace=kube-system'] });
    const role = one(objs, 'Role', 'peripety-agent-events');
    assert.equal(role.metadata.namespace, 'kube-system');
    assert.equal(one(objs, 'RoleBinding', 'peripety-agent-events').metadata.namespace, 'kube-system');
    const k8sEvents = one(objs, 'StorageEventPlugin', 'k8s-events') as ManifestObject & { spec: { config: { namespace: string } } };
    assert.equal(k8sEvents.spec.config.namespace, 'kube-system');
  });

  it('controller RBAC: exactly what src/controller calls (informers, status PUT, Leases, TokenRequest for its own ServiceAccount)', async () => {
    const objs = await template();
    assert.deepEqual(rulesOf(objs, 'controller'), CONTROLLER_RULES);
  });

  it('no rule anywhere uses a wildcard, escalate/bind/impersonate, or non-resource URLs', async () => {
    for (const set of [[], ['agent.secretNames={a}'], ['monitoring.serviceMonitor.enabled=true', 'monitoring.podMonitor.enabled=true']]) {
      for (const o of await template({ set })) {
        if (o.kind !== 'Role' && o.kind !== 'ClusterRole') continue;
        for (const r of asRole(o).rules) {
          const all = [...(r.apiGroups ?? []), ...(r.resources ?? []), ...r.verbs];
          assert.ok(!all.includes('*'), `${o.metadata.name}: no wildcard`);
          assert.ok(!r.verbs.some((v) => ['escalate', 'bind', 'impersonate', 'delete', 'deletecollection'].includes(v)), `${o.metadata.name}: ${r.verbs.join(',')}`);
          assert.equal(r.nonResourceURLs, undefined);
        }
      }
    }
  });
});
