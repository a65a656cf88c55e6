// The agent's HTTP API: /metrics, /healthz, /readyz (open), /v1/events,
// /v1/status and /v1/stream (bearer token), and the control endpoints PUT
// /v1/config, POST /v1/{plugins,backends}/{name}:{action}, POST /v1/reload
// and POST /v1/flush (docs/agent-api.md). A thin adapter: the answers come
// from handlers the agent passes in; request parsing is in query.ts.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import { parsePushedConfig, type PushedConfig } from '../contracts/pushed-config.ts';
import { fail, type Outcome } from '../contracts/outcome.ts';
import type { StorageEvent } from '../events/schema.ts';
import type { Logger } from '../log/logger.ts';
import { probeAnswer, type Readiness, writeAnswer } from '../metrics/http.ts';
import { perRegistry } from '../metrics/per-registry.ts';
import type { AuthResult, Authenticator } from './auth.ts';
import { clientKey, ConnectionBudget } from './limits.ts';
import { type EventsRequest, parseEventsQuery } from './query.ts';
import { answerOf, type ControlAnswer } from './status.ts';
import type { StreamHandler } from './stream.ts';

// node:http from process.getBuiltinModule, not an `import`: an ESM import builds
// the module's namespace, which reads its lazy WebSocket/MessageEvent exports
// and so loads undici: ~12 MiB of RSS in every agent (Node 24.21, issue 14;
// docs/performance.md).
const { createServer } = process.getBuiltinModule('node:http');

export interface ApiHandlers {
  /** /metrics, /healthz and /readyz: answered by src/metrics/http.ts */
  registry: Registry;
  /** ready: collectors read and the storage manager runs; reasons when not */
  readiness(): Readiness;
  queryEvents(req: EventsRequest): Promise<Outcome<{ events: StorageEvent[]; isTruncated: boolean }>>;
  status(): unknown;
  /** GET /v1/stream (live events, Server-Sent Events); 404 when absent */
  stream?: StreamHandler;
  /** PUT /v1/config, POST /v1/{plugins,backends}/{name}:{action}, /v1/reload, /v1/flush; 404 when absent */
  control?: ControlHandlers;
}

export type ControlAction = 'start' | 'stop' | 'restart';
/** what a command path may name: the lifecycle, and flush for backends only */
export type CommandPathAction = ControlAction | 'flush';

/** Each answers with an outcome; status.ts makes it HTTP. */
export interface ControlHandlers {
  /** PUT /v1/config: the body parsed with the schema the controller builds it with */
  pushConfig(push: PushedConfig): Promise<Outcome<unknown>>;
  command(kind: 'plugins' | 'backends', name: string, action: ControlAction): Promise<Outcome<unknown>>;
  /** POST /v1/reload: apply the current configuration again */
  reload(): Promise<Outcome<unknown>>;
  /** POST /v1/flush (backend null: every backend) and POST /v1/backends/{name}:flush */
  flush(backend: string | null, timeoutMs: number): Promise<Outcome<unknown>>;
}

export const MAX_CONTROL_BODY = 4 << 20;
/** POST …flush waits this long for the backends unless ?timeoutSeconds= says otherwise */
export const FLUSH_DEFAULT_TIMEOUT_MS = 10_000;
export const FLUSH_MAX_TIMEOUT_SECONDS = 60;

/** `?timeoutSeconds=N` of a flush (whole seconds, 1…60), or the default. */
export function parseFlushTimeout(params: URLSearchParams): { ok: true; timeoutMs: number } | { ok: false; error: string } {
  const unknown = [...params.keys()].filter((k) => k !== 'timeoutSeconds');
  if (unknown.length > 0) return { ok: false, error: `unknown query parameter ${JSON.stringify(unknown[0]!.slice(0, 50))} (only timeoutSeconds)` };
  const all = params.getAll('timeoutSeconds');
  if (all.length === 0) return { ok: true, timeoutMs: FLUSH_DEFAULT_TIMEOUT_MS };
  const v = all[0]!;
  if (all.length > 1 || !/^[0-9]{1,3}$/.test(v) || Number(v) < 1 || Number(v) > FLUSH_MAX_TIMEOUT_SECONDS) {
    return { ok: false, error: `timeoutSeconds: one whole number of seconds from 1 to ${FLUSH_MAX_TIMEOUT_SECONDS}` };
  }
  return { ok: true, timeoutMs: Number(v) * 1000 };
}

