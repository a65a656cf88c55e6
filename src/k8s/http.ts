// A minimal Kubernetes API client over node:https for the few calls the agent
// makes (TokenReview, its registration Lease, Secrets, the k8s-events
// receiver's Events) and the controller's (its informers' list and watch,
// src/k8s/informer.ts; Leases, TokenRequest, custom resources' status).
// @kubernetes/client-node is not used: importing it costs ~80 MiB of RSS
// (every API group's models), more than the whole controller needs (issue 14,
// docs/performance.md). Credentials from a kubeconfig
// (client certificate or bearer token; CA inline or as a file) or from the
// in-cluster ServiceAccount mount. The token file is re-read on every request
// (projected tokens rotate).
import { readFileSync } from 'node:fs';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import path from 'node:path';
import { createRequire } from 'node:module';

// node:https from process.getBuiltinModule, not an `import`: an ESM import reads
// its lazy exports and loads undici (~10 MiB of RSS; see src/metrics/http.ts).
const https = process.getBuiltinModule('node:https');

// The YAML parser (≈14 MiB of code once loaded) only for a kubeconfig file:
// in-cluster agents and the k8s-events receiver never parse YAML, so it is
// required on first use instead of at import (issue 14).
const requireLazy = createRequire(import.meta.url);
function parseYaml(text: string): unknown {
  return (requireLazy('yaml') as typeof import('yaml')).parse(text);
}

export interface KubeConfig {
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
/** the longest line of a watch stream (one object): beyond it the watch fails rather than grow without bound */
const MAX_WATCH_LINE = 4 << 20;

/**
 * A non-2xx answer of the API server, shaped like client-node's ApiException
 * (`code` the HTTP status, `body` the parsed metav1.Status) so callers test
 * `err.code === 409` either way; the message is one line with the server's
 * reason, never the request.
 */
export class KubeApiError extends Error {
  readonly code: number;
  readonly body: unknown;
  constructor(method: string, urlPath: string, status: number, body: unknown) {
    const m = (body as { message?: unknown } | null)?.message;
    super(`${method} ${urlPath.split('?')[0]}: HTTP ${status}${typeof m === 'string' ? `: ${m.slice(0, 300)}` : ''}`);
    this.name = 'KubeApiError';
    this.code = status;
    this.body = body;
  }
}

export interface RequestOptions {
  timeoutMs?: number;
  contentType?: string;
  /** the largest answer taken (default 4 MiB) */
  maxBytes?: number;
}

/** One event of a watch stream (the API server's watch.Event). */
export interface WatchEvent {
  type: string;
  object: unknown;
}

/** A running watch: `stop()` ends it (the `done` callback is then not called). */
export interface WatchHandle {
  stop(): void;
}

type Obj = Record<string, unknown>;
/** a settled request's later errors (module level: a closure of the request would keep its answer) */
const ignore = (): void => undefined;
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
  private readonly agent: HttpsAgent;
  private readonly timeoutMs: number;

  /** long-lived watch connections: their own sockets, never holding one of `agent`'s */
  private readonly watchAgent: HttpsAgent;

