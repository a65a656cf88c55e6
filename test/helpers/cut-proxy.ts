// A TCP proxy (node:net) between an HTTP/1.1 client and server that can cut
// one request in the middle: for tests of "the client died mid-request".
//
//   const p = await CutProxy.start();            // listening on 127.0.0.1:<port>
//   p.setTarget('http://127.0.0.1:9477');        // connections wait until a target is set
//   p.arm({ method: 'PUT', path: '/v1/config', forward: 'half', holdResponse: false });
//   … the client sends PUT /v1/config: the headers and half the body reach the server,
//     the rest is kept back; p.cuts[0] tells what happened …
//   p.disarm();                                   // new requests pass again
//
// Requests are framed by Content-Length (a chunked request is recorded as an
// error: the cut point would be meaningless). Everything else passes through
// unchanged, in both directions, on kept-alive connections too. Once a
// connection carried a cut request, nothing more of the client's bytes is
// forwarded on it; when one side closes, the other side is ended (FIN), as a
// kernel does for a process that was killed.
import net from 'node:net';

export interface CutPolicy {
  method: string;
  path: string;
  /** how much of the body reaches the server: none (headers only), half, all, or a byte count */
  forward: 'none' | 'half' | 'all' | number;
  /** keep the server's answer from the client (with forward 'all': the server applied it, the client never learns) */
  holdResponse: boolean;
}

export interface CutRequest {
  method: string;
  path: string;
  contentLength: number;
  /** body bytes the server was given */
  forwardedBodyBytes: number;
  /** body bytes the client sent (so far) */
  receivedBodyBytes: number;
  /** the body bytes the client sent, all of them (also those kept back) */
  body(): Buffer;
  /** the status line of the server's answer, once one came (held or not), and when (Date.now()) */
  responseStatus: string | null;
  responseAt: number | null;
  /** the client closed the connection, and when */
  clientClosed: boolean;
  clientClosedAt: number | null;
  /** the server closed the connection */
  serverClosed: boolean;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 << 10;

interface Conn {
  client: net.Socket;
  server: net.Socket | null;
  /** the request being framed: bytes of its head seen so far, or its body left */
  head: Buffer;
  bodyLeft: number;
  /** the cut request on this connection */
  cut: (CutRequest & { chunks: Buffer[]; forwardLimit: number; hold: boolean }) | null;
}

export class CutProxy {
  readonly cuts: CutRequest[] = [];
  /** protocol problems seen (a chunked request, an oversized head): a test should assert this is empty */
  readonly errors: string[] = [];
  private readonly server: net.Server;
  private readonly conns = new Set<Conn>();
  private target: { host: string; port: number } | null = null;
  private targetWaiters: (() => void)[] = [];
  private policy: CutPolicy | null = null;

  private constructor(server: net.Server) {
    this.server = server;
  }

