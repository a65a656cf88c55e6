// The agent's control API in Kubernetes mode against a real kube-apiserver
// (test/helpers/envtest.ts): TokenReview authentication (no token, another
// ServiceAccount, a wrong audience are refused; the controller's token for
// peripety-agent is accepted), PUT /v1/config applying plugin sections and a
// storage backend that a kernel line reaches, stale (409) and invalid (400)
// pushes changing nothing, backend/plugin commands, reload (undoing the
// commands) and flush, the registration Lease
// with endpoint and generation, and a restart running the persisted
// configuration. Root: the agent reads /dev/kmsg and the test writes to it.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StorageEvent } from '../../src/events/schema.ts';
import { type AgentProcess, startAgent, testConfig } from '../helpers/agent.ts';
import { AGENT_AUDIENCE, ENVTEST_BUILD_TIMEOUT_MS, ENVTEST_NAMESPACE, type Envtest, startEnvtest } from '../helpers/envtest.ts';
import { isRoot } from '../helpers/faults.ts';
import { injectKmsg, uniqueDevice } from '../helpers/kmsg.ts';
import { rbacYaml } from '../helpers/manifests.ts';

const NODE = 'node-a';
const LEASE = `/apis/coordination.k8s.io/v1/namespaces/${ENVTEST_NAMESPACE}/leases/peripety-agent-${NODE}`;

const PUSHED_TOML = `[kmsg]
type = "collector"
start = "end"
accept_user_facility = true

[block]
type = "parser"

[pushedscsi]
type = "parser"
plugin = "scsi"

[out]
type = "receiver"
plugin = "stdout"
format = "json"
`;
const storage = (plugins: Record<string, unknown>) => ({ root: { elos: { EventLogging: { Plugins: plugins } } } });
const MEM_STORAGE = storage({ mem: { File: 'memory', Run: 'always', Filter: ['1 1 EQ'], Config: { BufferSize: 100 } } });

interface Status {
  generation: number;
  hash: string | null;
  reloads: number;
  plugins: { name: string; enabled: boolean }[];
  storage: { backends: { name: string; started: boolean; starts: number }[] } | null;
}
interface Lease {
  metadata: { annotations?: Record<string, string> };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string };
}

