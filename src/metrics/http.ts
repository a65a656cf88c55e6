// /metrics and the health probes, answered one way by every process that
// serves them: the agent's control API routes these paths here before its
// token-protected ones; `peripety receive --metrics-listen` and the
// controller's --metrics-listen run serveProbes, a plain server with nothing
// else on it. Prometheus and the kubelet need no token, so none is asked.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

// node:http from process.getBuiltinModule, not an `import`: an ESM import builds
// the module's namespace, which reads its lazy WebSocket/MessageEvent exports
// and so loads undici: ~12 MiB of RSS in every agent (Node 24.21, issue 14;
// docs/performance.md).
const { createServer } = process.getBuiltinModule('node:http');

/** ready, or the reasons it is not (each a sentence the operator can act on) */
export interface Readiness {
  ready: boolean;
  reasons: string[];
}

export interface ProbeOptions {
  /** served at /metrics */
  registry: Registry;
  /** /readyz; absent: ready whenever the process answers */
  readiness?: () => Readiness;
  /** /healthz and /readyz too (default); false: /metrics only */
  health?: boolean;
}

/** What a probe path answers. */
export interface ProbeAnswer {
  status: number;
  contentType: string;
  body: string;
}

const TEXT = 'text/plain';

/** The probe paths `opts` serves. */
export function probePaths(opts: ProbeOptions): string[] {
  return opts.health === false ? ['/metrics'] : ['/metrics', '/healthz', '/readyz'];
}

/**
 * The answer to a GET of `pathname` when it is a probe path `opts` serves,
 * else null. Rejects when the registry cannot render (the server's own
 * error answer then applies).
 */
export async function probeAnswer(pathname: string, opts: ProbeOptions): Promise<ProbeAnswer | null> {
  if (!probePaths(opts).includes(pathname)) return null;
  if (pathname === '/metrics') return { status: 200, contentType: opts.registry.contentType, body: await opts.registry.metrics() };
  if (pathname === '/healthz') return { status: 200, contentType: TEXT, body: 'ok\n' };
  const r = opts.readiness?.() ?? { ready: true, reasons: [] };
  return r.ready ? { status: 200, contentType: TEXT, body: 'ok\n' } : { status: 503, contentType: TEXT, body: `not ready: ${r.reasons.join('; ')}\n` };
}

/** Write an answer with the headers every answer of these servers carries: no cache between a probe and the truth, no content sniffing. */
export function writeAnswer(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

export interface ProbeServer {
  readonly server: Server;
  /** the bound port (the one asked for, or the one picked for port 0) */
  readonly port: number;
  /** stop listening; resolves when open connections finished */
  close(): Promise<void>;
}

async function answer(req: IncomingMessage, res: ServerResponse, opts: ProbeOptions): Promise<void> {
  const paths = probePaths(opts);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    writeAnswer(res, 405, TEXT, `only GET ${paths.join(', ')} here\n`);
    return;
  }
  const a = await probeAnswer(new URL(req.url ?? '/', 'http://probe').pathname, opts);
  if (a) writeAnswer(res, a.status, a.contentType, a.body);
  else writeAnswer(res, 404, TEXT, `only GET ${paths.join(', ')} here\n`);
}

/** Listen on `host:port` (port 0: any free one) and answer the probe paths only. */
export async function serveProbes(opts: ProbeOptions & { host: string; port: number }): Promise<ProbeServer> {
  const server = createServer((req, res) => {
    answer(req, res, opts).catch((err: unknown) => {
      if (res.headersSent) res.destroy();
      else writeAnswer(res, 500, TEXT, `${(err as Error).message}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
