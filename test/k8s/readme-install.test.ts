// The README's "Install on Kubernetes" section, run as written against real
// API servers (test/helpers/envtest.ts; no kubelet, so nothing is scheduled:
// what is checked is that the commands work and the objects exist):
//
// - the no-Helm path: the fenced block with `kubectl apply` runs line by line
//   in bash from the repository root, with the pinned kubectl first on PATH
//   and KUBECONFIG pointing at a server that has NO CRDs yet (so the README's
//   own CRD step, and its wait, are what make the custom resources
//   applicable); then the CRDs are Established and every object of
//   manifests/*.yaml exists.
// - the Helm path: the README's `helm install` line with `--dry-run=server`
//   added (a real install would wait for nothing but needs no more; a server
//   dry-run renders, maps every kind through the server's discovery, checks
//   for conflicting objects and validates against the server's OpenAPI) on a
//   second server with the chart's CRDs. The release's manifest must hold
//   every object `helm template` renders.
//
// One difference from a fresh cluster remains: envtest creates the
// peripety-system namespace for its built-in ServiceAccounts (which are
// deleted first: a fresh cluster has none, and helm refuses to adopt objects
// it did not create), so the manifests' Namespace object is applied onto an
// existing one; a static check below makes sure manifests/ creates it before
// anything lives in it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ENVTEST_BUILD_TIMEOUT_MS, type Envtest, startEnvtest } from '../helpers/envtest.ts';
import { CHART_CRDS, helmBinary, type KubeObject, NAMESPACE, objectId, parseObjects, renderChart } from '../unit/packaging/chart.ts';
import { repoRoot } from '../unit/packaging/dockerfile.ts';

interface Block { lang: string; lines: string[] }

/** The fenced code blocks of a Markdown section (from its `## ` heading to the next one). */
export function sectionBlocks(markdown: string, heading: string): Block[] {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  if (start < 0) return [];
  const rest = markdown.slice(start + 1);
  const end = rest.slice(3).search(/\n## /);
  const section = end < 0 ? rest : rest.slice(0, end + 3);
  const blocks: Block[] = [];
  for (const m of section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)) blocks.push({ lang: m[1] ?? '', lines: m[2]!.split('\n').filter((l) => l.trim() !== '') });
  return blocks;
}

const README = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
const blocks = sectionBlocks(README, 'Install on Kubernetes');
const kubectlBlock = blocks.find((b) => b.lines.some((l) => /^kubectl apply\b/.test(l)));
const helmLine = blocks.flatMap((b) => b.lines).find((l) => /^helm install\b/.test(l));

/**
 * The YAML files the block's `kubectl apply` lines apply, in order: each
 * `-f PATH` a file, or a directory's *.yaml/*.yml in name order (not
 * recursive, as kubectl without -R).
 */
function appliedFiles(lines: string[]): string[] {
  const files: string[] = [];
  for (const line of lines.filter((l) => /^kubectl apply\b/.test(l))) {
    for (const m of line.matchAll(/(?:^|\s)(?:-f|--filename)[ =](\S+)/g)) {
      const p = path.join(repoRoot, m[1]!);
      if (statSync(p).isDirectory()) files.push(...readdirSync(p).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => path.join(p, f)));
      else files.push(p);
    }
  }
  return files;
}

/** Every YAML file under a directory, recursively, but examples/. */
function shippedYaml(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.ya?ml$/.test(f) && !f.split(path.sep).includes('examples'))
    .map((f) => path.join(dir, f)).sort();
}

