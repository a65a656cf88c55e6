// Hostile: a compromised node replays the controller's token to the other
// agents (issue 10, A2, the second half). Against a real kube-apiserver
// (test/helpers/envtest.ts) with the chart's RBAC and admission policies from
// manifests/, the real controller (in this process, its own ServiceAccount)
// and a real agent on node-b (`bin/peripety agent` in Kubernetes mode, no
// collector: no root needed):
//
// node-a is the compromised node. Its "agent" is a listener on node-a's own
// address that registers node-a's Lease and records every request — what
// root on node-a reads anyway (the push is plain HTTP, and the real agent
// holds the token in memory). The controller pushes a configuration to both
// nodes; the test takes the exact bearer token node-a received and replays
// it to node-b's real agent: PUT /v1/config with another configuration, and
// POST commands (stop the backend, reload). Every one must be refused with
// 401 (reason wrong_audience, counted in node-b's peripety_api_refused_total)
// and node-b must still run exactly what the controller pushed. Also: the
// real API server reviews a per-node token for its node only, and the
// controller's identity may request tokens for its own ServiceAccount only.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KubeClient, loadKubeconfig } from '../../src/k8s/http.ts';
import { AgentTokens, tokenRequestIssuer } from '../../src/controller/agent-tokens.ts';
import { Controller } from '../../src/controller/controller.ts';
import { createLogger, silentLogger } from '../../src/log/logger.ts';
import type { AgentProcess } from '../helpers/agent.ts';
import { ENVTEST_BUILD_TIMEOUT_MS, ENVTEST_NAMESPACE, type Envtest, startEnvtest } from '../helpers/envtest.ts';
import { FakeAgent } from '../helpers/fake-agent.ts';
import { spawnPeripety } from '../helpers/spawn-agent.ts';
import { agentStatus, type OperatorCluster, SBE_PATH, setupOperatorCluster, startNodeAgent, until } from '../helpers/operator.ts';

/** No collector (nothing reads /dev/kmsg): the controller's pushes replace the plugin sections anyway. */
const AGENT_CONFIG = `[main]
log_level = "info"
api_listen = "127.0.0.1:0"
multicast = false
`;

/** what node-a would like node-b to run instead (a backend of its choosing; a real attacker would add a webhook to its own server) */
const HIJACK = {
  generation: 1_000_000,
  hash: 'sha256:hijacked',
  toml: '[hijack]\ntype = "receiver"\nplugin = "stdout"\nformat = "json"\n',
  storage: { root: { elos: { EventLogging: { Plugins: { hijacked: { File: 'memory', Filter: ['1 1 EQ'] } } } } } },
};