describe('agent control API with TokenReview (real kube-apiserver)', { skip: !isRoot() && 'NOT ROOT: the agent reads /dev/kmsg and the test writes to it' }, () => {
  let env: Envtest;
  let agent: AgentProcess;
  let stateDir: string;
  let controllerToken: string;
  const running: AgentProcess[] = [];

  const start = async () => {
    const a = await startAgent({
      config: testConfig(),
      stateDir,
      args: ['--kubeconfig', env.kubeconfigAgent, '--node-name', NODE, '--namespace', ENVTEST_NAMESPACE],
    });
    running.push(a);
    return a;
  };
  const call = async (method: string, urlPath: string, opts: { token?: string | null; body?: unknown } = {}) => {
    const token = opts.token === undefined ? controllerToken : opts.token;
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(`${agent.apiUrl()}${urlPath}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    const text = await r.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // text
    }
    return { status: r.status, body: body as Record<string, unknown> };
  };
  const status = async () => (await call('GET', '/v1/status')).body as unknown as Status;
  const backends = async () => (await status()).storage?.backends.map((b) => `${b.name}:${b.started}`);
  const metrics = async () => (await fetch(`${agent.apiUrl()}/metrics`)).text();
  const leaseAnnotations = async () => {
    const r = await env.request<Lease>('GET', LEASE);
    return r.status === 200 ? r.body : null;
  };
  const until = async <T>(what: string, f: () => Promise<T | null | undefined | false>, timeoutMs = 15_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await f();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; agent stderr:\n${agent.stderr().slice(-3000)}`);
      await sleep(100);
    }
  };
  const memEvents = async (dev: string) =>
    ((await call('GET', '/v1/events?backend=mem')).body as unknown as { events: StorageEvent[] }).events.filter((e) => e.dev_name === dev);

  before(async () => {
    env = await startEnvtest();
    // the agent's ServiceAccount and RBAC as manifests/ (the Helm chart) installs them
    await env.kubectl(['apply', '-f', '-'], { input: rbacYaml('agent') });
    // the controller's token for this node's agent only (audience peripety-agent:<node>)
    controllerToken = await env.token(ENVTEST_NAMESPACE, 'peripety-controller', { audiences: [`${AGENT_AUDIENCE}:${NODE}`] });
    stateDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'prpt-agent-control-')), 'state');
    agent = await start();
  }, { timeout: ENVTEST_BUILD_TIMEOUT_MS });

  after(async () => {
    for (const a of running) await a.stop('SIGKILL');
    await env?.stop();
  });

  it('refuses no token (401), another ServiceAccount (403), a wrong audience (401: the API server\'s, the plain peripety-agent, another node\'s); accepts the controller for peripety-agent:<node>', async () => {
    assert.equal((await call('GET', '/v1/status', { token: null })).status, 401);
    assert.equal((await call('PUT', '/v1/config', { token: null, body: { generation: 1, hash: 'x', toml: '', storage: MEM_STORAGE } })).status, 401);
    const intruder = await env.token('default', 'intruder', { audiences: [`${AGENT_AUDIENCE}:${NODE}`] });
    const other = await call('GET', '/v1/status', { token: intruder });
    assert.equal(other.status, 403, JSON.stringify(other.body));
    assert.equal((await call('POST', '/v1/backends/local:stop', { token: intruder })).status, 403);
    for (const p of ['/v1/reload', '/v1/flush', '/v1/backends/local:flush']) {
      assert.equal((await call('POST', p, { token: null })).status, 401, p);
      assert.equal((await call('POST', p, { token: intruder })).status, 403, p);
    }
    const wrongAudience = await env.token(ENVTEST_NAMESPACE, 'peripety-controller');
    assert.equal((await call('GET', '/v1/status', { token: wrongAudience })).status, 401);
    // the controller's own tokens for the audience every agent accepted before, and for another node: refused
    const shared = await env.token(ENVTEST_NAMESPACE, 'peripety-controller', { audiences: [AGENT_AUDIENCE] });
    assert.equal((await call('GET', '/v1/status', { token: shared })).status, 401);
    const otherNode = await env.token(ENVTEST_NAMESPACE, 'peripety-controller', { audiences: [`${AGENT_AUDIENCE}:node-b`] });
    const refusedOther = await call('PUT', '/v1/config', { token: otherNode, body: { generation: 1, hash: 'x', toml: '', storage: MEM_STORAGE } });
    assert.equal(refusedOther.status, 401);
    assert.match(JSON.stringify(refusedOther.body), /not for the audience peripety-agent:node-a/);
    assert.equal((await call('GET', '/v1/status', { token: 'not-a-token-at-all' })).status, 401);
    const ok = await call('GET', '/v1/status');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.generation, 0);
    assert.equal(ok.body.hash, null);
    const m = await metrics();
    assert.match(m, /peripety_api_refused_total\{reason="no_token"\} 5/);
    assert.match(m, /peripety_api_refused_total\{reason="wrong_identity"\} 5/);
    // all refused before any TokenReview: the wrong-audience tokens by their aud claim, the other for being no JWT
    assert.match(m, /peripety_api_refused_total\{reason="wrong_audience"\} 3/);
    assert.match(m, /peripety_api_refused_total\{reason="malformed_token"\} 1/);
    assert.doesNotMatch(agent.stderr(), new RegExp(controllerToken.slice(-20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  });

  it('registers a Lease with the endpoint', async () => {
    const lease = await until('the Lease', leaseAnnotations);
    assert.equal(lease.spec.holderIdentity, NODE);
    assert.equal(lease.spec.leaseDurationSeconds, 30);
    assert.equal(lease.metadata.annotations?.['peripety.io/endpoint'], agent.apiUrl());
    assert.equal(lease.metadata.annotations?.['peripety.io/generation'], '0');
  });

  it('PUT /v1/config applies plugin sections and a memory backend that a kernel line reaches; the Lease follows', async () => {
    const r = await call('PUT', '/v1/config', { body: { generation: 2, hash: 'h2', toml: PUSHED_TOML, storage: MEM_STORAGE } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { applied: true, generation: 2, hash: 'h2' });
    const s = await status();
    assert.equal(s.generation, 2);
    assert.equal(s.hash, 'h2');
    assert.deepEqual(await backends(), ['mem:true']);
    assert.match(await metrics(), /peripety_plugin_up\{plugin="pushedscsi"\} 1/);
    const dev = uniqueDevice('sdc');
    injectKmsg(`Buffer I/O error on dev ${dev}, logical block 7, async page read`);
    await agent.waitFor((e) => e.dev_name === dev, 10_000, 'the injected event');
    const got = await until('the event in the memory backend', async () => {
      const e = await memEvents(dev);
      return e.length > 0 ? e : null;
    });
    assert.equal(got[0]!.extentions.logical_block, '7');
    // the same push again: a no-op
    const again = await call('PUT', '/v1/config', { body: { generation: 2, hash: 'h2', toml: PUSHED_TOML, storage: MEM_STORAGE } });
    assert.equal(again.status, 200);
    assert.equal(again.body.unchanged, true);
    await until('the Lease with generation 2', async () => {
      const l = await leaseAnnotations();
      return l?.metadata.annotations?.['peripety.io/generation'] === '2' && l.metadata.annotations['peripety.io/hash'] === 'h2';
    });
  });

  it('a stale generation gets 409, an invalid push 400; neither changes anything', async () => {
    const stale = await call('PUT', '/v1/config', { body: { generation: 1, hash: 'h1', toml: '', storage: storage({}) } });
    assert.equal(stale.status, 409, JSON.stringify(stale.body));
    const badToml = await call('PUT', '/v1/config', { body: { generation: 3, hash: 'h3', toml: '[x]\ntype = "parser"\nplugin = "nosuch"\n', storage: MEM_STORAGE } });
    assert.equal(badToml.status, 400, JSON.stringify(badToml.body));
    assert.match(String(badToml.body.error), /nosuch/);
    const badStorage = await call('PUT', '/v1/config', { body: { generation: 3, hash: 'h3', toml: PUSHED_TOML, storage: storage({ mem2: { File: 'memory', Filters: [] } }) } });
    assert.equal(badStorage.status, 400, JSON.stringify(badStorage.body));
    const withMain = await call('PUT', '/v1/config', { body: { generation: 3, hash: 'h3', toml: '[main]\nlog_level = "debug"\n', storage: MEM_STORAGE } });
    assert.equal(withMain.status, 400);
    const badShape = await call('PUT', '/v1/config', { body: { generation: 0, hash: 'h3', toml: '', storage: MEM_STORAGE } });
    assert.equal(badShape.status, 400);
    const s = await status();
    assert.equal(s.generation, 2);
    assert.equal(s.hash, 'h2');
    assert.deepEqual(await backends(), ['mem:true']);
    assert.deepEqual(s.plugins.map((p) => p.name), ['kmsg', 'block', 'pushedscsi', 'out']);
  });

  it('a push whose storage cannot start is rolled back whole (422)', async () => {
    const r = await call('PUT', '/v1/config', {
      body: { generation: 4, hash: 'h4', toml: `${PUSHED_TOML}\n[rollbackprobe]\ntype = "parser"\nplugin = "nvme"\n`, storage: storage({ broken: { File: 'nosuch', Filter: ['1 1 EQ'] } }) },
    });
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.equal(r.body.applied, false);
    assert.match(String(r.body.error), /nosuch/);
    const s = await status();
    assert.equal(s.generation, 2);
    assert.equal(s.hash, 'h2');
    assert.deepEqual(await backends(), ['mem:true']);
    assert.deepEqual(s.plugins.map((p) => p.name), ['kmsg', 'block', 'pushedscsi', 'out'], 'the plugin sections were rolled back');
  });

  it('backend and plugin commands', async () => {
    const stop = await call('POST', '/v1/backends/mem:stop');
    assert.equal(stop.status, 200, JSON.stringify(stop.body));
    assert.deepEqual(await backends(), ['mem:false']);
    assert.equal((await call('POST', '/v1/backends/mem:start')).status, 200);
    assert.deepEqual(await backends(), ['mem:true']);
    assert.equal((await call('POST', '/v1/backends/mem:restart')).status, 200);
    assert.deepEqual(await backends(), ['mem:true']);
    assert.equal((await call('POST', '/v1/backends/nosuch:stop')).status, 404);
    assert.equal((await call('POST', '/v1/plugins/pushedscsi:stop')).status, 200);
    assert.equal((await status()).plugins.find((p) => p.name === 'pushedscsi')?.enabled, false);
    assert.equal((await call('POST', '/v1/plugins/pushedscsi:start')).status, 200);
    assert.equal((await status()).plugins.find((p) => p.name === 'pushedscsi')?.enabled, true);
    assert.equal((await call('POST', '/v1/plugins/pushedscsi:restart')).status, 200);
    assert.equal((await call('POST', '/v1/plugins/nosuch:stop')).status, 404);
    // the pushed configuration is still the running one
    const dev = uniqueDevice('sdd');
    injectKmsg(`Buffer I/O error on dev ${dev}, logical block 9, async page read`);
    await until('the event in the memory backend after the commands', async () => (await memEvents(dev)).length > 0);
  });

  it('POST /v1/reload applies the pushed configuration again: plugins and backends a command stopped are back', async () => {
    assert.equal((await call('POST', '/v1/plugins/pushedscsi:stop')).status, 200);
    assert.equal((await call('POST', '/v1/backends/mem:stop')).status, 200);
    const before = await status();
    assert.equal(before.plugins.find((p) => p.name === 'pushedscsi')?.enabled, false);
    assert.deepEqual(await backends(), ['mem:false']);
    const r = await call('POST', '/v1/reload');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.reloaded, true);
    assert.equal(r.body.generation, 2);
    assert.equal(r.body.hash, 'h2');
    assert.deepEqual(r.body.backendsStarted, ['mem']);
    const s = await status();
    assert.equal(s.reloads, before.reloads + 1);
    assert.equal(s.plugins.find((p) => p.name === 'pushedscsi')?.enabled, true, 'the stopped plugin runs again');
    assert.deepEqual(await backends(), ['mem:true'], 'the stopped backend runs again');
    assert.deepEqual(s.plugins.map((p) => p.name), ['kmsg', 'block', 'pushedscsi', 'out']);
    assert.equal((await call('GET', '/v1/reload')).status, 405);
    const dev = uniqueDevice('sdf');
    injectKmsg(`Buffer I/O error on dev ${dev}, logical block 13, async page read`);
    await until('the event in the memory backend after the reload', async () => (await memEvents(dev)).length > 0);
  });

  it('POST /v1/flush: every backend wrote what it held; per backend, and refusals', async () => {
    // stdout and storage get each event in the same step: once it is printed, storage holds it (queued or written)
    const dev = uniqueDevice('sdg');
    injectKmsg(`Buffer I/O error on dev ${dev}, logical block 15, async page read`);
    await agent.waitFor((e) => e.dev_name === dev, 10_000, 'the injected event');
    const f = await call('POST', '/v1/flush?timeoutSeconds=5');
    assert.equal(f.status, 200, JSON.stringify(f.body));
    assert.equal(f.body.flushed, true);
    assert.equal(f.body.timeoutMs, 5000);
    const per = f.body.backends as { backend: string; flushed: boolean; written: number; queueDepth: number }[];
    assert.deepEqual(per.map((b) => [b.backend, b.flushed, b.queueDepth]), [['mem', true, 0]]);
    assert.equal((await memEvents(dev)).length, 1, 'queryable right after the flush, without waiting');
    const one = await call('POST', '/v1/backends/mem:flush');
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.equal((await call('POST', '/v1/backends/nosuch:flush')).status, 404);
    assert.equal((await call('POST', '/v1/flush?timeoutSeconds=0')).status, 400);
    assert.equal((await call('POST', '/v1/plugins/pushedscsi:flush')).status, 404);
  });

  it('restarted without a push, the agent runs the persisted configuration', async () => {
    const { code } = await agent.stop();
    assert.equal(code, 0);
    agent = await start();
    assert.match(agent.stderr(), /starting with the last applied configuration/);
    const s = await status();
    assert.equal(s.generation, 2);
    assert.equal(s.hash, 'h2');
    assert.deepEqual(await backends(), ['mem:true']);
    assert.match(await metrics(), /peripety_plugin_up\{plugin="pushedscsi"\} 1/);
    const dev = uniqueDevice('sde');
    injectKmsg(`Buffer I/O error on dev ${dev}, logical block 11, async page read`);
    await until('the event in the memory backend after the restart', async () => (await memEvents(dev)).length > 0);
    await until('the Lease with the new endpoint and generation 2', async () => {
      const l = await leaseAnnotations();
      return l?.metadata.annotations?.['peripety.io/endpoint'] === agent.apiUrl() && l.metadata.annotations['peripety.io/generation'] === '2';
    });
  });
});
