// .github/workflows/ci.yaml, checked without GitHub: the jobs exist and do
// what docs/packaging.md says, every script a step runs exists in the
// repository and is executable, the versions it pins agree with the ones the
// repository pins elsewhere (Node in hack/run, helm in hack/helm-build.sh),
// and the kind matrix uses node images published for the kind it installs.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { repoRoot } from './dockerfile.ts';

interface Step { name?: string; uses?: string; run?: string; with?: Record<string, unknown>; env?: Record<string, string>; if?: string }
interface Job { 'runs-on': string; steps: Step[]; strategy?: { matrix?: Record<string, unknown[]> }; 'timeout-minutes'?: number }
interface Workflow { on: unknown; jobs: Record<string, Job> }

const FILE = '.github/workflows/ci.yaml';
const wf = parse(readFileSync(path.join(repoRoot, FILE), 'utf8')) as Workflow;

/**
 * Node images each kind release published (its release notes). A new kind
 * version needs its row: node images are built for a kind release, and kind
 * v0.32+ cannot `kind load` into older images or vice versa.
 */
const KIND_IMAGES: Record<string, string[]> = {
  'v0.33.0': ['v1.37.0', 'v1.36.4', 'v1.35.8', 'v1.34.11'],
};

const job = (name: string): Job => {
  const j = wf.jobs[name];
  assert.ok(j, `${FILE} has no job ${name}`);
  return j;
};
const runs = (j: Job): string => j.steps.map((s) => s.run ?? '').join('\n');
const uses = (j: Job, action: string): Step | undefined => j.steps.find((s) => s.uses?.startsWith(`${action}@`));

