// A fake agent for the controller's tests and benchmark: the agent control
// API contract of PUT /v1/config (bearer token, generation, 409 for a stale
// one, 400 {error} when invalid), the one-off commands (POST
// /v1/{plugins,backends}/{name}:{start|stop|restart}, /v1/backends/{name}:flush,
// /v1/reload, /v1/flush: recorded, 200) and the agent's registration Lease
// peripety-agent-<node> with the annotations peripety.io/endpoint,
// peripety.io/generation and peripety.io/hash, written through the real API
// server. Records every push. Not the real agent (src/agent): the
// controller's tests must not depend on it.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ENVTEST_NAMESPACE, type Envtest } from './envtest.ts';

/** Decides on a bearer token (the part after "Bearer "). */
export type TokenCheck = (token: string) => boolean | Promise<boolean>;

/**
 * What a genuine agent on `node` accepts, by a real TokenReview against `env`
 * (verdicts cached per token): authenticated for the audience
 * peripety-agent:<node>, and the controller's ServiceAccount.
 */
export function nodeTokenCheck(env: Envtest, node: string): TokenCheck {
  const verdicts = new Map<string, Promise<boolean>>();
  return (token) => {
    let v = verdicts.get(token);
    if (!v) {
      v = env.request<{ status?: { authenticated?: boolean; audiences?: string[]; user?: { username?: string } } }>('POST', '/apis/authentication.k8s.io/v1/tokenreviews',
        { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [`peripety-agent:${node}`] } })
        .then((r) => r.body.status?.authenticated === true && (r.body.status.audiences ?? []).includes(`peripety-agent:${node}`)
          && r.body.status.user?.username === `system:serviceaccount:${ENVTEST_NAMESPACE}:peripety-controller`);
      verdicts.set(token, v);
    }
    return v;
  };
}

export interface Command {
  /** the path, e.g. /v1/backends/errors:restart or /v1/reload */
  path: string;
  controller: string;
  at: number;
}

const COMMAND_PATH = /^\/v1\/(?:(?:plugins|backends)\/[A-Za-z0-9_.-]{1,63}:(?:start|stop|restart)|backends\/[A-Za-z0-9_.-]{1,63}:flush|reload|flush)$/;

export interface Push {
  generation: number;
  hash: string;
  toml: string;
  storage: unknown;
  controller: string;
  at: number;
}

const NS = 'peripety-system';

export class FakeAgent {
  readonly node: string;
  readonly pushes: Push[] = [];
  generation = 0;
  hash = '';
  readonly commands: Command[] = [];
  /** when set, PUT /v1/config answers 400 with this error */
  refuse: string | null = null;
  /** this many of the next pushes answer 429 (the real agent's TokenReview budget spent) */
  throttle = 0;
  /** pushes answered 429 so far */
  throttled = 0;
  /** this many of the next commands answer 429 with retry-after: 1 */
  throttleCommands = 0;
  /** when set, commands answer 409 with this error */
  refuseCommands: string | null = null;
  private server: Server | null = null;
  private endpoint = '';
  private leaseWrites: Promise<void> = Promise.resolve();
  private readonly env: Envtest;
  private readonly check: TokenCheck;
  private readonly host: string;
  private waiters: (() => void)[] = [];
  /** every request that reached it, with its Authorization header (what an address that is not the node's must never see) */
  readonly requests: { method: string; path: string; authorization: string | undefined }[] = [];

  /**
   * `token`: the one token accepted, or a check; default: what a genuine agent on `node` accepts (nodeTokenCheck).
   * `host`: the address it listens on and advertises (default 127.0.0.1, the test Nodes' address: NODE_ADDRESSES in operator.ts)
   */
  constructor(env: Envtest, node: string, token?: string | TokenCheck, opts: { host?: string } = {}) {
    this.env = env;
    this.node = node;
    this.check = token === undefined ? nodeTokenCheck(env, node) : typeof token === 'string' ? (t) => t === token : token;
    this.host = opts.host ?? '127.0.0.1';
  }

