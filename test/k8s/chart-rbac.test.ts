// The chart's RBAC against a real API server (test/helpers/envtest.ts): the
// ServiceAccounts, (Cluster)Roles and (Cluster)RoleBindings of `helm template`
// (default values plus one named Secret, agent.secretNames) are applied for
// real; then each ServiceAccount — with its own TokenRequest token, so the
// groups are the real ones — asks the API server (SelfSubjectAccessReview)
// whether it may do each thing:
//
// - what the code calls (src/api/tokenreview.ts, src/k8s/registration.ts,
//   src/k8s/secrets.ts, src/receivers/k8s-events/, src/controller/): must be
//   allowed;
// - reading Secrets beyond the named one, writing workloads, configuration,
//   CRDs or the custom resources' spec, and every path to more privilege
//   (RBAC writes, bind, escalate, impersonate, tokens for other
//   ServiceAccounts — the controller may request tokens for its own
//   ServiceAccount only, the agent for none —, CSRs, other namespaces'
//   Leases): must be refused.
//
// SelfSubjectAccessReview asks RBAC only: the agent may "update leases" here,
// every Lease of the namespace as far as RBAC goes. The chart's
// ValidatingAdmissionPolicies narrow that to the agent's own node
// (test/hostile/k8s-agent-takeover.test.ts); here, neither identity may touch them.
//
// Before the chart's RBAC is applied every "allowed" check is refused (the
// grants come from the chart, not from defaults), and `kubectl auth can-i
// --list` of each identity in each namespace is printed for the log.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ENVTEST_BUILD_TIMEOUT_MS, type Envtest, startEnvtest } from '../helpers/envtest.ts';
import { CHART_CRDS, helmBinary, type KubeObject, NAMESPACE, objectId, renderChart } from '../unit/packaging/chart.ts';