const COMMAND_PATH = /^\/v1\/(plugins|backends)\/([A-Za-z0-9_.-]{1,63}):(start|stop|restart|flush)$/;

/** `/v1/plugins/{name}:{start|stop|restart}` or `/v1/backends/{name}:{start|stop|restart|flush}`, or null. */
export function parseCommandPath(pathname: string): { kind: 'plugins' | 'backends'; name: string; action: CommandPathAction } | null {
  let p = pathname;
  try {
    p = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  const m = COMMAND_PATH.exec(p);
  // a plugin has nothing to flush
  if (!m || (m[1] === 'plugins' && m[3] === 'flush')) return null;
  return { kind: m[1] as 'plugins' | 'backends', name: m[2]!, action: m[3] as CommandPathAction };
}

/** What a control request asks for (the path decides; bodies and queries are read after authentication). */
export type ControlRequest =
  | { op: 'config' }
  | { op: 'command'; kind: 'plugins' | 'backends'; name: string; action: ControlAction }
  | { op: 'reload' }
  | { op: 'flush'; backend: string | null };

/** The control request a path names, with the method it takes, or null. */
export function parseControlPath(pathname: string): { request: ControlRequest; method: 'PUT' | 'POST' } | null {
  if (pathname === '/v1/config') return { request: { op: 'config' }, method: 'PUT' };
  if (pathname === '/v1/reload') return { request: { op: 'reload' }, method: 'POST' };
  if (pathname === '/v1/flush') return { request: { op: 'flush', backend: null }, method: 'POST' };
  if (!pathname.startsWith('/v1/plugins/') && !pathname.startsWith('/v1/backends/')) return null;
  const c = parseCommandPath(pathname);
  if (!c) return null;
  if (c.action === 'flush') return { request: { op: 'flush', backend: c.name }, method: 'POST' };
  return { request: { op: 'command', kind: c.kind, name: c.name, action: c.action }, method: 'POST' };
}

function describeControl(r: ControlRequest): string {
  switch (r.op) {
    case 'config': return 'config';
    case 'command': return `${r.kind}/${r.name}:${r.action}`;
    case 'reload': return 'reload';
    case 'flush': return r.backend === null ? 'flush' : `backends/${r.backend}:flush`;
  }
}

class BodyError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

async function readJsonBody(req: IncomingMessage, max: number): Promise<unknown> {
  const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (ct !== 'application/json') throw new BodyError(415, 'the body must be application/json');
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > max) throw new BodyError(413, `the body is larger than ${max} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max) throw new BodyError(413, `the body is larger than ${max} bytes`);
    chunks.push(c);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new BodyError(400, `the body is not JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}

/**
 * What one client may hold and how long a request may take (docs/agent-api.md
 * "Limits"). A client is a source address (limits.ts clientKey): one that opens many
 * slow connections is refused beyond its share, and another client's
 * /healthz still gets a connection.
 */
export interface ApiLimits {
  /** connections open at once, all clients together */
  maxConnections: number;
  /** connections one client address may hold */
  perClientConnections: number;
  /** the last this-many of maxConnections go only to clients that hold none yet */
  reservedConnections: number;
  /** a request's headers must be complete within this (slowloris) */
  headersTimeoutMs: number;
  /** a whole request (with its body) must be received within this */
  requestTimeoutMs: number;
  /** an idle keep-alive connection is closed after this */
  keepAliveTimeoutMs: number;
  /** a connection with no traffic either way is closed after this (a reader that stopped reading) */
  idleTimeoutMs: number;
  /** at stop, connections still open this long after the listener closed are cut */
  shutdownGraceMs: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  maxConnections: 256,
  perClientConnections: 32,
  reservedConnections: 32,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 120_000,
  shutdownGraceMs: 3_000,
};
/** Headers beyond this many are ignored (Node's default is 2000). */
const MAX_HEADERS_COUNT = 64;

/** Why a connection or a request was cut before any handler ran (bounded label values). */
export const CONNECTION_REFUSALS = ['per_client_limit', 'total_limit'] as const;
export const REQUEST_REFUSALS = ['request_timeout', 'headers_too_large', 'bad_request'] as const;
type RequestRefusal = (typeof REQUEST_REFUSALS)[number];

interface ServerMetrics {
  connections: Gauge;
  connectionsRefused: Counter<'reason'>;
  requestsRefused: Counter<'reason'>;
  shutdownClosed: Counter;
}

/** The API server's metrics on `registry` (created once per registry; the chart tests read them from here too). */
export const apiServerMetrics = perRegistry((registry: Registry): ServerMetrics => {
  const registers = [registry];
  const m: ServerMetrics = {
    connections: new Gauge({ name: 'peripety_api_connections', help: 'Connections open to the agent API', registers }),
    connectionsRefused: new Counter({ name: 'peripety_api_connections_refused_total', help: 'Connections to the agent API closed at once, by reason (per_client_limit, total_limit)', labelNames: ['reason'], registers }),
    requestsRefused: new Counter({ name: 'peripety_api_requests_refused_total', help: 'Requests to the agent API cut before any handler ran, by reason (request_timeout, headers_too_large, bad_request)', labelNames: ['reason'], registers }),
    shutdownClosed: new Counter({ name: 'peripety_api_shutdown_closed_connections_total', help: 'Connections still open at the end of the shutdown grace period, closed by the agent', registers }),
  };
  for (const r of CONNECTION_REFUSALS) m.connectionsRefused.labels(r).inc(0);
  for (const r of REQUEST_REFUSALS) m.requestsRefused.labels(r).inc(0);
  return m;
});

function requestRefusal(code: string | undefined): RequestRefusal | null {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'request_timeout';
  if (code === 'HPE_HEADER_OVERFLOW') return 'headers_too_large';
  if (code?.startsWith('HPE_')) return 'bad_request';
  // ECONNRESET and the like: the client left; nothing to answer
  return null;
}

const REFUSAL_ANSWER: Record<RequestRefusal, string> = {
  request_timeout: '408 Request Timeout',
  headers_too_large: '431 Request Header Fields Too Large',
  bad_request: '400 Bad Request',
};

export interface ApiServerOptions {
  /** `host:port`; port 0 picks a free one */
  listen: string;
  auth: Authenticator;
  handlers: ApiHandlers;
  log: Logger;
  /** defaults: DEFAULT_API_LIMITS */
  limits?: Partial<ApiLimits>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`listen address "${listen.slice(0, 100)}" must be host:port (IPv6 as [addr]:port)`);
  return { host: (m[1] ?? m[2])!, port };
}