  get leaseName(): string {
    return `peripety-agent-${this.node}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req).then(({ status, body, retryAfter }) => {
        res.writeHead(status, { 'content-type': 'application/json', ...(retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) }) });
        res.end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, this.host, resolve));
    this.endpoint = `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${(this.server.address() as AddressInfo).port}`;
    const r = await this.env.request('POST', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`, {
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
      metadata: { name: this.leaseName, namespace: NS, annotations: this.annotations() },
      spec: { holderIdentity: this.node },
    });
    if (r.status === 409) await this.writeLease();
    else if (r.status !== 201) throw new Error(`lease ${this.leaseName}: HTTP ${r.status} ${r.text}`);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await this.leaseWrites;
  }

  /** resolves when the Lease writes so far are done (the agent's "applied" is visible on the API server) */
  leaseWritten(): Promise<void> {
    return this.leaseWrites;
  }

  /** forget the configuration, as an agent restarted with an empty state directory */
  async restartEmpty(): Promise<void> {
    this.generation = 0;
    this.hash = '';
    await this.writeLease();
  }

  /** resolves when `pred` holds (checked on every push, command and lease write) or rejects after `ms` */
  async waitFor(pred: (a: FakeAgent) => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred(this)) {
      if (Date.now() > deadline) throw new Error(`${this.node}: timeout after ${ms} ms waiting for ${what}; pushes: ${JSON.stringify(this.pushes.map((p) => ({ g: p.generation, c: p.controller })))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  private annotations(): Record<string, string> {
    return { 'peripety.io/endpoint': this.endpoint, 'peripety.io/generation': String(this.generation), 'peripety.io/hash': this.hash };
  }

  private writeLease(): Promise<void> {
    const annotations = this.annotations();
    // a failed write rejects its caller, not every later write
    this.leaseWrites = this.leaseWrites.catch(() => undefined).then(async () => {
      for (let attempt = 0; ; attempt++) {
        const r = await this.env.request('PATCH', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${this.leaseName}`,
          { metadata: { annotations } }, { contentType: 'application/merge-patch+json' }).catch((e: unknown) => ({ status: 0, text: String(e) }));
        if (r.status === 200) break;
        if (attempt >= 5) throw new Error(`lease ${this.leaseName}: HTTP ${r.status} ${r.text}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    });
    return this.leaseWrites;
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; body: unknown; retryAfter?: number }> {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    const urlPath = (req.url ?? '').split('?')[0]!;
    this.requests.push({ method: req.method ?? '', path: urlPath, authorization: req.headers.authorization });
    const auth = req.headers.authorization ?? '';
    const authorized = auth.startsWith('Bearer ') && await this.check(auth.slice('Bearer '.length));
    if (req.method === 'POST' && COMMAND_PATH.test(urlPath)) {
      if (!authorized) return { status: 401, body: { error: 'unauthorized' } };
      if (this.refuseCommands !== null) return { status: 409, body: { error: this.refuseCommands } };
      if (this.throttleCommands > 0) {
        this.throttleCommands--;
        this.throttled++;
        return { status: 429, body: { error: 'too many new tokens to review; try again' }, retryAfter: 1 };
      }
      this.commands.push({ path: urlPath, controller: String(req.headers['x-peripety-controller'] ?? ''), at: Date.now() });
      this.wake();
      return { status: 200, body: { ok: true } };
    }
    if (req.method !== 'PUT' || req.url !== '/v1/config') return { status: 404, body: { error: 'not found' } };
    if (!authorized) return { status: 401, body: { error: 'unauthorized' } };
    let body: { generation?: unknown; hash?: unknown; toml?: unknown; storage?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      return { status: 400, body: { error: 'not JSON' } };
    }
    if (typeof body.generation !== 'number' || typeof body.hash !== 'string' || typeof body.toml !== 'string' || typeof body.storage !== 'object') {
      return { status: 400, body: { error: 'generation, hash, toml and storage are required' } };
    }
    if (this.throttle > 0) {
      this.throttle--;
      this.throttled++;
      this.wake();
      return { status: 429, body: { error: 'too many new tokens to review; try again' } };
    }
    if (this.refuse !== null) return { status: 400, body: { error: this.refuse } };
    if (body.generation <= this.generation) return { status: 409, body: { error: `stale generation ${body.generation} (applied ${this.generation})`, generation: this.generation } };
    this.generation = body.generation;
    this.hash = body.hash;
    this.pushes.push({
      generation: body.generation, hash: body.hash, toml: body.toml, storage: body.storage,
      controller: String(req.headers['x-peripety-controller'] ?? ''), at: Date.now(),
    });
    await this.writeLease();
    this.wake();
    return { status: 200, body: { applied: true, generation: this.generation, hash: this.hash } };
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