/** Repository paths a shell snippet runs: .ci/…, hack/… (not inside another word). */
function scriptsIn(run: string): string[] {
  return [...run.matchAll(/(?:^|[\s"'(=])((?:\.\/)?(?:\.ci|hack)\/[\w./-]+)/gm)].map((m) => m[1]!.replace(/^\.\//, ''));
}

describe(`${FILE}`, () => {
  it('has the jobs test, chart-lint and e2e-kind, each on a pinned Ubuntu with a time limit', () => {
    for (const name of ['test', 'chart-lint', 'e2e-kind']) {
      const j = job(name);
      assert.match(j['runs-on'], /^ubuntu-\d+\.\d+$/, `${name}: runs-on ${j['runs-on']}`);
      assert.ok((j['timeout-minutes'] ?? 0) > 0, `${name}: no timeout-minutes`);
      assert.ok(j.steps.length > 0 && j.steps[0]!.uses?.startsWith('actions/checkout@'), `${name}: the first step is not a checkout`);
    }
  });

  it('every action is pinned to a version, not a branch', () => {
    for (const [name, j] of Object.entries(wf.jobs)) {
      for (const s of j.steps.filter((x) => x.uses)) assert.match(s.uses!, /^[\w.-]+\/[\w.-]+@v\d+(\.\d+)*$/, `${name}: ${s.uses}`);
    }
  });

  it('every script a step runs exists and is executable', () => {
    const seen: string[] = [];
    for (const [name, j] of Object.entries(wf.jobs)) {
      for (const p of scriptsIn(runs(j))) {
        const abs = path.join(repoRoot, p);
        assert.ok(existsSync(abs), `${name}: runs ${p}, which does not exist`);
        // .ts/.mjs files are run by node; everything else is run directly
        if (!/\.(ts|mjs|js)$/.test(p)) assert.ok(statSync(abs).mode & 0o111, `${name}: runs ${p}, which is not executable`);
        seen.push(p);
      }
    }
    for (const want of ['.ci/run', 'hack/e2e-kind.sh', 'hack/run', 'hack/gen-chart.ts']) assert.ok(seen.includes(want), `no job runs ${want}`);
    assert.deepEqual(scriptsIn('sudo -E env "PATH=$PATH" .ci/run\nHELM=x hack/run node hack/gen-chart.ts --check'), ['.ci/run', 'hack/run', 'hack/gen-chart.ts']);
  });

  it('test: runs .ci/run as root, with Node of hack/run, Go for the envtest build, and the tool cache keyed on the scripts that pin the tools', () => {
    const j = job('test');
    assert.match(runs(j), /^sudo -E .*\.ci\/run$/m, 'the real-kernel tests need root');
    const nodeVersion = /^NODE_VERSION=(\S+)/m.exec(readFileSync(path.join(repoRoot, 'hack/run'), 'utf8'))?.[1];
    assert.equal(String(uses(j, 'actions/setup-node')?.with?.['node-version']), nodeVersion);
    assert.ok(uses(j, 'actions/setup-go'), 'no Go: hack/envtest-build.sh builds kube-apiserver, etcd and kubectl');
    const cache = uses(j, 'actions/cache');
    assert.ok(cache, 'no cache step');
    assert.match(String(cache.with?.path), /~\/\.cache\/peripety\//);
    const key = String(cache.with?.key);
    const hashed = [...key.matchAll(/'([^']+)'/g)].map((m) => m[1]!);
    for (const f of ['hack/envtest-build.sh', 'hack/helm-build.sh', 'hack/lib/kubernetes-module.sh', 'hack/node-build.sh']) assert.ok(hashed.includes(f), `the cache key does not hash ${f}`);
    for (const f of hashed) assert.ok(existsSync(path.join(repoRoot, f)), `the cache key hashes ${f}, which does not exist`);
  });

  it('chart-lint: helm of hack/helm-build.sh\'s version, lint with every ci/ values file, gen-chart --check', () => {
    const j = job('chart-lint');
    const helmVersion = /^HELM_VERSION=(\S+)/m.exec(readFileSync(path.join(repoRoot, 'hack/helm-build.sh'), 'utf8'))?.[1];
    assert.equal(String(uses(j, 'azure/setup-helm')?.with?.version), helmVersion);
    assert.match(runs(j), /^helm lint --strict charts\/peripety$/m);
    assert.match(runs(j), /for f in charts\/peripety\/ci\/\*\.yaml; do[\s\S]*helm lint --strict charts\/peripety --values "\$f"/);
    assert.match(runs(j), /hack\/run node hack\/gen-chart\.ts --check/);
  });

  it('e2e-kind: two Kubernetes minors, node images kind publishes, artifacts uploaded on failure', () => {
    const j = job('e2e-kind');
    const versions = (j.strategy?.matrix?.k8s ?? []).map(String);
    assert.equal(versions.length, 2, `matrix k8s: ${versions.join(', ')}`);
    const minors = new Set(versions.map((v) => /^v1\.(\d+)\.\d+$/.exec(v)?.[1]));
    assert.equal(minors.size, 2, 'two different Kubernetes minors');
    assert.ok(!minors.has(undefined), `versions must be vX.Y.Z tags: ${versions.join(', ')}`);
    const install = j.steps.find((s) => /go install "?sigs\.k8s\.io\/kind@/.test(s.run ?? ''));
    assert.ok(install, 'kind is not installed (go install sigs.k8s.io/kind@…)');
    const kindVersion = install.env?.KIND_VERSION ?? /sigs\.k8s\.io\/kind@(v[\d.]+)/.exec(install.run!)?.[1];
    assert.ok(kindVersion && KIND_IMAGES[kindVersion], `kind ${kindVersion}: add its published node images to KIND_IMAGES (from its release notes)`);
    for (const v of versions) assert.ok(KIND_IMAGES[kindVersion].includes(v), `kindest/node:${v} was not published with kind ${kindVersion}`);
    const e2e = j.steps.find((s) => /hack\/e2e-kind\.sh/.test(s.run ?? ''));
    assert.ok(e2e, 'hack/e2e-kind.sh is not run');
    assert.equal(e2e.env?.KIND_NODE_IMAGE, 'kindest/node:${{ matrix.k8s }}');
    const upload = uses(j, 'actions/upload-artifact');
    assert.ok(upload, 'no artifact upload');
    assert.equal(upload.if, 'failure()');
    assert.equal(String(upload.with?.path), e2e.env?.ARTIFACTS, 'the upload does not take the directory the script writes');
    assert.match(String(upload.with?.name), /\$\{\{ matrix\.k8s \}\}/, 'one artifact name per matrix entry');
    for (const tool of ['azure/setup-helm', 'azure/setup-kubectl']) assert.ok(uses(j, tool), `no ${tool}`);
    // the script's own default (for a run by hand) is one of them
    const scriptDefault = /^KIND_NODE_IMAGE=\$\{KIND_NODE_IMAGE:-kindest\/node:(v[\d.]+)\}$/m.exec(readFileSync(path.join(repoRoot, 'hack/e2e-kind.sh'), 'utf8'))?.[1];
    assert.ok(scriptDefault && versions.includes(scriptDefault), `hack/e2e-kind.sh's default node image ${scriptDefault} is not in the matrix`);
  });
});
