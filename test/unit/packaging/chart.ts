// Rendering the Helm chart for the packaging tests (test/k8s/chart-*.test.ts,
// test/k8s/readme-install.test.ts): the helm binary of hack/helm-build.sh
// (built from its Go module and cached outside the repository; $HELM wins),
// the values sets the chart is tested with, and `helm template` output as
// objects.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from './dockerfile.ts';

export const CHART_DIR = path.join(repoRoot, 'charts/peripety');
export const CHART_CRDS = path.join(CHART_DIR, 'crds');
export const RELEASE = 'peripety';
export const NAMESPACE = 'peripety-system';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

export interface ValuesSet {
  /** e.g. "default", "ci/monitoring-values.yaml" */
  name: string;
  /** extra helm arguments (--values FILE, --set …) */
  args: string[];
}

/** Optional objects the defaults leave off, switched on by value name: the chart's values.yaml must have each. */
export const EVERYTHING_ON = [
  'monitoring.serviceMonitor.enabled=true',
  'monitoring.podMonitor.enabled=true',
  'monitoring.prometheusRule.enabled=true',
  'dashboard.enabled=true',
  'agent.secretNames={pg-connection}',
];

/** Default values, each charts/peripety/ci/*.yaml, and every optional object on. */
export function valuesSets(): ValuesSet[] {
  const ciDir = path.join(CHART_DIR, 'ci');
  const ci = existsSync(ciDir) ? readdirSync(ciDir).filter((f) => /\.ya?ml$/.test(f)).sort() : [];
  return [
    { name: 'default', args: [] },
    ...ci.map((f) => ({ name: `ci/${f}`, args: ['--values', path.join(ciDir, f)] })),
    { name: 'every optional object', args: EVERYTHING_ON.flatMap((s) => ['--set', s]) },
  ];
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd ?? repoRoot, env: opts.env ?? process.env, maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

let helmPromise: Promise<string> | undefined;
/** The helm binary: $HELM, or hack/helm-build.sh's cached build (built on first use: minutes). */
export function helmBinary(): Promise<string> {
  helmPromise ??= run('bash', [path.join(repoRoot, 'hack/helm-build.sh')], { timeoutMs: 30 * 60_000 }).then(({ stdout }) => {
    const bin = stdout.trim().split('\n').pop() ?? '';
    if (!bin || !existsSync(bin)) throw new Error(`hack/helm-build.sh printed no helm binary: ${JSON.stringify(stdout)}`);
    return bin;
  });
  return helmPromise;
}

let monitoringPromise: Promise<string> | undefined;
/** The Prometheus Operator CRDs directory of hack/monitoring-crds.sh (fetched from the Go module proxy on first use). */
export function monitoringCrdsDir(): Promise<string> {
  monitoringPromise ??= run('bash', [path.join(repoRoot, 'hack/monitoring-crds.sh')], { timeoutMs: 10 * 60_000 }).then(({ stdout }) => stdout.trim().split('\n').pop() ?? '');
  return monitoringPromise;
}

/** `helm template` of the chart (release peripety in peripety-system) as objects, in the order helm prints them. */
export async function renderChart(helm: string, args: string[], opts: { includeCrds?: boolean } = {}): Promise<KubeObject[]> {
  const { stdout } = await run(helm, ['template', RELEASE, CHART_DIR, '--namespace', NAMESPACE, ...(opts.includeCrds ? ['--include-crds'] : []), ...args]);
  return parseObjects(stdout, 'helm template');
}

/** Every non-empty document of a multi-document YAML text, checked to be a Kubernetes object. */
export function parseObjects(text: string, what: string): KubeObject[] {
  const out: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${what}: YAML error: ${doc.errors[0]!.message}`);
    const o: unknown = doc.toJS();
    if (o === null || o === undefined) continue;
    const obj = o as Partial<KubeObject>;
    if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string' || typeof obj.metadata?.name !== 'string') {
      throw new Error(`${what}: a document is not a Kubernetes object: ${JSON.stringify(o).slice(0, 200)}`);
    }
    out.push(obj as KubeObject);
  }
  return out;
}

export const objectId = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;

/** The kinds the Prometheus Operator's CRDs define. */
export const MONITORING_GROUP = 'monitoring.coreos.com';
export const isMonitoring = (o: KubeObject): boolean => o.apiVersion.startsWith(`${MONITORING_GROUP}/`);
