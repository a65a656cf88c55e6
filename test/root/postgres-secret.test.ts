// The postgres backend's ConnectionSecret in Kubernetes mode (docs/storage.md:
// "Credentials from a Kubernetes Secret"), with REAL components: a real
// kube-apiserver (test/helpers/envtest.ts) holding the Secrets, a real
// PostgreSQL server (test/helpers/postgres.ts), `peripety controller` and a
// real agent in Kubernetes mode. The agent reads `ConnectionSecret:
// <name>[/<key>]` in its own namespace with its own ServiceAccount, which
// may `get` only the Secrets a Role names (resourceNames, as the Helm
// chart's agent.secretNames renders it). Events reach PostgreSQL through
// backends whose connection string comes from a Secret (default key and a
// named key); a missing Secret, a missing key and a Secret the Role does not
// name are each refused with a clear message in the StorageBackend's status,
// and the node keeps running its previous configuration. The connection
// string and the password appear nowhere: not in the agent's or the
// controller's logs, not in any status, not in applied.json. Root: the
// PostgreSQL cluster runs as the postgres user, the agent reads /dev/kmsg.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StorageEvent } from '../../src/events/schema.ts';
import type { AgentProcess } from '../helpers/agent.ts';
import { ENVTEST_BUILD_TIMEOUT_MS, ENVTEST_NAMESPACE, type Envtest, startEnvtest } from '../helpers/envtest.ts';
import { isRoot } from '../helpers/faults.ts';
import { injectKmsg, uniqueDevice } from '../helpers/kmsg.ts';
import {
  agentStatus, type ControllerProcess, mustRequest, SBE_PATH, SEP_PATH, setupOperatorCluster, startControllerProcess,
  startNodeAgent, until,
} from '../helpers/operator.ts';
import { type PostgresServer, requirePostgres, startPostgres } from '../helpers/postgres.ts';

const NODE = 'pg-node';
const NS = ENVTEST_NAMESPACE;
/** Secrets the agent's Role names; pg-missing is named but never created */
const ALLOWED = ['pg-conn', 'pg-other', 'pg-missing'];

interface CrStatus {
  conditions?: { type: string; status: string; reason: string; message: string }[];
  nodesSelected?: number;
  nodesApplied?: number;
  nodesFailed?: number;
  failures?: { node: string; message: string }[];
}