describe('hostile: a node replays the controller\'s token to another node\'s agent (real API server, real agent)', { timeout: ENVTEST_BUILD_TIMEOUT_MS + 180_000 }, () => {
  let env: Envtest;
  let cluster: OperatorCluster;
  let agentB: AgentProcess | undefined;
  let fakeA: FakeAgent | undefined;
  let controller: Controller | undefined;

  before(async () => {
    env = await startEnvtest();
    cluster = await setupOperatorCluster(env, { 'node-a': { role: 'compromised' }, 'node-b': { role: 'victim' } });
  });

  after(async () => {
    await controller?.stop({ release: false }).catch(() => undefined);
    await fakeA?.stop().catch(() => undefined);
    await agentB?.stop('SIGKILL').catch(() => undefined);
    await env?.stop();
  });

  it('the token node-a received is refused by node-b (401 wrong_audience); node-b keeps the controller\'s configuration', async () => {
    agentB = await startNodeAgent(env, 'node-b', { config: AGENT_CONFIG });
    // node-a: accepts what a genuine agent on node-a would accept, and records every request (root on node-a sees it all)
    fakeA = new FakeAgent(env, 'node-a');
    await fakeA.start();

    const kc = new KubeClient(loadKubeconfig(env.kubeconfigController), { maxSockets: 32 });
    controller = new Controller({ client: kc, namespace: ENVTEST_NAMESPACE, identity: 'ctl-replay', log: process.env.CTL_DEBUG ? createLogger('debug') : silentLogger(), resyncMs: 30_000 });
    await controller.start();

    await env.request('POST', SBE_PATH, {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'genuine' },
      spec: { backend: 'memory', filters: ['1 1 EQ'] },
    });
    const bToken = await cluster.tokenFor('node-b');
    const detail = () => `--- node-b agent:\n${agentB!.stderr().slice(-2000)}`;
    const applied = await until('node-b to run the controller\'s push', async () => {
      const s = await agentStatus(agentB!, bToken);
      return s.storage?.backends.some((b) => b.name === 'genuine' && b.started) ? s : null;
    }, { timeoutMs: 30_000, intervalMs: 100, detail });
    await fakeA.waitFor((a) => a.pushes.some((p) => JSON.stringify(p.storage).includes('genuine')), 30_000, 'the push of "genuine" to node-a');

    // the exact token the controller sent to node-a
    const captured = [...new Set(fakeA.requests.map((r) => r.authorization).filter((h): h is string => h?.startsWith('Bearer ') === true))];
    assert.ok(captured.length >= 1, 'node-a received the controller\'s token');
    const claims = JSON.parse(Buffer.from(captured[0]!.slice('Bearer '.length).split('.')[1]!, 'base64url').toString('utf8')) as { aud?: string[]; sub?: string; exp?: number; iat?: number };
    console.log(`# token presented to node-a: aud=${JSON.stringify(claims.aud)} sub=${claims.sub} lifetime=${(claims.exp ?? 0) - (claims.iat ?? 0)} s`);

    // the replay: node-a pushes its own configuration to node-b, and sends commands
    const replay = async (method: string, p: string, body?: unknown): Promise<{ status: number; text: string }> => {
      const r = await fetch(`${agentB!.apiUrl()}${p}`, {
        method, headers: { authorization: captured[0]!, 'content-type': 'application/json', 'x-peripety-controller': 'ctl-replay' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: r.status, text: (await r.text()).slice(0, 300) };
    };
    // the same token with its aud claim rewritten to node-b: it passes the agent's claim pre-check, and the
    // TokenReview finds the signature broken
    const [h, c, sig] = captured[0]!.slice('Bearer '.length).split('.');
    const forgedClaims = JSON.parse(Buffer.from(c!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const forged = `Bearer ${[h, Buffer.from(JSON.stringify({ ...forgedClaims, aud: ['peripety-agent:node-b'] })).toString('base64url'), sig].join('.')}`;
    const forgedPut = await fetch(`${agentB.apiUrl()}/v1/config`, {
      method: 'PUT', headers: { authorization: forged, 'content-type': 'application/json' }, body: JSON.stringify({ ...HIJACK, generation: applied.generation + 2_000_000 }),
    });
    const forgedText = (await forgedPut.text()).slice(0, 300);
    console.log(`# node-a's token with aud rewritten to node-b, PUT /v1/config to node-b: ${forgedPut.status} ${forgedText}`);

    const results = [
      { what: 'PUT /v1/config', ...await replay('PUT', '/v1/config', { ...HIJACK, generation: applied.generation + 1_000_000 }) },
      { what: 'POST /v1/backends/genuine:stop', ...await replay('POST', '/v1/backends/genuine:stop') },
      { what: 'POST /v1/reload', ...await replay('POST', '/v1/reload') },
      { what: 'GET /v1/status', ...await replay('GET', '/v1/status') },
    ];
    const after = await agentStatus(agentB, bToken);
    console.log(results.map((r) => `# replay ${r.what} to node-b: ${r.status} ${r.text}`).join('\n'));
    console.log(`# node-b now: generation ${after.generation}, hash ${after.hash}, backends ${after.storage?.backends.map((b) => `${b.name}:${b.started}`).join(',')}, plugins ${after.plugins.map((p) => p.name).join(',')}`);
    const metrics = await (await fetch(`${agentB.apiUrl()}/metrics`)).text();
    const wrongAudience = Number(/^peripety_api_refused_total\{reason="wrong_audience"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
    console.log(`# node-b peripety_api_refused_total{reason="wrong_audience"} ${wrongAudience}`);

    assert.deepEqual(results.map((r) => `${r.what}: ${r.status}`), results.map((r) => `${r.what}: 401`), 'every replayed request is refused');
    for (const r of results) assert.match(r.text, /not for the audience peripety-agent:node-b/, r.what);
    assert.equal(wrongAudience, results.length, 'each refusal is counted as wrong_audience');
    assert.equal(forgedPut.status, 401, forgedText);
    assert.match(forgedText, /not valid \(TokenReview did not authenticate it\)/);
    assert.equal(after.generation, applied.generation);
    assert.equal(after.hash, applied.hash);
    assert.deepEqual(after.storage?.backends.map((b) => `${b.name}:${b.started}`), ['genuine:true']);
    assert.ok(!after.plugins.some((p) => p.name === 'hijack'));
    // the controller's own token for node-b is a different one, for node-b only
    assert.ok(!captured.includes(`Bearer ${bToken}`));
    assert.deepEqual(claims.aud, ['peripety-agent:node-a']);
  });

  it('the API server (--api-audiences: server URL, peripety-agent) reviews a per-node token for exactly its node', async () => {
    // a TokenReview with spec.audiences is checked against the token's own aud, not against
    // --api-audiences (those are the defaults for tokens and reviews that name none)
    const review = async (token: string, audiences: string[]) => (await env.request<{ status?: { authenticated?: boolean; audiences?: string[]; user?: { username?: string } } }>('POST',
      '/apis/authentication.k8s.io/v1/tokenreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } })).body.status ?? {};
    const a = await cluster.tokenFor('node-a');
    const forA = await review(a, ['peripety-agent:node-a']);
    const forB = await review(a, ['peripety-agent:node-b']);
    const forAll = await review(a, ['peripety-agent']);
    console.log(`# TokenReview of node-a's token: for node-a ${JSON.stringify(forA)}; for node-b authenticated=${forB.authenticated}; for peripety-agent authenticated=${forAll.authenticated}`);
    assert.equal(forA.authenticated, true);
    assert.deepEqual(forA.audiences, ['peripety-agent:node-a']);
    assert.equal(forA.user?.username, `system:serviceaccount:${ENVTEST_NAMESPACE}:peripety-controller`);
    assert.notEqual(forB.authenticated, true);
    assert.notEqual(forAll.authenticated, true);
  });

  it('the controller\'s identity gets tokens for its own ServiceAccount only; a refusal is a clear error', async () => {
    const kc = new KubeClient(loadKubeconfig(env.kubeconfigController), { maxSockets: 32 });
    const own = await tokenRequestIssuer(kc, ENVTEST_NAMESPACE, 'peripety-controller')('peripety-agent:node-x', 600);
    assert.ok(own.expiresAt > Date.now() + 500_000 && own.expiresAt <= Date.now() + 610_000, `expires in ${own.expiresAt - Date.now()} ms`);
    // the agent's ServiceAccount: a token of it is no use to the agents, but the rule must not allow it
    const tokens = new AgentTokens({ issue: tokenRequestIssuer(kc, ENVTEST_NAMESPACE, 'peripety-agent') });
    const err = await tokens.get('node-x').then(() => null, (e: unknown) => e as Error);
    console.log(`# TokenRequest for another ServiceAccount: ${err?.message}`);
    assert.match(err?.message ?? '', /^cannot get a token for node node-x \(TokenRequest for the audience peripety-agent:node-x\): ServiceAccount peripety-system\/peripety-agent: HTTP 403: .*cannot create resource "serviceaccounts\/token"/);
    assert.doesNotMatch(err?.message ?? '', /eyJ/, 'no token in the message');
  });
});

describe('the controller has no shared-token mode', () => {
  const noCluster = { ...process.env, KUBERNETES_SERVICE_HOST: '', KUBECONFIG: '' };
  const usage = async (args: string[], env: NodeJS.ProcessEnv = noCluster): Promise<{ code: number | null; stderr: string }> => {
    const p = spawnPeripety(['controller', ...args], env);
    try {
      const r = await p.exitWithin(15_000);
      assert.ok(r !== null, `did not exit; stderr:\n${p.stderr().slice(-1000)}`);
      return { code: r.code, stderr: p.stderr() };
    } finally {
      await p.kill();
    }
  };

  it('--agent-token-file and $PERIPETY_AGENT_TOKEN_FILE are refused with the reason (exit 2), before any cluster is asked', async () => {
    const flag = await usage(['--agent-token-file', '/tmp/token']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--agent-token-file \(\$PERIPETY_AGENT_TOKEN_FILE\) is no longer supported: one token would be good at every agent/);
    const env = await usage([], { ...noCluster, PERIPETY_AGENT_TOKEN_FILE: '/tmp/token' });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /no longer supported/);
  });

  it('--agent-token-seconds outside 600–86400 and a --service-account that is no name are usage errors', async () => {
    for (const [args, re] of [
      [['--agent-token-seconds', '60'], /--agent-token-seconds: an integer from 600 to 86400 \(got "60"\)/],
      [['--agent-token-seconds', 'ten'], /--agent-token-seconds: an integer from 600 to 86400/],
      [['--service-account', 'Not/A/Name'], /--service-account: "Not\/A\/Name" is not a ServiceAccount name/],
    ] as const) {
      const r = await usage([...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, re);
    }
  });
});