/** `www-authenticate` on a 401, `retry-after` when the refusal says when to come back (429, 503). */
function refusalHeaders(res: ServerResponse, who: Extract<AuthResult, { ok: false }>): void {
  if (who.status === 401) res.setHeader('www-authenticate', 'Bearer');
  if (who.retryAfterSeconds !== undefined) res.setHeader('retry-after', String(who.retryAfterSeconds));
}

function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  writeAnswer(res, status, contentType, contentType === 'application/json' ? `${JSON.stringify(body)}\n` : String(body));
}

export class ApiServer {
  private readonly opts: ApiServerOptions;
  private readonly limits: ApiLimits;
  private server: Server | null = null;
  /** every open socket: cut at the end of the shutdown grace period */
  private readonly sockets = new Set<Socket>();

  constructor(opts: ApiServerOptions) {
    this.opts = opts;
    this.limits = { ...DEFAULT_API_LIMITS, ...opts.limits };
  }

  /** Start listening; resolves with the bound address. */
  async start(): Promise<{ host: string; port: number }> {
    const { host, port } = parseListen(this.opts.listen);
    const l = this.limits;
    const m = apiServerMetrics(this.opts.handlers.registry);
    this.opts.auth.bindMetrics?.(this.opts.handlers.registry);
    const budget = new ConnectionBudget({ total: l.maxConnections, perClient: l.perClientConnections, reserved: l.reservedConnections });
    const server = createServer({
      requestTimeout: l.requestTimeoutMs,
      headersTimeout: l.headersTimeoutMs,
      keepAliveTimeout: l.keepAliveTimeoutMs,
      // Node checks the two timeouts above on this interval (30 s by default,
      // which let a slow sender hold a connection for 40 s)
      connectionsCheckingInterval: Math.min(1_000, l.headersTimeoutMs),
      maxHeaderSize: 16_384,
    }, (req, res) => {
      // Node clears a socket's timeout when a kept-alive connection starts its
      // next request; the idle cut must hold for every request
      req.socket.setTimeout(l.idleTimeoutMs);
      this.handle(req, res).catch((err: unknown) => {
        if (req.destroyed || (err as NodeJS.ErrnoException).code === 'ECONNRESET') {
          // the caller went away mid-request (e.g. a controller killed mid-push): its
          // body was never complete, so nothing was applied; not the agent's fault
          this.opts.log.warn({ err: (err as Error).message, url: (req.url ?? '').slice(0, 200) }, 'API client went away mid-request; nothing applied');
          res.destroy();
          return;
        }
        this.opts.log.error({ err: (err as Error).message, url: (req.url ?? '').slice(0, 200) }, 'API request failed');
        if (!res.headersSent) send(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    });
    server.maxHeadersCount = MAX_HEADERS_COUNT;
    // a backstop only: the budget below refuses first, by client
    server.maxConnections = l.maxConnections + l.perClientConnections;
    server.on('drop', () => m.connectionsRefused.labels('total_limit').inc());
    server.on('connection', (socket: Socket) => {
      const client = clientKey(socket.remoteAddress);
      const refusal = budget.admit(client);
      if (refusal !== null) {
        m.connectionsRefused.labels(refusal).inc();
        socket.destroy();
        return;
      }
      this.sockets.add(socket);
      m.connections.set(budget.size);
      // a peer that neither sends nor reads (a stalled /metrics reader) lets go eventually
      socket.setTimeout(l.idleTimeoutMs);
      socket.on('timeout', () => socket.destroy());
      socket.once('close', () => {
        this.sockets.delete(socket);
        budget.release(client);
        m.connections.set(budget.size);
      });
    });
    // Node's own handler answers these too; this one also counts them
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      const refusal = requestRefusal(err.code);
      if (refusal !== null) {
        m.requestsRefused.labels(refusal).inc();
        if (socket.writable && socket.bytesWritten === 0) {
          socket.write(`HTTP/1.1 ${REFUSAL_ANSWER[refusal]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
        }
      }
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const addr = server.address() as AddressInfo;
    this.opts.log.info({ listen: `${addr.address}:${addr.port}` }, 'API listening');
    return { host: addr.address, port: addr.port };
  }

  /**
   * Stop listening, let requests in progress finish for the grace period,
   * then cut whatever is still open: a client that trickles its headers
   * (close() also stops Node's header timeout checks) or never reads its
   * answer cannot hold the process.
   */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    // streams never end by themselves; close() would wait for them forever
    this.opts.handlers.stream?.closeAll();
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    s.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'grace'>((resolve) => {
      timer = setTimeout(() => resolve('grace'), this.limits.shutdownGraceMs);
    });
    if ((await Promise.race([closed, grace])) === 'grace') {
      const open = this.sockets.size;
      this.opts.log.warn({ connections: open, graceMs: this.limits.shutdownGraceMs }, 'API connections still open after the shutdown grace period; closing them');
      apiServerMetrics(this.opts.handlers.registry).shutdownClosed.inc(open);
      s.closeAllConnections();
      for (const socket of this.sockets) socket.destroy();
      await closed;
    }
    clearTimeout(timer);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agent');
    const { handlers, auth } = this.opts;
    const control = parseControlPath(url.pathname);
    if (control !== null) {
      await this.handleControl(req, res, url, control.method, control.request);
      return;
    }
    if (url.pathname.startsWith('/v1/plugins/') || url.pathname.startsWith('/v1/backends/')) {
      send(res, 404, { error: 'no such endpoint: /v1/plugins/{name}:{start|stop|restart} and /v1/backends/{name}:{start|stop|restart|flush}' });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, { error: `${(req.method ?? '').slice(0, 20)} is not allowed here` });
      return;
    }
    const probe = await probeAnswer(url.pathname, handlers);
    if (probe) {
      send(res, probe.status, probe.body, probe.contentType);
      return;
    }
    switch (url.pathname) {
      case '/v1/events':
      case '/v1/status':
      case '/v1/stream': {
        const who = await auth.authenticate(req.headers.authorization, clientKey(req.socket.remoteAddress));
        if (!who.ok) {
          refusalHeaders(res, who);
          send(res, who.status, { error: who.reason });
          return;
        }
        if (url.pathname === '/v1/status') {
          send(res, 200, handlers.status());
          return;
        }
        if (url.pathname === '/v1/stream') {
          if (handlers.stream) handlers.stream.attach(req, res);
          else send(res, 404, { error: 'this agent does not stream events' });
          return;
        }
        const q = parseEventsQuery(url.searchParams);
        if (!q.ok) {
          send(res, 400, { error: q.error });
          return;
        }
        const out = await handlers.queryEvents(q.request);
        if (out.ok) {
          send(res, 200, { events: out.value.events, isTruncated: out.value.isTruncated });
        } else {
          const a = answerOf(out);
          send(res, a.status, a.body);
        }
        return;
      }
      default:
        send(res, 404, { error: `no such endpoint: ${url.pathname.slice(0, 100)}` });
    }
  }

  /** PUT /v1/config, POST /v1/{plugins,backends}/{name}:{action}, /v1/reload, /v1/flush: authenticated first, then the body or query. */
  private async handleControl(req: IncomingMessage, res: ServerResponse, url: URL, method: 'PUT' | 'POST', request: ControlRequest): Promise<void> {
    if (req.method !== method) {
      res.setHeader('allow', method);
      send(res, 405, { error: `${(req.method ?? '').slice(0, 20)} is not allowed here (${method})` });
      return;
    }
    const who = await this.opts.auth.authenticate(req.headers.authorization, clientKey(req.socket.remoteAddress));
    if (!who.ok) {
      refusalHeaders(res, who);
      res.setHeader('connection', 'close');
      send(res, who.status, { error: who.reason });
      return;
    }
    const control = this.opts.handlers.control;
    if (!control) {
      send(res, 404, { error: 'this agent takes no control commands' });
      return;
    }
    let outcome: Outcome<unknown>;
    if (request.op === 'command') {
      outcome = await control.command(request.kind, request.name, request.action);
    } else if (request.op === 'reload') {
      outcome = await control.reload();
    } else if (request.op === 'flush') {
      const t = parseFlushTimeout(url.searchParams);
      outcome = t.ok ? await control.flush(request.backend, t.timeoutMs) : fail('invalid', t.error);
    } else {
      let body: unknown;
      try {
        body = await readJsonBody(req, MAX_CONTROL_BODY);
      } catch (err) {
        if (!(err instanceof BodyError)) throw err;
        res.setHeader('connection', 'close');
        send(res, err.status, { error: err.message });
        return;
      }
      const p = parsePushedConfig(body);
      outcome = p.ok ? await control.pushConfig(p.push) : fail('invalid', p.error);
    }
    const answer: ControlAnswer = answerOf(outcome);
    this.opts.log.info({ who: who.who, request: describeControl(request), status: answer.status }, 'control API request');
    send(res, answer.status, answer.body);
  }
}