describe('postgres ConnectionSecret in Kubernetes mode (real kube-apiserver, real PostgreSQL, real controller and agent)', {
  skip: !isRoot() && 'NOT ROOT: runs a throwaway PostgreSQL cluster as the postgres user; the agent reads /dev/kmsg',
  timeout: ENVTEST_BUILD_TIMEOUT_MS + 180_000,
}, () => {
  let env: Envtest;
  let server: PostgresServer;
  let agent: AgentProcess;
  let controller: ControllerProcess | undefined;
  let token: string;

  const detail = () => `--- agent:\n${agent?.stderr().slice(-2000)}\n--- controller:\n${controller?.stderr().slice(-2000)}`;
  const crStatus = async (name: string): Promise<CrStatus> => ((await env.request<{ status?: CrStatus }>('GET', `${SBE_PATH}/${name}`)).body.status ?? {});
  const ready = (s: CrStatus) => s.conditions?.find((c) => c.type === 'Ready')?.status;
  const createBackend = (name: string, config: Record<string, unknown>) =>
    mustRequest(env, 'POST', SBE_PATH, { apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name }, spec: { backend: 'postgres', filters: ['1 1 EQ'], config } });
  const runningBackends = async () => ((await agentStatus(agent, token)).storage?.backends ?? []).filter((b) => b.started).map((b) => b.name).sort();
  const secret = (name: string, data: Record<string, string>) =>
    mustRequest(env, 'POST', `/api/v1/namespaces/${NS}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: NS }, stringData: data });

  before(async () => {
    // root without the PostgreSQL binaries fails here, naming the package to install
    server = await startPostgres({ fsync: false });
    env = await startEnvtest();
    const cluster = await setupOperatorCluster(env, { [NODE]: {} });
    token = await cluster.tokenFor(NODE);
    await secret('pg-conn', { connectionString: server.url });
    await secret('pg-other', { url: server.url, note: 'not a connection string' });
    await secret('pg-denied', { connectionString: server.url });
    // the Role the Helm chart renders from agent.secretNames: get, by name only (docs/storage.md)
    await mustRequest(env, 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'peripety-agent-secrets', namespace: NS },
      rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: ALLOWED, verbs: ['get'] }],
    });
    await mustRequest(env, 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'peripety-agent-secrets', namespace: NS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'peripety-agent-secrets' },
      subjects: [{ kind: 'ServiceAccount', name: 'peripety-agent', namespace: NS }],
    });
    agent = await startNodeAgent(env, NODE);
    controller = await startControllerProcess(env, { identity: 'pg-secret' });
    // the pushed plugin sections replace the local ones: the collector and parser come from the cluster too
    for (const [name, spec] of [
      ['kmsg', { type: 'collector', plugin: 'kmsg', config: { start: 'end', accept_user_facility: true } }],
      ['block', { type: 'parser', plugin: 'block' }],
    ] as const) {
      await mustRequest(env, 'POST', SEP_PATH, { apiVersion: 'peripety.io/v1alpha1', kind: 'StorageEventPlugin', metadata: { name }, spec });
    }
  }, { timeout: ENVTEST_BUILD_TIMEOUT_MS });

  after(async () => {
    await controller?.stop('SIGKILL');
    await agent?.stop('SIGKILL');
    await env?.stop();
    await server?.destroy();
  });

  it('events reach PostgreSQL through backends whose connection string is a Secret (default key, and <name>/<key>)', async (t) => {
    if (!requirePostgres(t)) return;
    const t0 = Date.now();
    await createBackend('shared', { ConnectionSecret: 'pg-conn', Table: 'from_secret' });
    await createBackend('by-key', { ConnectionSecret: 'pg-other/url', Table: 'from_secret_key' });
    await until('both backends running on the agent', async () => JSON.stringify(await runningBackends()) === '["by-key","shared"]', { timeoutMs: 20_000, detail });
    for (const name of ['shared', 'by-key']) {
      await until(`${name} Ready 1/1`, async () => {
        const s = await crStatus(name);
        return ready(s) === 'True' && s.nodesApplied === 1;
      }, { detail });
    }
    console.log(`# two postgres StorageBackends with ConnectionSecret running on ${NODE} ${Date.now() - t0} ms after create`);

    const dev = uniqueDevice('sdp');
    injectKmsg(`I/O error, dev ${dev}, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0`, 4);
    for (const table of ['from_secret', 'from_secret_key']) {
      const rows = await until(`the event in table ${table}`, async () => {
        const r = await server.query<{ hostname: string; event_type: string }>(`SELECT hostname, event_type FROM ${table} WHERE dev_name = $1 OR extentions->>'kernel_dev' = $1`, [dev]);
        return r.length > 0 ? r : null;
      }, { timeoutMs: 15_000, detail });
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.hostname, NODE);
      assert.equal(rows[0]!.event_type, 'BLK_IO_ERROR');
    }
    // and read back through the agent
    const r = await fetch(`${agent.apiUrl()}/v1/events?backend=shared`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200);
    const got = (await r.json() as { events: StorageEvent[] }).events;
    assert.ok(got.some((e) => e.extentions.kernel_dev === dev || e.dev_name === dev), 'GET /v1/events?backend=shared finds it');
    console.log(`# a kernel line stored in PostgreSQL through both (${Date.now() - t0} ms)`);
  });

  const refused = async (name: string, config: Record<string, unknown>, want: RegExp): Promise<string> => {
    const t0 = Date.now();
    await createBackend(name, config);
    const s = await until(`${name}: a failure in its status`, async () => {
      const x = await crStatus(name);
      return ready(x) === 'False' && (x.failures?.length ?? 0) > 0 ? x : null;
    }, { timeoutMs: 15_000, detail });
    const message = s.failures![0]!.message;
    console.log(`# ${name}: StorageBackend status after ${Date.now() - t0} ms: nodesFailed ${s.nodesFailed}, failures[0]: ${message}`);
    assert.equal(s.failures![0]!.node, NODE);
    assert.match(message, want);
    assert.equal(s.nodesFailed, 1);
    // the node keeps the configuration it ran
    assert.deepEqual(await runningBackends(), ['by-key', 'shared']);
    await mustRequest(env, 'DELETE', `${SBE_PATH}/${name}`);
    await until('shared Ready again', async () => ready(await crStatus('shared')) === 'True', { detail });
    return message;
  };

  it('a missing Secret: a clear error in the StorageBackend status; the node keeps its configuration', async (t) => {
    if (!requirePostgres(t)) return;
    await refused('missing', { ConnectionSecret: 'pg-missing', Table: 'never' }, /postgres backend "missing": ConnectionSecret: Secret "peripety-system\/pg-missing" not found/);
  });

  it('a Secret without the key: the error names the key and the keys there are', async (t) => {
    if (!requirePostgres(t)) return;
    await refused('nokey', { ConnectionSecret: 'pg-other' }, /Secret "peripety-system\/pg-other" has no key "connectionString" \(its keys: "note", "url"\)/);
  });

  it('a Secret the Role does not name: 403, and the error says which permission is needed', async (t) => {
    if (!requirePostgres(t)) return;
    await refused('denied', { ConnectionSecret: 'pg-denied' }, /may not read Secret "peripety-system\/pg-denied" \(403 Forbidden\): its ServiceAccount \("system:serviceaccount:peripety-system:peripety-agent"\) needs "get" on secrets with resourceNames \["pg-denied"\] in namespace "peripety-system": a Role/);
  });

  it('the connection string and the password appear nowhere', async (t) => {
    if (!requirePostgres(t)) return;
    const needles = [server.url, server.password, encodeURIComponent(server.password)];
    const statuses = await env.request('GET', SBE_PATH);
    const places: [string, string][] = [
      ['agent log', agent.stderr()],
      ['controller log', controller!.stderr()],
      ['StorageBackend statuses', statuses.text],
      ['agent GET /v1/status', JSON.stringify(await agentStatus(agent, token))],
      ['applied.json', readFileSync(path.join(agent.stateDir, 'applied.json'), 'utf8')],
    ];
    for (const [where, text] of places) {
      assert.ok(text.length > 0, `${where} is empty`);
      for (const n of needles) assert.ok(!text.includes(n), `${where} contains a secret`);
    }
    assert.match(readFileSync(path.join(agent.stateDir, 'applied.json'), 'utf8'), /"ConnectionSecret":"pg-conn"/, 'only the Secret name is pushed');
  });
});