function bash(script: string, env: NodeJS.ProcessEnv): { status: number | null; out: string } {
  const r = spawnSync('bash', ['-c', `set -euo pipefail\n${script}`], { cwd: repoRoot, env, encoding: 'utf8', timeout: 180_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('README: Install on Kubernetes, run as written against a real API server', { timeout: 2 * ENVTEST_BUILD_TIMEOUT_MS + 300_000 }, () => {
  const envs: Envtest[] = [];
  let helm: string;
  let helmHome: string;
  after(async () => {
    for (const e of envs) await e.stop();
    if (helmHome) rmSync(helmHome, { recursive: true, force: true });
  });
  before(async () => {
    helm = await helmBinary();
    helmHome = mkdtempSync(path.join(os.tmpdir(), 'prpt-helm-home-'));
  }, { timeout: ENVTEST_BUILD_TIMEOUT_MS });

  /** Remove envtest's own ServiceAccounts in peripety-system (a fresh cluster has none; helm would refuse to adopt them). */
  const withoutEnvtestServiceAccounts = async (env: Envtest): Promise<void> => {
    for (const sa of ['peripety-agent', 'peripety-controller']) {
      const r = await env.request('DELETE', `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/${sa}`);
      assert.ok(r.status === 200 || r.status === 404, `delete ServiceAccount ${sa}: ${r.status} ${r.text}`);
    }
  };

  const toolEnv = (env: Envtest): NodeJS.ProcessEnv => ({
    ...process.env,
    // the pinned kubectl and helm come first: the README says `kubectl`, `helm`
    PATH: `${env.binDir}:${path.dirname(helm)}:${process.env.PATH ?? ''}`,
    KUBECONFIG: env.kubeconfigAdmin,
    HELM_CACHE_HOME: path.join(helmHome, 'cache'),
    HELM_CONFIG_HOME: path.join(helmHome, 'config'),
    HELM_DATA_HOME: path.join(helmHome, 'data'),
  });

  it('the section has the Helm command and the kubectl commands', () => {
    assert.ok(blocks.length > 0, 'README.md has no "## Install on Kubernetes" section with code blocks');
    assert.ok(helmLine, 'no `helm install` line');
    assert.match(helmLine, /^helm install peripety charts\/peripety -n peripety-system --create-namespace\b/);
    assert.ok(kubectlBlock, 'no block with `kubectl apply`');
    for (const l of kubectlBlock.lines) assert.match(l, /^kubectl\s/, `a line of the kubectl block is not a kubectl command: ${l}`);
    const applied = appliedFiles(kubectlBlock.lines).map((f) => path.relative(repoRoot, f));
    const crds = readdirSync(path.join(repoRoot, 'crds')).filter((f) => f.endsWith('.yaml')).map((f) => `crds/${f}`);
    for (const f of crds) assert.ok(applied.includes(f), `the block does not apply ${f}`);
    // everything manifests/ ships (but the examples) is applied by the block
    const shipped = shippedYaml(path.join(repoRoot, 'manifests')).map((f) => path.relative(repoRoot, f));
    assert.ok(shipped.length > 0);
    assert.deepEqual(shipped.filter((f) => !applied.includes(f)), [], 'files of manifests/ the README never applies');
  });

  it('the block creates every namespace before anything lives in it (kubectl applies in -f and name order)', () => {
    const created = new Set(['default', 'kube-system']);
    const problems: string[] = [];
    for (const f of appliedFiles(kubectlBlock!.lines)) {
      for (const o of parseObjects(readFileSync(f, 'utf8'), f)) {
        if (o.kind === 'Namespace') created.add(o.metadata.name);
        else if (o.metadata.namespace && !created.has(o.metadata.namespace)) problems.push(`${path.relative(repoRoot, f)}: ${objectId(o)} comes before its Namespace`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('without Helm: the kubectl block, line by line, on a server with no CRDs', async () => {
    const env = await startEnvtest({ crdsDir: false });
    envs.push(env);
    await withoutEnvtestServiceAccounts(env);
    assert.deepEqual(env.crds, []);
    const before = await env.request<{ items: unknown[] }>('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions');
    assert.equal(before.body.items.length, 0, 'the server already has CRDs');
    for (const line of kubectlBlock!.lines) {
      const t0 = Date.now();
      const r = bash(line, toolEnv(env));
      console.log(`# $ ${line}   (${Date.now() - t0} ms)\n${r.out.trimEnd().split('\n').map((l) => `#   ${l}`).join('\n')}`);
      assert.equal(r.status, 0, `README command failed: ${line}\n${r.out}`);
    }
    // the CRDs are Established
    const crdNames = readdirSync(path.join(repoRoot, 'crds')).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, ''));
    assert.ok(crdNames.length >= 2);
    for (const name of crdNames) {
      const r = await env.request<{ status?: { conditions?: { type: string; status: string }[] } }>('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      assert.equal(r.status, 200, `CRD ${name}: ${r.text}`);
      assert.equal(r.body.status?.conditions?.find((c) => c.type === 'Established')?.status, 'True', `CRD ${name} not Established`);
    }
    // every object of manifests/ (but the examples) exists
    const files = shippedYaml(path.join(repoRoot, 'manifests'));
    const want: KubeObject[] = files.flatMap((f) => parseObjects(readFileSync(f, 'utf8'), f));
    for (const k of ['Namespace', 'DaemonSet', 'Deployment', 'StorageEventPlugin', 'StorageBackend']) assert.ok(want.some((o) => o.kind === k), `manifests/ has no ${k}`);
    const got = new Set((await env.kubectl(['get', ...files.flatMap((f) => ['-f', f]), '-o', 'jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}{"\\n"}{end}'])).trim().split('\n'));
    const missing = want.filter((o) => !got.has(`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`)).map(objectId);
    assert.deepEqual(missing, [], 'objects of manifests/ the README path did not create');
    console.log(`# the README's kubectl path created ${crdNames.length} CRDs (Established) and all ${want.length} objects of manifests/ (${[...new Set(want.map((o) => o.kind))].join(', ')})`);
  });

  it('with Helm: the README\'s helm install, as a server-side dry run', async () => {
    const env = await startEnvtest({ crdsDir: CHART_CRDS });
    envs.push(env);
    await withoutEnvtestServiceAccounts(env);
    const line = `${helmLine!} --dry-run=server`;
    const t0 = Date.now();
    const r = bash(line, toolEnv(env));
    assert.equal(r.status, 0, `${line}\n${r.out}`);
    assert.match(r.out, /^STATUS: pending-install$/m);
    assert.match(r.out, new RegExp(`^NAMESPACE: ${NAMESPACE}$`, 'm'));
    const manifest = r.out.slice(r.out.indexOf('MANIFEST:') + 'MANIFEST:'.length, r.out.search(/^NOTES:$/m) > 0 ? r.out.search(/^NOTES:$/m) : undefined);
    const inRelease = new Set(parseObjects(manifest, 'helm install --dry-run=server').map(objectId));
    const rendered = await renderChart(helm, []);
    assert.deepEqual(rendered.map(objectId).filter((id) => !inRelease.has(id)), [], 'objects of helm template missing from the dry-run release');
    console.log(`# $ ${line}: ${inRelease.size} objects in the release manifest (${Date.now() - t0} ms)`);
    // nothing was installed
    const secrets = await env.request<{ items: unknown[] }>('GET', `/api/v1/namespaces/${NAMESPACE}/secrets?labelSelector=owner%3Dhelm`);
    assert.equal(secrets.body.items.length, 0, 'a dry run stored a release');
  });
});
