// `peripety agent --api-listen-ip IP` (the chart passes the node's
// $(NODE_IP)): the control API binds that address only, with [main]
// api_listen's port, and the registration Lease advertises it — IPv6 in
// brackets. A real agent in Kubernetes mode against a real kube-apiserver.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AgentProcess } from '../helpers/agent.ts';
import { ENVTEST_BUILD_TIMEOUT_MS, ENVTEST_NAMESPACE, type Envtest, startEnvtest } from '../helpers/envtest.ts';
import { setupOperatorCluster, startNodeAgent, until } from '../helpers/operator.ts';

/** every address of the host, as a DaemonSet's "0.0.0.0:<port>" would say; no collector needs root */
const CONFIG = `[main]
log_level = "info"
api_listen = "0.0.0.0:0"
multicast = false
`;

interface Lease {
  metadata: { annotations?: Record<string, string> };
}

async function reachable(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(3000) })).ok;
  } catch {
    return false;
  }
}

describe('agent --api-listen-ip: binds one address, advertises it', { timeout: ENVTEST_BUILD_TIMEOUT_MS + 120_000 }, () => {
  let env: Envtest;
  const agents: AgentProcess[] = [];

  before(async () => {
    env = await startEnvtest();
    await setupOperatorCluster(env, { 'listen-v4': {}, 'listen-v6': {} });
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await env?.stop();
  });

  for (const [node, ip, other] of [['listen-v4', '127.0.0.1', '[::1]'], ['listen-v6', '::1', '127.0.0.1']] as const) {
    it(`${ip}: the Lease names http://${ip.includes(':') ? `[${ip}]` : ip}:<port>, and only that address answers`, async () => {
      const agent = await startNodeAgent(env, node, { config: CONFIG, args: ['--api-listen-ip', ip] });
      agents.push(agent);
      const url = agent.apiUrl();
      const port = new URL(url).port;
      const want = `http://${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
      assert.equal(url, want, 'the API listens on the given address with the configured port');
      const lease = await until(`the Lease of ${node}`, async () => {
        const r = await env.request<Lease>('GET', `/apis/coordination.k8s.io/v1/namespaces/${ENVTEST_NAMESPACE}/leases/peripety-agent-${node}`);
        return r.status === 200 && r.body.metadata.annotations?.['peripety.io/endpoint'] ? r.body : null;
      });
      assert.equal(lease.metadata.annotations?.['peripety.io/endpoint'], want);
      assert.equal(await reachable(want), true, `${want} answers`);
      assert.equal(await reachable(`http://${other}:${port}`), false, `the other loopback address (${other}) does not: the API is not on every address`);
    });
  }
});
