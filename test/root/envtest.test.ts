// The envtest-style harness against a real kube-apiserver + etcd (built from
// their Go modules by hack/envtest-build.sh; no mocked API server).
//
// Root is not needed. The first run on a machine builds the binaries inside
// the `before` hook (about half an hour on 2 cores, see docs/envtest.md);
// after that the whole file takes well under a minute.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AGENT_AUDIENCE, ENVTEST_BUILD_TIMEOUT_MS, ENVTEST_NAMESPACE, type Envtest, startEnvtest } from '../helpers/envtest.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const repoCrds = existsSync(path.join(repoRoot, 'crds'))
  ? readdirSync(path.join(repoRoot, 'crds')).filter((f) => /\.ya?ml$/.test(f))
  : [];

// Used only when crds/ has no YAML yet: proves the install path on a CRD of our own.
const OWN_CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: envtestprobes.test.peripety.io
spec:
  group: test.peripety.io
  scope: Namespaced
  names: { plural: envtestprobes, singular: envtestprobe, kind: EnvtestProbe, listKind: EnvtestProbeList }
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              device: { type: string }
              threshold: { type: integer, minimum: 0 }
            required: [device]
`;

interface TokenReview {
  status?: { authenticated?: boolean; audiences?: string[]; error?: string; user?: { username?: string; groups?: string[] } };
}
interface Condition { type: string; status: string; reason?: string; message?: string }

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, maxBuffer: 16 << 20, timeout: 180_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

describe('envtest: a real kube-apiserver for tests', () => {
  let env: Envtest;
  let ownCrdDir: string | undefined;

  before(async () => {
    let crdsDir: string | undefined;
    if (repoCrds.length === 0) {
      ownCrdDir = await mkdtemp(path.join(os.tmpdir(), 'peripety-envtest-crd-'));
      await writeFile(path.join(ownCrdDir, 'envtestprobe.yaml'), OWN_CRD);
      crdsDir = ownCrdDir;
    }
    env = await startEnvtest(crdsDir ? { crdsDir } : {});
  }, { timeout: ENVTEST_BUILD_TIMEOUT_MS });

  after(async () => {
    await env?.stop();
    if (ownCrdDir) await rm(ownCrdDir, { recursive: true, force: true });
  });

  it('starts: /readyz is ok and /version is the pinned kube-apiserver', async (t) => {
    t.diagnostic(`binaries ${env.binDir}; timings ms ${JSON.stringify(env.timings)}`);
    const ready = await env.request('GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.text, 'ok');
    const v = await env.request<{ gitVersion: string }>('GET', '/version');
    assert.equal(v.status, 200);
    assert.match(v.body.gitVersion, /^v1\.\d+\.\d+/);
    t.diagnostic(`kube-apiserver ${v.body.gitVersion}`);
    assert.match(env.server, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(env.caData, /BEGIN CERTIFICATE/);
  });

  it('the admin kubeconfig creates a ConfigMap (kubectl) that the API returns', async () => {
    await env.kubectl(['create', 'configmap', 'probe', '-n', 'default', '--from-literal=disk=sda']);
    const r = await env.request<{ data?: Record<string, string> }>('GET', '/api/v1/namespaces/default/configmaps/probe');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data, { disk: 'sda' });
    const who = JSON.parse(await env.kubectl(['auth', 'whoami', '-o', 'json'])) as { status: { userInfo: { username: string; groups: string[] } } };
    assert.equal(who.status.userInfo.username, 'peripety-envtest-admin');
    assert.ok(who.status.userInfo.groups.includes('system:masters'));
  });

  it('controller and agent kubeconfigs are ServiceAccount identities, held to RBAC', async () => {
    for (const [kc, sa] of [[env.kubeconfigController, 'peripety-controller'], [env.kubeconfigAgent, 'peripety-agent']] as const) {
      const who = JSON.parse(await env.kubectl(['auth', 'whoami', '-o', 'json'], { kubeconfig: kc })) as { status: { userInfo: { username: string } } };
      assert.equal(who.status.userInfo.username, `system:serviceaccount:${ENVTEST_NAMESPACE}:${sa}`);
      const denied = await env.request('POST', `/api/v1/namespaces/${ENVTEST_NAMESPACE}/configmaps`,
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `from-${sa}` } }, { kubeconfig: kc });
      assert.equal(denied.status, 403, `${sa} has no RBAC grant yet: ${denied.text}`);
    }
    const alice = await env.kubeconfigFor({ user: 'alice', groups: ['storage-admins'] });
    const who = JSON.parse(await env.kubectl(['auth', 'whoami', '-o', 'json'], { kubeconfig: alice })) as { status: { userInfo: { username: string; groups: string[] } } };
    assert.equal(who.status.userInfo.username, 'alice');
    assert.ok(who.status.userInfo.groups.includes('storage-admins'));
  });

  it(`TokenReview: a ServiceAccount token for audience ${AGENT_AUDIENCE} authenticates; other audiences do not`, async () => {
    const review = async (token: string, audiences: string[], kubeconfig?: string): Promise<TokenReview['status']> => {
      const r = await env.request<TokenReview>('POST', '/apis/authentication.k8s.io/v1/tokenreviews',
        { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } }, kubeconfig ? { kubeconfig } : {});
      assert.equal(r.status, 201, r.text);
      return r.body.status;
    };
    const ns = 'envtest-tokens';
    const sa = 'node-a-agent';
    const agentToken = await env.token(ns, sa, { audiences: [AGENT_AUDIENCE], expirationSeconds: 600 });

    const ok = await review(agentToken, [AGENT_AUDIENCE]);
    assert.equal(ok?.authenticated, true, JSON.stringify(ok));
    assert.equal(ok?.user?.username, `system:serviceaccount:${ns}:${sa}`);
    assert.deepEqual(ok?.audiences, [AGENT_AUDIENCE]);
    assert.ok(ok?.user?.groups?.includes(`system:serviceaccounts:${ns}`));

    const wrongAudience = await review(agentToken, ['someone-else']);
    assert.equal(wrongAudience?.authenticated ?? false, false, JSON.stringify(wrongAudience));

    const otherToken = await env.token(ns, sa, { audiences: ['someone-else'], expirationSeconds: 600 });
    const otherForAgent = await review(otherToken, [AGENT_AUDIENCE]);
    assert.equal(otherForAgent?.authenticated ?? false, false, JSON.stringify(otherForAgent));

    const garbage = await review('not-a-token', [AGENT_AUDIENCE]);
    assert.equal(garbage?.authenticated ?? false, false);

    // The controller does its reviews as itself, with system:auth-delegator.
    const bind = await env.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'envtest-controller-auth-delegator' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: 'peripety-controller', namespace: ENVTEST_NAMESPACE }],
    });
    assert.equal(bind.status, 201, bind.text);
    let asController: TokenReview['status'];
    for (let i = 0; i < 50; i++) { // RBAC changes reach the authorizer's cache quickly, but not synchronously
      const r = await env.request<TokenReview>('POST', '/apis/authentication.k8s.io/v1/tokenreviews',
        { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: agentToken, audiences: [AGENT_AUDIENCE] } }, { kubeconfig: env.kubeconfigController });
      if (r.status === 201) {
        asController = r.body.status;
        break;
      }
      assert.equal(r.status, 403, r.text);
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(asController?.authenticated, true, JSON.stringify(asController));
  });

  it('CRDs are installed, Established, and structural', async (t) => {
    if (repoCrds.length === 0) {
      t.diagnostic('NOTE: crds/ has no *.yaml yet — installed the test\'s own CRD (envtestprobes.test.peripety.io) through the same path');
    } else {
      t.diagnostic(`crds/: ${repoCrds.join(', ')}`);
    }
    assert.ok(env.crds.length > 0, 'at least one CRD was applied');
    for (const name of env.crds) {
      const r = await env.request<{ status?: { conditions?: Condition[] } }>('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      assert.equal(r.status, 200, r.text);
      const conds = r.body.status?.conditions ?? [];
      assert.ok(conds.some((c) => c.type === 'Established' && c.status === 'True'), `${name} Established: ${JSON.stringify(conds)}`);
      const nonStructural = conds.find((c) => c.type === 'NonStructuralSchema' && c.status === 'True');
      assert.equal(nonStructural, undefined, `${name}: ${nonStructural?.message}`);
      t.diagnostic(`${name}: Established, structural`);
    }
    if (repoCrds.length === 0) {
      // The API for the new kind is served and validates.
      const base = '/apis/test.peripety.io/v1alpha1/namespaces/default/envtestprobes';
      const good = await env.request('POST', base, { apiVersion: 'test.peripety.io/v1alpha1', kind: 'EnvtestProbe', metadata: { name: 'p1' }, spec: { device: 'sda', threshold: 3 } });
      assert.equal(good.status, 201, good.text);
      const bad = await env.request('POST', base, { apiVersion: 'test.peripety.io/v1alpha1', kind: 'EnvtestProbe', metadata: { name: 'p2' }, spec: { threshold: -1 } });
      assert.equal(bad.status, 422, bad.text);
    }
  });

  it('hack/envtest.sh start prints KUBECONFIG and PATH for the built kubectl; stop ends it', async (t) => {
    const state = await mkdtemp(path.join(os.tmpdir(), 'peripety-envtest-sh-'));
    const shEnv = { ...process.env, PERIPETY_ENVTEST_DIR: state };
    const script = path.join(repoRoot, 'hack/envtest.sh');
    try {
      const t0 = Date.now();
      const { stdout } = await run('bash', [script, 'start'], shEnv);
      t.diagnostic(`hack/envtest.sh start took ${Date.now() - t0} ms`);
      const kubeconfig = /^export KUBECONFIG=(.+)$/m.exec(stdout)?.[1];
      const bindir = /^export PATH=(.+):\$PATH$/m.exec(stdout)?.[1];
      assert.ok(kubeconfig && bindir, stdout);
      assert.equal(bindir, env.binDir);
      const kenv = { ...process.env, KUBECONFIG: kubeconfig, PATH: `${bindir}:${process.env.PATH}` };
      assert.equal((await run('kubectl', ['get', '--raw', '/readyz'], kenv)).stdout, 'ok');
      const again = await run('bash', [script, 'env'], shEnv);
      assert.equal(again.stdout, stdout);
    } finally {
      await run('bash', [script, 'stop'], shEnv);
    }
    assert.equal(existsSync(state), false, 'stop removes the state dir');
  });

  it('stop() ends the servers and removes the temp dir', async () => {
    const other = await startEnvtest({ crdsDir: false });
    assert.equal((await other.request('GET', '/readyz')).text, 'ok');
    await other.stop();
    assert.equal(existsSync(other.dir), false);
    await assert.rejects(other.request('GET', '/readyz'), /ECONNREFUSED/);
    await other.stop(); // idempotent
  });
});
