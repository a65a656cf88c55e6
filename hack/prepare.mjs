// What the selected tests need, made ready BEFORE any test timer starts
// (hack/test.mjs calls prepare() first; `node hack/prepare.mjs` prepares
// everything the whole suite needs, e.g. to warm a machine or a CI cache).
//
// 1. As root: the Debian packages of the real-kernel tests (hack/ci-deps.sh,
//    idempotent, ≈0.1 s when everything is present). Not root: nothing is
//    installed; hack/test.mjs says loudly that the root tests will skip.
// 2. The tools built from Go modules and cached outside the repository
//    (${PERIPETY_CACHE:-~/.cache/peripety}), only those a selected test file
//    uses: the envtest binaries (hack/envtest-build.sh), helm
//    (hack/helm-build.sh), the Prometheus Operator CRDs
//    (hack/monitoring-crds.sh). The tests call the very same scripts, with the
//    same environment (PERIPETY_CACHE, KUBEBUILDER_ASSETS, TEST_ASSET_*, HELM,
//    MONITORING_CRDS_DIR), so prepare and tests agree on every path; by the
//    time a test asks, the script answers "cached" in milliseconds. A cold
//    build here used to happen inside a test's `before` hook, racing the
//    runner's per-test timeout. These tools need no root, but for the image
//    (hack/image.sh, root only: skipped here when not root).
//
// "A test file uses a tool" = the tool's script path appears in the file or in
// a test/ module it imports (transitively): test/helpers/envtest.ts names
// hack/envtest-build.sh, test/chart/helm.ts hack/helm-build.sh, and so on.
// A false positive costs one cached check; a miss only moves the build back
// into the test, as before.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(import.meta.dirname, '..');

/** The cached tools, in build order (one Go build at a time: the machines have 2 cores). */
export const TOOLS = [
  {
    what: 'envtest binaries (kube-apiserver, etcd, kubectl)',
    script: 'hack/envtest-build.sh',
    markers: ['hack/envtest-build.sh', 'hack/envtest.sh', 'hack/bin/kubectl'],
    cold: 'first run: ≈5–7 min on 2 cores, built from Go modules',
  },
  {
    what: 'helm',
    script: 'hack/helm-build.sh',
    markers: ['hack/helm-build.sh', 'hack/bin/helm'],
    cold: 'first run: ≈1–3 min on 2 cores, built from its Go module',
  },
  {
    what: 'the real node\'s binaries (kubelet, kube-proxy, kube-controller-manager, kube-scheduler, kubeadm, pause)',
    script: 'hack/node-build.sh',
    // hack/node.sh only: the node's binaries are for the tests that start a node (test/e2e);
    // a test that merely names the build script (the CI workflow's cache key) needs none
    markers: ['hack/node.sh'],
    cold: 'first run: ≈15–25 min on 2 cores, ≈3 min when the envtest build warmed the Go cache',
  },
  {
    what: 'Prometheus Operator CRDs',
    script: 'hack/monitoring-crds.sh',
    markers: ['hack/monitoring-crds.sh'],
    cold: 'first run: one ≈4 MB module from the Go module proxy',
  },
  {
    what: 'the peripety image (podman, local stand-ins of its base images)',
    script: 'hack/image.sh',
    markers: ['hack/image.sh'],
    cold: 'first run: ≈1–3 min, debootstrap + Node from the npm registry + podman build',
    // podman's rootful store and debootstrap: without root the tests that use it skip
    root: true,
  },
];

const say = (line) => console.error(`prepare: ${line}`);
const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/** The text of a test file and every test/ module it imports, transitively. */
function closureText(file, seen = new Set()) {
  const abs = path.resolve(root, file);
  if (seen.has(abs) || !existsSync(abs)) return '';
  seen.add(abs);
  const text = readFileSync(abs, 'utf8');
  let all = text;
  for (const m of text.matchAll(/(?:from|import\()\s*['"](\.{1,2}\/[^'"]+\.(?:ts|mjs|js))['"]/g)) {
    const dep = path.resolve(path.dirname(abs), m[1]);
    if (dep.startsWith(path.join(root, 'test') + path.sep)) all += closureText(dep, seen);
  }
  return all;
}

/** The tools the given test files use. */
export function toolsFor(files) {
  const texts = files.map((f) => closureText(f));
  return TOOLS.filter((t) => texts.some((text) => t.markers.some((m) => text.includes(m))));
}

/** Run hack/ci-deps.sh (root only); its own one-line summary is the progress line. */
function debianPackages() {
  say('Debian packages of the real-kernel tests (hack/ci-deps.sh)…');
  const r = spawnSync('bash', [path.join(root, 'hack/ci-deps.sh')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`hack/ci-deps.sh failed (exit ${r.status ?? r.signal})`);
}

/** Build (or find) one tool: "cached" or "building…" first, then the script's own progress, then the time. */
function buildTool(tool) {
  const script = path.join(root, tool.script);
  const check = spawnSync('bash', [script, '--check'], { cwd: root, encoding: 'utf8' });
  if (check.status === 0) {
    say(`${tool.what}: cached (${check.stdout.trim().split('\n').pop()})`);
    return Promise.resolve();
  }
  say(`building ${tool.what} (${tool.cold}; cached afterwards)…`);
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let partial = '';
    let downloads = 0;
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => {
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        // hundreds of these on a cold module cache: counted, not printed
        if (line.startsWith('go: downloading')) downloads++;
        else if (line.trim() !== '') console.error(`  ${line}`);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const secs = Math.round((Date.now() - t0) / 1000);
      if (code !== 0) {
        reject(new Error(`${tool.script} failed (exit ${code}) after ${secs}s; its last lines are above`));
        return;
      }
      say(`${tool.what}: ready in ${secs}s${downloads ? ` (${downloads} Go modules downloaded)` : ''}: ${out.trim().split('\n').pop()}`);
      resolve();
    });
  });
}

/**
 * Make ready what `files` (repository-relative test files) need. Throws with
 * the failing step's message; the caller stops before running any test.
 */
export async function prepare(files) {
  const t0 = Date.now();
  if (isRoot()) debianPackages();
  const tools = toolsFor(files);
  for (const tool of tools) {
    if (tool.root && !isRoot()) say(`${tool.what}: not built (needs root; the tests that use it skip)`);
    else await buildTool(tool);
  }
  if (tools.length === 0) say('the selected tests need no cached tools');
  say(`done in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
}

// `node hack/prepare.mjs`: everything the whole suite needs.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const { globSync } = await import('node:fs');
  const files = globSync('test/**/*.test.ts', { cwd: root });
  prepare(files).catch((err) => {
    console.error(`prepare: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
