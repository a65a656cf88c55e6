// The agent's HTTP API: /metrics, /healthz, /readyz (open), /v1/events,
// /v1/status and /v1/stream (bearer token). A thin adapter: the answers come from handlers
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
}