  static async start(): Promise<CutProxy> {
    const server = net.createServer();
    const p = new CutProxy(server);
    server.on('connection', (s) => p.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return p;
  }

  /** http://127.0.0.1:<port> */
  get url(): string {
    const a = this.server.address() as net.AddressInfo;
    return `http://127.0.0.1:${a.port}`;
  }

  /** Where connections go (http://host:port); connections made before wait for it. */
  setTarget(url: string): void {
    const u = new URL(url);
    this.target = { host: u.hostname, port: Number(u.port) };
    const w = this.targetWaiters;
    this.targetWaiters = [];
    for (const f of w) f();
  }

  /** The next matching request of every connection is cut (until disarm). */
  arm(policy: CutPolicy): void {
    this.policy = policy;
  }

  disarm(): void {
    this.policy = null;
  }

  /** Close the listener and every connection. */
  async close(): Promise<void> {
    for (const c of this.conns) {
      c.client.destroy();
      c.server?.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    const c: Conn = { client, server: null, head: Buffer.alloc(0), bodyLeft: 0, cut: null };
    this.conns.add(c);
    client.pause();
    client.on('error', () => undefined);
    const connect = (): void => {
      if (client.destroyed) return;
      const t = this.target!;
      const server = net.connect(t.port, t.host);
      c.server = server;
      server.on('error', () => undefined);
      server.on('data', (d: Buffer) => this.fromServer(c, d));
      server.on('close', () => {
        if (c.cut) c.cut.serverClosed = true;
        client.end();
      });
      client.on('data', (d: Buffer) => this.fromClient(c, d));
      client.on('close', () => {
        if (c.cut) {
          c.cut.clientClosed = true;
          c.cut.clientClosedAt = Date.now();
        }
        server.end();
        this.conns.delete(c);
      });
      server.once('connect', () => client.resume());
    };
    if (this.target) connect();
    else this.targetWaiters.push(connect);
  }

  private fromServer(c: Conn, d: Buffer): void {
    const cut = c.cut;
    if (cut && cut.responseStatus === null) {
      const text = d.toString('latin1');
      cut.responseStatus = text.slice(0, Math.max(0, text.indexOf('\r\n'))) || text.slice(0, 100);
      cut.responseAt = Date.now();
    }
    if (cut?.hold) return;
    c.client.write(d);
  }

  private fromClient(c: Conn, d: Buffer): void {
    const server = c.server!;
    let data = d;
    while (data.length > 0) {
      if (c.cut) {
        // the cut request's body (forward up to its limit), then nothing more of this connection
        const cut = c.cut;
        const bodyPart = data.subarray(0, Math.max(0, cut.contentLength - cut.receivedBodyBytes));
        if (bodyPart.length > 0) {
          cut.chunks.push(Buffer.from(bodyPart));
          const fwd = Math.min(bodyPart.length, Math.max(0, cut.forwardLimit - cut.forwardedBodyBytes));
          if (fwd > 0) server.write(bodyPart.subarray(0, fwd));
          cut.forwardedBodyBytes += fwd;
          cut.receivedBodyBytes += bodyPart.length;
        }
        return;
      }
      if (c.bodyLeft > 0) {
        const n = Math.min(c.bodyLeft, data.length);
        server.write(data.subarray(0, n));
        c.bodyLeft -= n;
        data = data.subarray(n);
        continue;
      }
      // a request head
      const buf = Buffer.concat([c.head, data]);
      const end = buf.indexOf(HEAD_END);
      if (end < 0) {
        if (buf.length > MAX_HEAD) {
          this.errors.push(`a request head larger than ${MAX_HEAD} bytes`);
          c.client.destroy();
          return;
        }
        c.head = buf;
        return;
      }
      const headBytes = buf.subarray(0, end + HEAD_END.length);
      data = buf.subarray(end + HEAD_END.length);
      c.head = Buffer.alloc(0);
      const lines = headBytes.toString('latin1').split('\r\n');
      const [method = '', target = ''] = (lines[0] ?? '').split(' ');
      const headers = new Map<string, string>();
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
      }
      if ((headers.get('transfer-encoding') ?? '').toLowerCase().includes('chunked')) {
        this.errors.push(`${method} ${target}: a chunked request (the proxy frames requests by Content-Length)`);
      }
      const contentLength = Number(headers.get('content-length') ?? 0);
      const p = this.policy;
      const pathOnly = target.split('?')[0];
      server.write(headBytes);
      if (p && method === p.method && pathOnly === p.path) {
        const forwardLimit = p.forward === 'none' ? 0 : p.forward === 'half' ? Math.floor(contentLength / 2) : p.forward === 'all' ? contentLength : p.forward;
        const chunks: Buffer[] = [];
        const cut: Conn['cut'] = {
          method, path: pathOnly, contentLength, forwardedBodyBytes: 0, receivedBodyBytes: 0,
          body: () => Buffer.concat(chunks), responseStatus: null, responseAt: null, clientClosed: false, clientClosedAt: null, serverClosed: false,
          chunks, forwardLimit, hold: p.holdResponse,
        };
        c.cut = cut;
        this.cuts.push(cut);
        continue;
      }
      c.bodyLeft = contentLength;
    }
  }
}
