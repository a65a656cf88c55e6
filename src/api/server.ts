// The agent's HTTP API: /metrics, /healthz, /readyz (open), /v1/events,
// /v1/status and /v1/stream (bearer token), and the control endpoints PUT
// /v1/config, POST /v1/{plugins,backends}/{name}:{action} (docs/agent-api.md). A thin adapter: the answers come from handlers
// the agent passes in; request parsing is in query.ts.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { StorageEvent } from '../events/schema.ts';
import type { Logger } from '../log/logger.ts';
import type { Authenticator } from './auth.ts';
import { type EventsRequest, parseEventsQuery } from './query.ts';
import type { StreamHandler } from './stream.ts';

/** A problem the caller caused (bad filter, unknown backend): 400 with this message. */
export class RequestError extends Error {
  readonly status: number;
  constructor(message: string, status = 400) {
    super(message);
    this.status = status;
  }
}

export interface ApiHandlers {
  registry: Registry;
  /** ready: collectors read and the storage manager runs; reasons when not */
  readiness(): { ready: boolean; reasons: string[] };
  queryEvents(req: EventsRequest): Promise<{ events: StorageEvent[]; isTruncated: boolean }>;
  status(): unknown;
  /** GET /v1/stream (live events, Server-Sent Events); 404 when absent */
  stream?: StreamHandler;
  /** PUT /v1/config, POST /v1/{plugins,backends}/{name}:{action}; 404 when absent */
  control?: ControlHandlers;
}

/** PUT /v1/config (docs/agent-api.md). */
export interface ConfigPush {
  generation: number;
  hash: string;
  /** plugin sections only: the agent prepends its own local [main] */
  toml: string;
  /** the elos EventLogging structure */
  storage: Record<string, unknown>;
}

export type ControlAction = 'start' | 'stop' | 'restart';
export interface ControlAnswer {
  status: number;
  body: unknown;
}

export interface ControlHandlers {
  pushConfig(push: ConfigPush): Promise<ControlAnswer>;
  command(kind: 'plugins' | 'backends', name: string, action: ControlAction): Promise<ControlAnswer>;
}

export const MAX_CONTROL_BODY = 4 << 20;

/** Validate the shape of a PUT /v1/config body (the contents are validated by the agent). */
export function parseConfigPush(body: unknown): { ok: true; push: ConfigPush } | { ok: false; error: string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, error: 'the body must be a JSON object {generation, hash, toml, storage}' };
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !['generation', 'hash', 'toml', 'storage'].includes(k));
  if (unknown.length > 0) return { ok: false, error: `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 50))).join(', ')}` };
  if (typeof b.generation !== 'number' || !Number.isSafeInteger(b.generation) || b.generation < 1) return { ok: false, error: 'generation: must be a whole number ≥ 1' };
  if (typeof b.hash !== 'string' || b.hash.length < 1 || b.hash.length > 256) return { ok: false, error: 'hash: must be a string of 1 to 256 characters' };
  if (typeof b.toml !== 'string') return { ok: false, error: 'toml: must be a string (the plugin sections)' };
  if (typeof b.storage !== 'object' || b.storage === null || Array.isArray(b.storage)) return { ok: false, error: 'storage: must be an object (the elos EventLogging structure)' };
  return { ok: true, push: { generation: b.generation, hash: b.hash, toml: b.toml, storage: b.storage as Record<string, unknown> } };
}

const COMMAND_PATH = /^\/v1\/(plugins|backends)\/([A-Za-z0-9_.-]{1,63}):(start|stop|restart)$/;

/** `/v1/plugins/{name}:{action}` or `/v1/backends/…`, or null. */
export function parseCommandPath(pathname: string): { kind: 'plugins' | 'backends'; name: string; action: ControlAction } | null {
  let p = pathname;
  try {
    p = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  const m = COMMAND_PATH.exec(p);
  return m ? { kind: m[1] as 'plugins' | 'backends', name: m[2]!, action: m[3] as ControlAction } : null;
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

export interface ApiServerOptions {
  /** `host:port`; port 0 picks a free one */
  listen: string;
  auth: Authenticator;
  handlers: ApiHandlers;
  log: Logger;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`listen address "${listen.slice(0, 100)}" must be host:port (IPv6 as [addr]:port)`);
  return { host: (m[1] ?? m[2])!, port };
}

function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = contentType === 'application/json' ? `${JSON.stringify(body)}\n` : String(body);
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(text);
}

