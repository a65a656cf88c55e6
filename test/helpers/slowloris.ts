// A slow HTTP client for hostile tests (issue 10 A5): many half-open
// requests that trickle a header line at an interval and come back whenever
// the server closes them, and a probe that GETs on a fresh connection from
// another loopback source address (127.0.0.0/8 is all local: the server sees
// a different client).
import http from 'node:http';
import net from 'node:net';

export const HEADER_EVERY_MS = 2_000;
export const PROBE_TIMEOUT_MS = 3_000;
const RECONNECT_MS = 500;

/** 200 half-open requests that trickle a header line every 2 s and come back when closed. */
export class Slowloris {
  readonly sockets = new Set<net.Socket>();
  opened = 0;
  closedByServer = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly port: number;
  private readonly count: number;
  private readonly from: string;
  constructor(port: number, count: number, from = '127.0.0.1') {
    this.port = port;
    this.count = count;
    this.from = from;
  }

  start(): void {
    for (let i = 0; i < this.count; i++) this.open();
    this.timer = setInterval(() => {
      for (const s of this.sockets) if (!s.destroyed) s.write(`x-slow-${Math.random().toString(36).slice(2, 8)}: ${'a'.repeat(8)}\r\n`);
    }, HEADER_EVERY_MS);
  }

  private open(): void {
    if (this.stopped) return;
    const s = net.connect({ host: '127.0.0.1', port: this.port, localAddress: this.from });
    this.opened++;
    this.sockets.add(s);
    s.on('connect', () => s.write('GET /healthz HTTP/1.1\r\nhost: agent\r\n'));
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => {
      this.sockets.delete(s);
      if (this.stopped) return;
      this.closedByServer++;
      // a real attacker comes back; half a second later here, so that the
      // refused reconnects do not eat the CPU of a shared 2-core test machine
      setTimeout(() => this.open(), RECONNECT_MS);
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const s of this.sockets) s.destroy();
  }
}

/** One GET on a fresh connection from 127.0.0.2: the status, or the error. */
export function probe(port: number, urlPath: string, from = '127.0.0.2'): Promise<{ ok: boolean; detail: string; body: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, localAddress: from, agent: false, timeout: PROBE_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ ok: res.statusCode === 200, detail: `${urlPath} ${res.statusCode}`, body }));
      res.on('error', (err) => resolve({ ok: false, detail: `${urlPath} ${err.message}`, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${PROBE_TIMEOUT_MS} ms`)));
    req.on('error', (err) => resolve({ ok: false, detail: `${urlPath} ${err.message}`, body: '' }));
  });
}
