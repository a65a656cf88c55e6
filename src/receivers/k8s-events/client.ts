// A minimal Kubernetes API client for the k8s-events receiver: JSON requests
// over node:https with a timeout, credentials from a kubeconfig file (client
// certificate or bearer token users; CA as data or file) or from the
// in-cluster ServiceAccount mount. Deliberately small and private to this
// receiver; the token never appears in errors or logs.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

export interface KubeConnection {
  /** https://host:port (no trailing slash) */
  server: string;
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** a fixed token, or a file read again on each request (projected ServiceAccount tokens rotate) */
  token?: string;
  tokenFile?: string;
  insecureSkipTlsVerify?: boolean;
}

export interface KubeResponse<T = unknown> {
  status: number;
  body: T | undefined;
}

export const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {};
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function named(list: unknown, name: string | undefined): Obj | undefined {
  if (!Array.isArray(list)) return undefined;
  const entry = list.map(obj).find((e) => e.name === name) ?? (name === undefined && list.length === 1 ? obj(list[0]) : undefined);
  return entry;
}

/** Parse a kubeconfig file (its current context) into a connection. Throws with a message naming what is missing, never a credential. */
export function loadKubeconfig(file: string): KubeConnection {
  const dir = path.dirname(file);
  const doc = obj(parseYaml(readFileSync(file, 'utf8')));
  const ctxName = str(doc['current-context']);
  const ctx = obj(named(doc.contexts, ctxName)?.context);
  const cluster = obj(named(doc.clusters, str(ctx.cluster))?.cluster);
  const user = obj(named(doc.users, str(ctx.user))?.user);
  const server = str(cluster.server);
  if (!server) throw new Error(`kubeconfig ${file}: no cluster server for context ${ctxName ?? '(none)'}`);
  const rel = (p: string): string => (path.isAbsolute(p) ? p : path.join(dir, p));
  const b64 = (s: string): Buffer => Buffer.from(s, 'base64');
  const conn: KubeConnection = { server: server.replace(/\/+$/, '') };
  const caData = str(cluster['certificate-authority-data']);
  const caFile = str(cluster['certificate-authority']);
  if (caData) conn.ca = b64(caData);
  else if (caFile) conn.ca = readFileSync(rel(caFile));
  if (cluster['insecure-skip-tls-verify'] === true) conn.insecureSkipTlsVerify = true;
  const certData = str(user['client-certificate-data']);
  const certFile = str(user['client-certificate']);
  const keyData = str(user['client-key-data']);
  const keyFile = str(user['client-key']);
  if (certData) conn.cert = b64(certData);
  else if (certFile) conn.cert = readFileSync(rel(certFile));
  if (keyData) conn.key = b64(keyData);
  else if (keyFile) conn.key = readFileSync(rel(keyFile));
  const token = str(user.token);
  const tokenFile = str(user.tokenFile);
  if (token) conn.token = token;
  else if (tokenFile) conn.tokenFile = rel(tokenFile);
  if (!conn.token && !conn.tokenFile && !(conn.cert && conn.key)) throw new Error(`kubeconfig ${file}: the user has neither a token nor a client certificate and key`);
  return conn;
}

/** The in-cluster connection: KUBERNETES_SERVICE_HOST/PORT and the ServiceAccount mount. */
export function inClusterConnection(env: NodeJS.ProcessEnv = process.env, dir = IN_CLUSTER_DIR): KubeConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new Error('not running in a cluster (KUBERNETES_SERVICE_HOST is unset) and no kubeconfig was given');
  const h = host.includes(':') ? `[${host}]` : host;
  return { server: `https://${h}:${port}`, ca: readFileSync(path.join(dir, 'ca.crt')), tokenFile: path.join(dir, 'token') };
}

export class KubeClient {
  private readonly conn: KubeConnection;
  private readonly agent: https.Agent;
  private readonly timeoutMs: number;

  constructor(conn: KubeConnection, timeoutMs = 10_000) {
    this.conn = conn;
    this.timeoutMs = timeoutMs;
    this.agent = new https.Agent({
      keepAlive: true,
      maxSockets: 4,
      ca: conn.ca,
      cert: conn.cert,
      key: conn.key,
      rejectUnauthorized: conn.insecureSkipTlsVerify !== true,
    });
  }

  private bearer(): string | undefined {
    if (this.conn.token) return this.conn.token;
    if (this.conn.tokenFile) return readFileSync(this.conn.tokenFile, 'utf8').trim();
    return undefined;
  }

  /** One JSON request; resolves with any HTTP status, rejects on network errors and timeouts. */
  request<T = unknown>(method: string, urlPath: string, body?: unknown, contentType = 'application/json'): Promise<KubeResponse<T>> {
    return new Promise((resolve, reject) => {
      let token: string | undefined;
      try {
        token = this.bearer();
      } catch (err) {
        reject(new Error(`cannot read the ServiceAccount token: ${(err as NodeJS.ErrnoException).code ?? 'error'}`));
        return;
      }
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const headers: Record<string, string> = { accept: 'application/json' };
      if (payload) {
        headers['content-type'] = contentType;
        headers['content-length'] = String(payload.length);
      }
      if (token) headers.authorization = `Bearer ${token}`;
      const req = https.request(`${this.conn.server}${urlPath}`, { method, headers, agent: this.agent, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= 4 << 20) chunks.push(c);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: T | undefined;
          try {
            parsed = text ? (JSON.parse(text) as T) : undefined;
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timed out after ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(new Error(`${method} ${urlPath}: ${err.message}`)));
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