export class ApiServer {
  private readonly opts: ApiServerOptions;
  private server: Server | null = null;

  constructor(opts: ApiServerOptions) {
    this.opts = opts;
  }

  /** Start listening; resolves with the bound address. */
  async start(): Promise<{ host: string; port: number }> {
    const { host, port } = parseListen(this.opts.listen);
    const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16_384 }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.opts.log.error({ err: (err as Error).message, url: (req.url ?? '').slice(0, 200) }, 'API request failed');
        if (!res.headersSent) send(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    });
    server.maxConnections = 128;
    server.keepAliveTimeout = 5_000;
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

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    // streams never end by themselves; close() would wait for them forever
    this.opts.handlers.stream?.closeAll();
    s.closeIdleConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agent');
    const { handlers, auth } = this.opts;
    const command = url.pathname.startsWith('/v1/plugins/') || url.pathname.startsWith('/v1/backends/') ? parseCommandPath(url.pathname) : null;
    const writable = url.pathname === '/v1/config' ? 'PUT' : command ? 'POST' : null;
    if (writable !== null) {
      await this.handleControl(req, res, writable, command);
      return;
    }
    if (url.pathname.startsWith('/v1/plugins/') || url.pathname.startsWith('/v1/backends/')) {
      send(res, 404, { error: 'no such endpoint: /v1/plugins/{name}:{start|stop|restart} and /v1/backends/{name}:{start|stop|restart}' });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, { error: `${(req.method ?? '').slice(0, 20)} is not allowed here` });
      return;
    }
    switch (url.pathname) {
      case '/healthz':
        send(res, 200, 'ok\n', 'text/plain');
        return;
      case '/readyz': {
        const r = handlers.readiness();
        send(res, r.ready ? 200 : 503, r.ready ? 'ok\n' : `not ready: ${r.reasons.join('; ')}\n`, 'text/plain');
        return;
      }
      case '/metrics':
        send(res, 200, await handlers.registry.metrics(), handlers.registry.contentType);
        return;
      case '/v1/events':
      case '/v1/status':
      case '/v1/stream': {
        const who = await auth.authenticate(req.headers.authorization);
        if (!who.ok) {
          if (who.status === 401) res.setHeader('www-authenticate', 'Bearer');
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
        try {
          const out = await handlers.queryEvents(q.request);
          send(res, 200, { events: out.events, isTruncated: out.isTruncated });
        } catch (err) {
          if (err instanceof RequestError) send(res, err.status, { error: err.message });
          else throw err;
        }
        return;
      }
      default:
        send(res, 404, { error: `no such endpoint: ${url.pathname.slice(0, 100)}` });
    }
  }

  /** PUT /v1/config and POST /v1/{plugins,backends}/{name}:{action}: authenticated first, then the body. */
  private async handleControl(req: IncomingMessage, res: ServerResponse, method: 'PUT' | 'POST', command: ReturnType<typeof parseCommandPath>): Promise<void> {
    if (req.method !== method) {
      res.setHeader('allow', method);
      send(res, 405, { error: `${(req.method ?? '').slice(0, 20)} is not allowed here (${method})` });
      return;
    }
    const who = await this.opts.auth.authenticate(req.headers.authorization);
    if (!who.ok) {
      if (who.status === 401) res.setHeader('www-authenticate', 'Bearer');
      res.setHeader('connection', 'close');
      send(res, who.status, { error: who.reason });
      return;
    }
    const control = this.opts.handlers.control;
    if (!control) {
      send(res, 404, { error: 'this agent takes no control commands' });
      return;
    }
    let answer: ControlAnswer;
    if (command) {
      answer = await control.command(command.kind, command.name, command.action);
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
      const p = parseConfigPush(body);
      answer = p.ok ? await control.pushConfig(p.push) : { status: 400, body: { error: p.error } };
    }
    this.opts.log.info({ who: who.who, request: command ? `${command.kind}/${command.name}:${command.action}` : 'config', status: answer.status }, 'control API request');
    send(res, answer.status, answer.body);
  }
}