  /** `timeoutMs`: the default per-request timeout (10 s); `maxSockets`: concurrent requests (4; the controller more) */
  constructor(config: KubeConfig, opts: { timeoutMs?: number; maxSockets?: number } = {}) {
    this.config = config;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    const tls = { ca: config.ca, cert: config.cert, key: config.key, rejectUnauthorized: config.insecureSkipTLSVerify !== true };
    this.agent = new https.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 4, ...tls });
    this.watchAgent = new https.Agent({ keepAlive: false, ...tls });
  }

  private bearer(): string | undefined {
    if (this.config.token) return this.config.token;
    if (this.config.tokenFile) return readFileSync(this.config.tokenFile, 'utf8').trim();
    return undefined;
  }

  /**
   * One JSON request; resolves with any HTTP status, rejects on transport
   * errors, timeouts and an answer larger than `maxBytes` (4 MiB; a page of a
   * list may need more).
   */
  request<T = unknown>(method: string, urlPath: string, body?: unknown, opts: RequestOptions = {}): Promise<KubeResponse<T>> {
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
    const max = opts.maxBytes ?? MAX_RESPONSE;
    return new Promise((resolve, reject) => {
      // A kept-alive socket keeps its last request and response, and their
      // listeners keep this promise and so the answer (a whole list) until the
      // socket is used again: ours are removed once settled.
      const own: [IncomingMessage | ClientRequest, string, (...a: never[]) => void][] = [];
      const on = <E extends IncomingMessage | ClientRequest>(e: E, name: string, f: (...a: never[]) => void): void => {
        e.on(name, f as (...a: unknown[]) => void);
        own.push([e, name, f]);
      };
      const settle = (): void => {
        for (const [e, name, f] of own) {
          e.removeListener(name, f as (...a: unknown[]) => void);
          if (name === 'error') e.on('error', ignore);
        }
        own.length = 0;
      };
      const fail = (err: Error): void => {
        settle();
        reject(err);
      };
      const req = https.request(url, { method, headers, agent: this.agent }, (res) => {
        let chunks: Buffer[] = [];
        let size = 0;
        on(res, 'data', (c: Buffer) => {
          size += c.length;
          if (size > max) {
            req.destroy(new Error(`${method} ${url.pathname}: response larger than ${max} bytes`));
            return;
          }
          chunks.push(c);
        });
        on(res, 'end', () => {
          const t = Buffer.concat(chunks).toString('utf8');
          chunks = [];
          let parsed: unknown = t;
          try {
            parsed = JSON.parse(t);
          } catch {
            // not JSON
          }
          settle();
          resolve({ status: res.statusCode ?? 0, body: parsed as T, text: t });
        });
        on(res, 'error', fail);
      });
      req.setTimeout(opts.timeoutMs ?? this.timeoutMs);
      on(req, 'timeout', () => req.destroy(new Error(`${method} ${url.pathname}: timed out`)));
      on(req, 'error', fail);
      req.end(text);
    });
  }

  /** One JSON request that must succeed: resolves with the body of a 2xx answer, rejects with a KubeApiError otherwise. */
  async call<T = unknown>(method: string, urlPath: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    const r = await this.request<T>(method, urlPath, body, opts);
    if (r.status < 200 || r.status > 299) throw new KubeApiError(method, urlPath, r.status, r.body);
    return r.body;
  }

  /**
   * A watch (`urlPath` with watch=1 and its query): `onEvent` for every
   * event line as it arrives, `done` once when the stream ends — without an
   * error when the server closed it (its timeoutSeconds), with one on a
   * non-2xx answer, a transport error, an unparsable line, or no byte for
   * `idleMs`. Nothing is buffered beyond one line.
   */
  watch(urlPath: string, onEvent: (e: WatchEvent) => void, done: (err?: Error) => void, opts: { idleMs?: number } = {}): WatchHandle {
    const url = new URL(urlPath, `${this.config.server}/`);
    const headers: Record<string, string> = { accept: 'application/json' };
    let finished = false;
    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      done(err);
    };
    let tok: string | undefined;
    try {
      tok = this.bearer();
    } catch (err) {
      queueMicrotask(() => finish(new Error(`cannot read the ServiceAccount token: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)));
      return { stop: () => { finished = true; } };
    }
    if (tok) headers.authorization = `Bearer ${tok}`;
    const req = https.request(url, { method: 'GET', headers, agent: this.watchAgent, timeout: opts.idleMs ?? 5 * 60_000 }, (res) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status > 299) {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if ((size += c.length) <= MAX_RESPONSE) chunks.push(c);
        });
        res.on('end', () => {
          let body: unknown = null;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            // not JSON
          }
          finish(new KubeApiError('GET', url.pathname, status, body));
        });
        res.on('error', (err) => finish(err));
        return;
      }
      // newline-delimited JSON; a chunk may end mid-line
      let pending: Buffer[] = [];
      let pendingSize = 0;
      res.on('data', (c: Buffer) => {
        let start = 0;
        for (let nl = c.indexOf(10); nl !== -1; nl = c.indexOf(10, start)) {
          const part = c.subarray(start, nl);
          const line = pending.length > 0 ? Buffer.concat([...pending, part]) : part;
          pending = [];
          pendingSize = 0;
          start = nl + 1;
          if (line.length === 0) continue;
          let e: WatchEvent;
          try {
            e = JSON.parse(line.toString('utf8')) as WatchEvent;
          } catch {
            req.destroy(new Error(`watch ${url.pathname}: a line that is not JSON`));
            return;
          }
          if (finished) return;
          onEvent(e);
        }
        if (start < c.length) {
          pendingSize += c.length - start;
          if (pendingSize > MAX_WATCH_LINE) {
            req.destroy(new Error(`watch ${url.pathname}: an event larger than ${MAX_WATCH_LINE} bytes`));
            return;
          }
          pending.push(c.subarray(start));
        }
      });
      res.on('end', () => finish());
      res.on('error', (err) => finish(err));
      res.on('close', () => finish(res.complete ? undefined : new Error(`watch ${url.pathname}: connection closed`)));
    });
    req.on('timeout', () => req.destroy(new Error(`watch ${url.pathname}: nothing received for ${Math.round((opts.idleMs ?? 300_000) / 1000)} s`)));
    req.on('error', (err) => finish(err));
    req.end();
    return {
      stop: () => {
        finished = true;
        req.destroy();
      },
    };
  }

  close(): void {
    this.agent.destroy();
    this.watchAgent.destroy();
  }
}
