// The Leases the components create at run time are owned by the Pod that
// wrote them (issue 13: after `helm uninstall` they stayed behind; with an
// owner, the garbage collector deletes them with the Pod). Against a real
// kube-apiserver with the chart's RBAC and the agent's admission policies
// (test/helpers/envtest.ts; envtest has no garbage collector, so the deletion
// itself is checked by the real-node e2e, test/e2e/chart-on-node.e2e.ts):
//
// 1. a real agent given $POD_NAME/$POD_UID (as the chart sets them), with a
//    token bound to that Pod, writes its Lease owned by that Pod; a
//    replacement Pod's agent (--pod-name/--pod-uid) takes the ownership over;
// 2. a real controller's leader Lease is owned by the leading replica's Pod;
//    the next leader takes it over, and a Lease deleted under the leader (what
//    the collector does once the old leader's Pod is gone) is created again,
//    owned by the leader, without the leader losing the lead.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AgentProcess } from '../helpers/agent.ts';
import { ENVTEST_BUILD_TIMEOUT_MS, ENVTEST_NAMESPACE, type Envtest, startEnvtest } from '../helpers/envtest.ts';
import { agentKubeconfig, type ControllerProcess, setupOperatorCluster, startControllerProcess, startNodeAgent, until } from '../helpers/operator.ts';

const LEASES = `/apis/coordination.k8s.io/v1/namespaces/${ENVTEST_NAMESPACE}/leases`;
const PODS = `/api/v1/namespaces/${ENVTEST_NAMESPACE}/pods`;
const CONFIG = `[main]
log_level = "info"
api_listen = "127.0.0.1:0"
multicast = false
`;

interface Pod { name: string; uid: string }
interface Lease {
  metadata: { ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string }[]; resourceVersion?: string; uid?: string };
  spec?: { holderIdentity?: string };
}

const ref = (p: Pod) => ({ apiVersion: 'v1', kind: 'Pod', name: p.name, uid: p.uid });

describe('runtime Leases are owned by the Pod that writes them (real API server)', { timeout: ENVTEST_BUILD_TIMEOUT_MS + 180_000 }, () => {
  let env: Envtest;
  const agents: AgentProcess[] = [];
  const controllers: ControllerProcess[] = [];

  const createPod = async (name: string, serviceAccount: string, node?: string): Promise<Pod> => {
    const r = await env.request<{ metadata: Pod }>('POST', PODS, {
      apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ENVTEST_NAMESPACE },
      spec: { ...(node ? { nodeName: node } : {}), serviceAccountName: serviceAccount, containers: [{ name: 'c', image: 'peripety:test' }] },
    });
    assert.equal(r.status, 201, `POST pod ${name}: ${r.text.slice(0, 300)}`);
    return { name: r.body.metadata.name, uid: r.body.metadata.uid };
  };
  const getPod = async (name: string): Promise<Pod> => {
    const r = await env.request<{ metadata: Pod }>('GET', `${PODS}/${name}`);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    return { name: r.body.metadata.name, uid: r.body.metadata.uid };
  };
  const leaseOwnedBy = (name: string, pod: Pod, holder?: string): Promise<Lease> => until(`the Lease ${name} owned by Pod ${pod.name}`, async () => {
    const r = await env.request<Lease>('GET', `${LEASES}/${name}`);
    if (r.status !== 200) return null;
    const owners = r.body.metadata.ownerReferences ?? [];
    return owners.length === 1 && owners[0]!.uid === pod.uid && (holder === undefined || r.body.spec?.holderIdentity === holder) ? r.body : null;
  }, { timeoutMs: 30_000, intervalMs: 100 });

  before(async () => {
    env = await startEnvtest();
    await setupOperatorCluster(env, { 'owned-node': {} });
  });
  after(async () => {
    await Promise.all([...agents.map((a) => a.stop()), ...controllers.map((c) => c.stop('SIGKILL'))]);
    await env?.stop();
  });

  it('the agent\'s Lease is owned by the agent\'s Pod, and a replacement Pod takes the ownership over (the admission policy lets it)', async () => {
    const node = 'owned-node';
    const name = `peripety-agent-${node}`;
    await agentKubeconfig(env, node); // the Pod peripety-agent-owned-node and a token bound to it
    const first = await getPod(`peripety-agent-${node}`);
    const a = await startNodeAgent(env, node, { config: CONFIG, env: { POD_NAME: first.name, POD_UID: first.uid } });
    agents.push(a);
    const lease = await leaseOwnedBy(name, first);
    assert.deepEqual(lease.metadata.ownerReferences, [ref(first)], 'one reference, no controller, no blockOwnerDeletion');
    await a.stop();

    // the DaemonSet replaces the Pod: same node, same Lease name, a new Pod with a token bound to it
    const second = await createPod(`peripety-agent-${node}-2`, 'peripety-agent', node);
    const kubeconfig = await env.kubeconfigFor({ serviceAccount: 'peripety-agent', boundPod: second });
    const b = await startNodeAgent(env, node, { config: CONFIG, kubeconfig, args: ['--pod-name', second.name, '--pod-uid', second.uid] });
    agents.push(b);
    const taken = await leaseOwnedBy(name, second);
    assert.deepEqual(taken.metadata.ownerReferences, [ref(second)], 'the old Pod\'s reference is gone: its deletion must not take the Lease with it');
    assert.equal(taken.metadata.uid, lease.metadata.uid, 'the same Lease, updated');
    assert.doesNotMatch(b.stderr(), /agent registration failed/, 'no write refused');
    await b.stop();
  });

  it('the leader Lease is owned by the leader\'s Pod; the next leader takes it over; deleted under the leader, it is created again', async () => {
    const p1 = await createPod('peripety-controller-1', 'peripety-controller');
    const p2 = await createPod('peripety-controller-2', 'peripety-controller');
    const c1 = await startControllerProcess(env, { identity: p1.name, env: { POD_NAME: p1.name, POD_UID: p1.uid } });
    controllers.push(c1);
    await leaseOwnedBy('peripety-controller', p1, p1.name);
    const c2 = await startControllerProcess(env, { identity: p2.name, env: { POD_NAME: p2.name, POD_UID: p2.uid } });
    controllers.push(c2);
    // the leader stops (SIGTERM hands the Lease back): the standby takes it and its ownership
    await c1.stop('SIGTERM');
    const taken = await leaseOwnedBy('peripety-controller', p2, p2.name);
    assert.deepEqual(taken.metadata.ownerReferences, [ref(p2)]);
    await c2.waitForLog(/"msg":"leader election: started leading"/);

    // the collector deletes the Lease once the old leader's Pod is gone (were it still owned by it): the
    // leader creates it again at its next renew, owned by itself, and does not stop leading
    const del = await env.request('DELETE', `${LEASES}/peripety-controller`);
    assert.equal(del.status, 200, del.text.slice(0, 300));
    const again = await leaseOwnedBy('peripety-controller', p2, p2.name);
    assert.notEqual(again.metadata.uid, taken.metadata.uid, 'a new Lease');
    assert.doesNotMatch(c2.stderr(), /stopped leading/);
  });
});