const SECRET = 'pg-connection';
const NODE = 'node-1';
const RBAC_KINDS = new Set(['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);

interface Check {
  verb: string;
  resource: string;
  group?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

const describeCheck = (c: Check): string =>
  `${c.verb} ${c.resource}${c.subresource ? `/${c.subresource}` : ''}${c.group ? `.${c.group}` : ''}${c.name ? ` "${c.name}"` : ''} ${c.namespace ? `in ${c.namespace}` : 'cluster-wide'}`;

const each = (verbs: string[], c: Omit<Check, 'verb'>): Check[] => verbs.map((verb) => ({ ...c, verb }));

const CAN: Record<'agent' | 'controller', Check[]> = {
  agent: [
    { verb: 'create', resource: 'tokenreviews', group: 'authentication.k8s.io' },
    { verb: 'get', resource: 'nodes', name: NODE },
    ...each(['get', 'create', 'update'], { resource: 'leases', group: 'coordination.k8s.io', namespace: NAMESPACE, name: `peripety-agent-${NODE}` }),
    ...each(['create', 'patch'], { resource: 'events', group: 'events.k8s.io', namespace: 'default' }),
    { verb: 'get', resource: 'secrets', namespace: NAMESPACE, name: SECRET },
  ],
  controller: [
    ...each(['list', 'watch'], { resource: 'nodes' }),
    ...each(['get', 'list', 'watch'], { resource: 'storageeventplugins', group: 'peripety.io' }),
    ...each(['get', 'list', 'watch'], { resource: 'storagebackends', group: 'peripety.io' }),
    { verb: 'update', resource: 'storageeventplugins', subresource: 'status', group: 'peripety.io', name: 'kmsg' },
    { verb: 'update', resource: 'storagebackends', subresource: 'status', group: 'peripety.io', name: 'local' },
    ...each(['get', 'list', 'watch', 'create', 'update'], { resource: 'leases', group: 'coordination.k8s.io', namespace: NAMESPACE }),
    // the per-node tokens for the agents (src/controller/agent-tokens.ts): TokenRequest for its own ServiceAccount
    { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: NAMESPACE, name: 'peripety-controller' },
  ],
};

const CANNOT_EITHER: Check[] = [
  // Secrets: nowhere but the one named Secret (agent)
  ...each(['get', 'list', 'watch'], { resource: 'secrets' }),
  ...each(['list', 'watch', 'create', 'update', 'patch', 'delete'], { resource: 'secrets', namespace: NAMESPACE }),
  { verb: 'get', resource: 'secrets', namespace: NAMESPACE, name: 'some-other-secret' },
  ...['default', 'kube-system'].flatMap((namespace) => each(['get', 'list'], { resource: 'secrets', namespace, name: namespace === 'default' ? SECRET : undefined })),
  // workloads and configuration
  ...['default', NAMESPACE].flatMap((namespace) => each(['create', 'update', 'patch', 'delete'], { resource: 'pods', namespace })),
  { verb: 'create', resource: 'pods', subresource: 'exec', namespace: NAMESPACE },
  ...['deployments', 'daemonsets', 'statefulsets'].flatMap((resource) => each(['create', 'update', 'patch', 'delete'], { resource, group: 'apps', namespace: NAMESPACE })),
  ...each(['create', 'update', 'patch', 'delete'], { resource: 'configmaps', namespace: NAMESPACE }),
  ...each(['create', 'update', 'delete'], { resource: 'services', namespace: NAMESPACE }),
  ...each(['create', 'update', 'patch', 'delete'], { resource: 'customresourcedefinitions', group: 'apiextensions.k8s.io' }),
  ...each(['create', 'update', 'patch', 'delete'], { resource: 'storageeventplugins', group: 'peripety.io' }),
  ...each(['create', 'update', 'patch', 'delete'], { resource: 'storagebackends', group: 'peripety.io' }),
  ...each(['update', 'patch', 'delete'], { resource: 'nodes' }),
  { verb: 'patch', resource: 'nodes', subresource: 'status' },
  { verb: 'get', resource: 'nodes', subresource: 'proxy' },
  ...each(['create', 'update', 'patch'], { resource: 'mutatingwebhookconfigurations', group: 'admissionregistration.k8s.io' }),
  // the admission policies that hold an agent to its own node's Lease and Events: nobody of ours may change or remove them
  ...['validatingadmissionpolicies', 'validatingadmissionpolicybindings', 'validatingwebhookconfigurations'].flatMap((resource) =>
    each(['create', 'update', 'patch', 'delete'], { resource, group: 'admissionregistration.k8s.io' })),
  // privilege escalation
  ...['roles', 'rolebindings'].flatMap((resource) => each(['create', 'update', 'patch'], { resource, group: 'rbac.authorization.k8s.io', namespace: NAMESPACE })),
  ...['clusterroles', 'clusterrolebindings'].flatMap((resource) => each(['create', 'update', 'patch'], { resource, group: 'rbac.authorization.k8s.io' })),
  ...['roles', 'clusterroles'].flatMap((resource) => each(['bind', 'escalate'], { resource, group: 'rbac.authorization.k8s.io' })),
  ...['users', 'groups', 'serviceaccounts'].map((resource) => ({ verb: 'impersonate', resource })),
  { verb: 'impersonate', resource: 'userextras', group: 'authentication.k8s.io' },
  { verb: 'create', resource: 'serviceaccounts', namespace: NAMESPACE },
  ...[NAMESPACE, 'kube-system'].map((namespace) => ({ verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace })),
  { verb: 'create', resource: 'certificatesigningrequests', group: 'certificates.k8s.io' },
  { verb: 'update', resource: 'certificatesigningrequests', subresource: 'approval', group: 'certificates.k8s.io' },
  // other components' leader election, and deleting anyone's Lease
  ...each(['create', 'update', 'patch'], { resource: 'leases', group: 'coordination.k8s.io', namespace: 'kube-system' }),
  { verb: 'delete', resource: 'leases', group: 'coordination.k8s.io', namespace: NAMESPACE },
  // Events elsewhere than the events namespace
  ...each(['create', 'patch'], { resource: 'events', group: 'events.k8s.io', namespace: 'kube-system' }),
  { verb: 'delete', resource: 'events', group: 'events.k8s.io', namespace: 'default' },
  { verb: '*', resource: '*', group: '*' },
];

const CANNOT: Record<'agent' | 'controller', Check[]> = {
  agent: [
    ...CANNOT_EITHER,
    // a token of the controller's ServiceAccount is what every agent obeys (for its own node)
    { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: NAMESPACE, name: 'peripety-controller' },
    ...each(['list', 'watch'], { resource: 'nodes' }),
    ...each(['list', 'watch', 'delete'], { resource: 'leases', group: 'coordination.k8s.io', namespace: NAMESPACE }),
    ...each(['get', 'list'], { resource: 'storagebackends', group: 'peripety.io' }),
  ],
  controller: [
    ...CANNOT_EITHER,
    { verb: 'get', resource: 'secrets', namespace: NAMESPACE, name: SECRET },
    ...each(['create', 'patch'], { resource: 'events', group: 'events.k8s.io', namespace: 'default' }),
    // tokens for any ServiceAccount but its own
    ...['peripety-agent', 'default'].map((name) => ({ verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: NAMESPACE, name })),
    { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: 'kube-system', name: 'peripety-controller' },
    { verb: 'get', resource: 'serviceaccounts', subresource: 'token', namespace: NAMESPACE, name: 'peripety-controller' },
  ],
};

describe('the chart\'s RBAC on a real API server: what the agent and the controller can and cannot do', { timeout: ENVTEST_BUILD_TIMEOUT_MS + 300_000 }, () => {
  let env: Envtest;
  let rbac: KubeObject[];
  const identity = {} as Record<'agent' | 'controller', { sa: string; kubeconfig: string }>;

  const allowed = async (who: 'agent' | 'controller', c: Check): Promise<boolean> => {
    const r = await env.request<{ status?: { allowed?: boolean } }>('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { verb: c.verb, resource: c.resource, group: c.group ?? '', subresource: c.subresource, namespace: c.namespace, name: c.name } },
    }, { kubeconfig: identity[who].kubeconfig });
    assert.equal(r.status, 201, `SelfSubjectAccessReview as ${who}: ${r.text}`);
    return r.body.status?.allowed === true;
  };

  before(async () => {
    const helm = await helmBinary();
    env = await startEnvtest({ crdsDir: CHART_CRDS });
    const objects = await renderChart(helm, ['--set', `agent.secretNames={${SECRET}}`]);
    rbac = objects.filter((o) => RBAC_KINDS.has(o.kind));
    for (const who of ['agent', 'controller'] as const) {
      const sa = rbac.find((o) => o.kind === 'ServiceAccount' && o.metadata.labels?.['app.kubernetes.io/component'] === who);
      assert.ok(sa, `the chart renders no ServiceAccount with app.kubernetes.io/component=${who}`);
      identity[who] = { sa: `${sa.metadata.namespace}/${sa.metadata.name}`, kubeconfig: await env.kubeconfigFor({ serviceAccount: sa.metadata.name, namespace: sa.metadata.namespace ?? NAMESPACE }) };
    }
  }, { timeout: ENVTEST_BUILD_TIMEOUT_MS });
  after(() => env?.stop());

  it('before the chart\'s RBAC is applied, nothing the components need is allowed (the grants are the chart\'s)', async () => {
    for (const who of ['agent', 'controller'] as const) {
      const granted: string[] = [];
      for (const c of CAN[who]) if (await allowed(who, c)) granted.push(describeCheck(c));
      assert.deepEqual(granted, [], `${who} is allowed these without the chart`);
    }
  });

  it('the chart\'s ServiceAccounts and RBAC apply', async () => {
    const out = await env.kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=helm', '-o', 'name', '-f', '-'], {
      input: rbac.map((o) => JSON.stringify(o)).join('\n'),
    });
    const applied = out.trim().split('\n').filter((l) => l !== '');
    assert.equal(applied.length, rbac.length, out);
    console.log(`# applied ${rbac.length} RBAC objects: ${rbac.map(objectId).join(', ')}`);
    // the authorizer follows RBAC objects through an informer: wait for the first grant to show
    const deadline = Date.now() + 30_000;
    while (!(await allowed('agent', CAN.agent[0]!)) || !(await allowed('controller', CAN.controller[0]!))) {
      assert.ok(Date.now() < deadline, 'the applied RBAC never took effect');
      await sleep(100);
    }
  });

  for (const who of ['agent', 'controller'] as const) {
    it(`${who}: allowed everything its code calls`, async () => {
      const refused: string[] = [];
      for (const c of CAN[who]) if (!(await allowed(who, c))) refused.push(describeCheck(c));
      assert.deepEqual(refused, [], `${identity[who].sa} is refused what src/ needs`);
      console.log(`# ${who} (${identity[who].sa}): ${CAN[who].length} needed permissions allowed`);
    });

    it(`${who}: refused Secrets beyond the named one, writes to other resources, and every escalation`, async () => {
      const granted: string[] = [];
      for (const c of CANNOT[who]) if (await allowed(who, c)) granted.push(describeCheck(c));
      assert.deepEqual(granted, [], `${identity[who].sa} may do more than it needs`);
      console.log(`# ${who} (${identity[who].sa}): ${CANNOT[who].length} checks refused as they must be`);
    });
  }

  it('`kubectl auth can-i --list` of each identity, per namespace (printed)', async () => {
    for (const who of ['agent', 'controller'] as const) {
      for (const ns of [NAMESPACE, 'default', 'kube-system']) {
        const out = await env.kubectl(['auth', 'can-i', '--list', '-n', ns], { kubeconfig: identity[who].kubeconfig });
        // resource rules only: the non-resource URLs (/healthz, /api, …) are every authenticated user's
        const lines = out.trimEnd().split('\n').filter((l) => !/^\s+\[/.test(l));
        console.log(`# --- ${who} (${identity[who].sa}) in namespace ${ns}:\n${lines.map((l) => `#   ${l}`).join('\n')}`);
        // the rule list agrees with the SelfSubjectAccessReviews: no Secret rule but the named one
        const secretRules = out.split('\n').filter((l) => /^secrets\s/.test(l));
        if (who === 'agent' && ns === NAMESPACE) assert.deepEqual(secretRules.map((l) => l.split(/\s+/).slice(0, 4).join(' ')), [`secrets [] [${SECRET}] [get]`]);
        else assert.deepEqual(secretRules, [], `${who} has Secret rules in ${ns}`);
      }
    }
  });
});
