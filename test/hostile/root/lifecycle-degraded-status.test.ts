// Issue 10 C11, Kubernetes part: an agent restarted with an applied.json
// whose storage cannot start (here a jsonl directory that became a file, as
// a vanished mount leaves it) starts anyway, says so in its Lease
// (peripety.io/degraded), and the controller reports that node as failed in
// the StorageBackend's status, with the agent's reason — instead of counting
// it applied (or the agent crash-looping). Real kube-apiserver, real
// controller process, real agent. Root: the agent reads /dev/kmsg.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AgentProcess } from '../../helpers/agent.ts';
import { ENVTEST_BUILD_TIMEOUT_MS, ENVTEST_NAMESPACE, type Envtest, startEnvtest } from '../../helpers/envtest.ts';
import { isRoot } from '../../helpers/faults.ts';
import { type ControllerProcess, mustRequest, SBE_PATH, setupOperatorCluster, startControllerProcess, startNodeAgent, until } from '../../helpers/operator.ts';

interface SbeStatus {
  nodesApplied?: number;
  nodesFailed?: number;
  ready?: string;
  failures?: { node: string; message: string }[];
  conditions?: { type: string; status: string; reason: string; message: string }[];
}

describe('hostile: a degraded agent start is visible in the StorageBackend status (C11)', {
  skip: !isRoot() && 'NOT ROOT: the agent reads /dev/kmsg',
  timeout: ENVTEST_BUILD_TIMEOUT_MS + 180_000,
}, () => {
  let env: Envtest;
  let controller: ControllerProcess | undefined;
  const agents: AgentProcess[] = [];

  before(async () => {
    env = await startEnvtest();
    await setupOperatorCluster(env, { 'lc-node': { lifecycle: 'degraded' } });
    controller = await startControllerProcess(env, { identity: 'lifecycle', logLevel: 'info' });
  }, { timeout: ENVTEST_BUILD_TIMEOUT_MS + 60_000 });
  after(async () => {
    for (const a of agents) await a.stop('SIGKILL');
    await controller?.stop();
    await env?.stop();
  });

  it('applied on the node, then the agent restarts degraded: Ready False, failures name the node and the reason', async (t) => {
    const stateDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'prpt-lc-degraded-')), 'state');
    const jsonlDir = path.join(stateDir, 'lc-jsonl');
    mkdirSync(jsonlDir, { recursive: true, mode: 0o700 });
    const first = await startNodeAgent(env, 'lc-node', { stateDir });
    agents.push(first);
    await mustRequest(env, 'POST', SBE_PATH, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'lc-files' },
      spec: { backend: 'jsonl', filters: ['1 1 EQ'], config: { StoragePath: `${jsonlDir}/events-%count%.jsonl` }, nodeSelector: { matchLabels: { lifecycle: 'degraded' } } },
    });
    const status = async (): Promise<SbeStatus> => ((await env.request<{ status?: SbeStatus }>('GET', `${SBE_PATH}/lc-files`)).body.status ?? {});
    const detail = () => `controller:\n${controller!.stderr().slice(-1500)}\nagent:\n${agents.at(-1)!.stderr().slice(-1500)}`;
    await until('lc-files applied on lc-node', async () => (await status()).ready === '1/1', { timeoutMs: 30_000, detail });
    await first.stop('SIGTERM');
    // the directory is gone and a file sits where it was: the backend cannot start any more
    rmSync(jsonlDir, { recursive: true, force: true });
    writeFileSync(jsonlDir, 'not a directory');
    const second = await startNodeAgent(env, 'lc-node', { stateDir });
    agents.push(second);
    const s = await until('lc-files reports lc-node failed', async () => {
      const st = await status();
      return st.nodesFailed === 1 ? st : null;
    }, { timeoutMs: 40_000, detail });
    const ready = s.conditions?.find((c) => c.type === 'Ready');
    t.diagnostic(`status: ready ${s.ready}, Ready ${ready?.status}/${ready?.reason}, failures ${JSON.stringify(s.failures)}`);
    assert.equal(s.ready, '0/1');
    assert.equal(ready?.status, 'False');
    assert.equal(s.failures?.[0]?.node, 'lc-node');
    assert.match(s.failures?.[0]?.message ?? '', /storage backend "lc-files" did not start: .*(ENOTDIR|is a regular file, not a directory)/);
    const lease = await env.request<{ metadata: { annotations?: Record<string, string> } }>('GET', `/apis/coordination.k8s.io/v1/namespaces/${ENVTEST_NAMESPACE}/leases/peripety-agent-lc-node`);
    assert.match(lease.body.metadata.annotations?.['peripety.io/degraded'] ?? '', /lc-files/);
  });

  it('an applied.json naming a postgres ConnectionSecret the agent cannot read (gone, or not granted): the agent starts with the other backend', async (t) => {
    const stateDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'prpt-lc-secret-')), 'state');
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(path.join(stateDir, 'applied.json'), JSON.stringify({
      generation: 5, hash: 'lc-h5', toml: '',
      storage: { root: { elos: { EventLogging: { Plugins: {
        keep: { File: 'memory', Filter: ['1 1 EQ'] },
        pg: { File: 'postgres', Filter: ['1 1 EQ'], Config: { ConnectionSecret: 'lc-deleted-secret' } },
      } } } } },
    }), { mode: 0o600 });
    const a = await startNodeAgent(env, 'lc-other', { stateDir });
    agents.push(a);
    const ready = await fetch(`${a.apiUrl()}/readyz`);
    const why = await ready.text();
    const metrics = await (await fetch(`${a.apiUrl()}/metrics`)).text();
    t.diagnostic(`/readyz ${ready.status}: ${why.trim()}`);
    assert.equal(ready.status, 503);
    assert.match(why, /storage backend "pg" did not start: .*lc-deleted-secret/);
    assert.equal(why.split('storage backend "pg" did not start').length, 2, 'reported once');
    assert.match(metrics, /peripety_storage_backend_excluded\{backend="pg"\} 1/);
    assert.doesNotMatch(metrics, /peripety_storage_backend_excluded\{backend="keep"\}/);
    assert.match(a.stderr(), /"generation":5/);
  });
});
