// A minimal Kubernetes API client over node:https for the few calls the agent
// makes (TokenReview, its registration Lease, Secrets, the k8s-events
// receiver's Events). Credentials from a kubeconfig
// (client certificate or bearer token; CA inline or as a file) or from the
// in-cluster ServiceAccount mount. The token file is re-read on every request
// (projected tokens rotate).
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { createRequire } from 'node:module';

// The YAML parser (≈14 MiB of code once loaded) only for a kubeconfig file:
// in-cluster agents and the k8s-events receiver never parse YAML, so it is
// required on first use instead of at import (issue 14).
const requireLazy = createRequire(import.meta.url);
function parseYaml(text: string): unknown {
  return (requireLazy('yaml') as typeof import('yaml')).parse(text);
}

interface KubeConfig {
  /** https://host:port, no trailing slash */
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** a fixed token, or a file re-read per request (in-cluster) */
  token?: string;
  tokenFile?: string;
  insecureSkipTLSVerify?: boolean;
}

export interface KubeResponse<T = unknown> {
  status: number;
  body: T;
  text: string;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const MAX_RESPONSE = 4 << 20;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function named(list: unknown, name: string, key: string): Obj {
  if (!Array.isArray(list)) throw new Error(`no ${key}s list`);
  const hit = list.find((x) => isObj(x) && x.name === name);
  if (!isObj(hit) || !isObj(hit[key])) throw new Error(`no ${key} named "${name}"`);
  return hit[key];
}

function dataOrFile(obj: Obj, dataKey: string, fileKey: string, base: string): Buffer | undefined {
  const d = obj[dataKey];
  if (typeof d === 'string' && d !== '') return Buffer.from(d, 'base64');
  const f = obj[fileKey];
  if (typeof f === 'string' && f !== '') return readFileSync(path.resolve(base, f));
  return undefined;
}

/** Parse a kubeconfig's text (its current context; `context` overrides). Relative file paths are resolved against `file`'s directory. */
export function parseKubeconfig(text: string, file = 'kubeconfig', context?: string): KubeConfig {
  try {
    const doc: unknown = parseYaml(text);
    if (!isObj(doc)) throw new Error('not a YAML mapping');
    const ctxName = context ?? doc['current-context'];
    let clusterName: unknown;
    let userName: unknown;
    if (typeof ctxName === 'string' && ctxName !== '') {
      const ctx = named(doc.contexts, ctxName, 'context');
      clusterName = ctx.cluster;
      userName = ctx.user;
    } else if (Array.isArray(doc.contexts) && doc.contexts.length === 1) {
      const ctx = (doc.contexts[0] as Obj).context as Obj;
      clusterName = ctx.cluster;
      userName = ctx.user;
    } else throw new Error('no current-context');
    if (typeof clusterName !== 'string') throw new Error('the context names no cluster');
    const cluster = named(doc.clusters, clusterName, 'cluster');
    const base = path.dirname(path.resolve(file));
    if (typeof cluster.server !== 'string' || !/^https?:\/\//.test(cluster.server)) throw new Error(`cluster "${clusterName}" has no server URL`);
    const cfg: KubeConfig = { server: cluster.server.replace(/\/+$/, '') };
    cfg.ca = dataOrFile(cluster, 'certificate-authority-data', 'certificate-authority', base);
    if (cluster['insecure-skip-tls-verify'] === true) cfg.insecureSkipTLSVerify = true;
    if (typeof userName === 'string' && userName !== '') {
      const user = named(doc.users, userName, 'user');
      cfg.cert = dataOrFile(user, 'client-certificate-data', 'client-certificate', base);
      cfg.key = dataOrFile(user, 'client-key-data', 'client-key', base);
      if (typeof user.token === 'string' && user.token !== '') cfg.token = user.token;
      else if (typeof user.tokenFile === 'string' && user.tokenFile !== '') cfg.tokenFile = path.resolve(base, user.tokenFile);
      if ((cfg.cert === undefined) !== (cfg.key === undefined)) throw new Error(`user "${userName}": a client certificate needs its key`);
      if (cfg.cert === undefined && cfg.token === undefined && cfg.tokenFile === undefined) throw new Error(`user "${userName}" has neither a token nor a client certificate`);
    }
    return cfg;
  } catch (err) {
    throw new Error(`kubeconfig ${file}: ${(err as Error).message}`);
  }
}

export function loadKubeconfig(file: string, context?: string): KubeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`kubeconfig ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseKubeconfig(text, file, context);
}

/** The in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT and the ServiceAccount mount). */
export function inClusterConfig(env: NodeJS.ProcessEnv = process.env, saDir = SA_DIR): KubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new Error('not in a cluster: KUBERNETES_SERVICE_HOST is not set');
  const h = host.includes(':') ? `[${host}]` : host;
  return { server: `https://${h}:${port}`, ca: readFileSync(path.join(saDir, 'ca.crt')), tokenFile: path.join(saDir, 'token') };
}

export class KubeClient {
  readonly config: KubeConfig;
  private readonly agent: https.Agent;
  private readonly timeoutMs: number;

  /** `timeoutMs`: the default per-request timeout (10 s) */
  constructor(config: KubeConfig, opts: { timeoutMs?: number } = {}) {
    this.config = config;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.agent = new https.Agent({
      keepAlive: true,
      maxSockets: 4,
      ca: config.ca,
      cert: config.cert,
      key: config.key,
      rejectUnauthorized: config.insecureSkipTLSVerify !== true,
    });
  }

  private bearer(): string | undefined {
    if (this.config.token) return this.config.token;
    if (this.config.tokenFile) return readFileSync(this.config.tokenFile, 'utf8').trim();
    return undefined;
  }

  /** One JSON request; resolves with any HTTP status, rejects on transport errors and timeouts. */
  request<T = unknown>(method: string, urlPath: string, body?: unknown, opts: { timeoutMs?: number; contentType?: string } = {}): Promise<KubeResponse<T>> {
    const url = new URL(urlPath, `${this.config.server}/`);
    const text = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { accept: 'application/json' };
    let tok: string | undefined;
    try {
      tok = this.bearer();
    } catch (err) {
      // the code only: never the path's contents
      return Promise.reject(new Error(`cannot read the ServiceAccount token: ${(err as NodeJS.ErrnoException).code ?? 'error'}`));
    }
    if (tok) headers.authorization = `Bearer ${tok}`;
    if (text !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(text));
    }
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, headers, agent: this.agent, timeout: opts.timeoutMs ?? this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE) {
            req.destroy(new Error(`${method} ${url.pathname}: response larger than ${MAX_RESPONSE} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          const t = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = t;
          try {
            parsed = JSON.parse(t);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T, text: t });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${url.pathname}: timed out`)));
      req.on('error', reject);
      req.end(text);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
