// Issue 10 A5, the controller's side: the agent now answers 429 when its
// TokenReview budget is spent (docs/agent-api.md "Authentication"). That is
// "come back later", not "this configuration is refused": the controller
// retries with backoff and the push lands; a one-off command answered 429
// with retry-after is sent again after that delay. A real controller and a real
// kube-apiserver (test/helpers/envtest.ts), a fake agent
// (test/helpers/fake-agent.ts) that answers 429 to its first two pushes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KubeClient, loadKubeconfig } from '../../src/k8s/http.ts';
import { Controller } from '../../src/controller/controller.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { ENVTEST_BUILD_TIMEOUT_MS, ENVTEST_NAMESPACE, type Envtest, startEnvtest } from '../helpers/envtest.ts';
import { FakeAgent } from '../helpers/fake-agent.ts';
import { rbacYaml } from '../helpers/manifests.ts';
import { createNode } from '../helpers/operator.ts';

const NODE = 'hostile-429';

describe('controller: an agent answering 429 is retried, not marked failed for good', { timeout: ENVTEST_BUILD_TIMEOUT_MS + 120_000 }, () => {
  let env: Envtest;
  let agent: FakeAgent;
  let controller: Controller | null = null;

  before(async () => {
    env = await startEnvtest();
    await env.kubectl(['apply', '-f', '-'], { input: rbacYaml('controller') });
    // with its address in status, as a kubelet registers it: the controller pushes only to a Node's own address
    await createNode(env, NODE, { storage: 'throttled' });
    agent = new FakeAgent(env, NODE);
    agent.throttle = 2;
    await agent.start();
    const kc = new KubeClient(loadKubeconfig(env.kubeconfigController), { maxSockets: 32 });
    controller = new Controller({ client: kc, namespace: ENVTEST_NAMESPACE, identity: 'hostile-429', log: silentLogger(), resyncMs: 60_000 });
    await controller.start();
  }, { timeout: ENVTEST_BUILD_TIMEOUT_MS });

  after(async () => {
    await controller?.stop({ release: false }).catch(() => undefined);
    await agent?.stop().catch(() => undefined);
    await env?.stop();
  });

  it('two 429 answers, then the push is applied without any change to the agent or the resource', async () => {
    const r = await env.request('POST', '/apis/peripety.io/v1alpha1/storagebackends', {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'throttled' },
      spec: { backend: 'memory', filters: ['1 1 EQ'], nodeSelector: { matchLabels: { storage: 'throttled' } } },
    });
    assert.equal(r.status, 201, r.text);
    // well within the resync (60 s): only a retry brings it
    await agent.waitFor((a) => a.pushes.length > 0, 30_000, 'the push after two 429 answers');
    assert.equal(agent.throttled, 2);
  });

  it('a command answered 429 with retry-after: 1 is sent again and succeeds', async () => {
    agent.throttleCommands = 1;
    await env.kubectl(['annotate', 'sbe', 'throttled', 'peripety.io/command=restart', '--overwrite']);
    await agent.waitFor((a) => a.commands.length > 0, 30_000, 'the command after one 429 answer');
    assert.equal(agent.throttled, 3);
    assert.deepEqual(agent.commands.map((c) => c.path), ['/v1/backends/throttled:restart']);
  });
});
