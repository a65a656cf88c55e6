// Helm for the chart tests: the binary from hack/helm-build.sh (built from its
// Go module on first use, minutes; cached outside the repository) and
// `helm template` output as parsed objects.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ManifestObject } from '../helpers/manifests.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const CHART = path.join(ROOT, 'charts/peripety');
/** The before() hook's timeout: the first helm build on a 2-core machine takes 1-3 minutes. */
export const HELM_BUILD_TIMEOUT_MS = 15 * 60_000;
/** Values files, one per feature (charts/peripety/ci/, the chart-testing convention). */
export const CI_FILES = readdirSync(path.join(CHART, 'ci')).filter((f) => f.endsWith('.yaml')).sort();

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: ROOT, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`${path.basename(cmd)} ${args.join(' ')}: ${err.message}\n${stderr}`));
        return;
      }
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

let binary: Promise<string> | undefined;

/** The helm binary's path ($HELM, or hack/helm-build.sh, which builds it once). */
export function helmBinary(): Promise<string> {
  binary ??= (async () => {
    if (process.env.HELM) return process.env.HELM;
    const r = await run('bash', [path.join(ROOT, 'hack/helm-build.sh')], HELM_BUILD_TIMEOUT_MS);
    const bin = r.stdout.trim().split('\n').pop() ?? '';
    if (r.code !== 0 || !bin) throw new Error(`hack/helm-build.sh failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
    return bin;
  })();
  return binary;
}

export async function helm(args: string[]): Promise<Run> {
  return run(await helmBinary(), args, 120_000);
}

export interface TemplateOptions {
  release?: string;
  namespace?: string;
  /** values files, relative to the repository root or absolute */
  files?: string[];
  /** --set arguments */
  set?: string[];
}

function templateArgs(o: TemplateOptions): string[] {
  return [
    'template', o.release ?? 'peripety', CHART, '--namespace', o.namespace ?? 'peripety-system',
    ...(o.files ?? []).flatMap((f) => ['-f', f]),
    ...(o.set ?? []).flatMap((s) => ['--set', s]),
  ];
}

/** `helm template` as objects; throws with helm's message when it fails. */
export async function template(o: TemplateOptions = {}): Promise<ManifestObject[]> {
  const r = await helm(templateArgs(o));
  if (r.code !== 0) throw new Error(`helm template failed (exit ${r.code}): ${r.stderr}`);
  return parseObjects(r.stdout);
}

/** `helm template` that is expected to fail: its exit code and stderr. */
export async function templateRun(o: TemplateOptions = {}): Promise<Run> {
  return helm(templateArgs(o));
}

export function parseObjects(text: string): ManifestObject[] {
  const out: ManifestObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]!.message}`);
    const obj = doc.toJS() as ManifestObject | null;
    if (obj !== null) out.push(obj);
  }
  return out;
}

/** The one object of a kind (and name, when given); throws when there is not exactly one. */
export function one(objs: readonly ManifestObject[], kind: string, name?: string): ManifestObject {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}: ${objs.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found[0]!;
}
