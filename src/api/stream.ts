// Live events over HTTP (GET /v1/stream, Server-Sent Events): a fan-out the
// agent adds to its receivers. It must never hold up the bus nor grow: with
// no client it only counts; each client's backlog is bounded by the bytes its
// socket has not taken yet, beyond which events are dropped for that client
// and it is told how many with an `event: lost` message.
//
// Wire format (text/event-stream):
//   id: <hub epoch>-<n>\ndata: <event JSON>\n\n     one event
//   event: lost\ndata: {"lost":N}\n\n                N events this client missed
//   : heartbeat\n\n                                 every heartbeatMs
// A client reconnecting with Last-Event-ID of the same hub epoch is told how
// many events it missed while away (nothing is replayed).
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ReceiverSink } from '../contracts/receiver.ts';
import type { Ack } from '../contracts/ack.ts';
import type { StorageEvent } from '../events/schema.ts';
import type { Logger } from '../log/logger.ts';
import { perRegistry } from '../metrics/per-registry.ts';
import { eventJson } from '../events/json.ts';

/** What the API server needs of a stream (server.ts stays a thin adapter). */
export interface StreamHandler {
  /** Take over an authenticated GET/HEAD /v1/stream request. */
  attach(req: IncomingMessage, res: ServerResponse): void;
  /** End every open stream (the server is stopping: it waits for open connections). Clients may attach again later. */
  closeAll(): void;
}

interface StreamHubOptions {
  registry?: Registry;
  log?: Logger;
  /** concurrent clients; more get 503 */
  maxClients?: number;
  /** bytes a client may have unsent before its events are dropped */
  maxBufferedBytes?: number;
  heartbeatMs?: number;
}

interface StreamMetrics {
  clients: Gauge;
  sent: Counter;
  dropped: Counter;
  rejected: Counter;
}

const streamMetrics = perRegistry((registry: Registry): StreamMetrics => {
  const registers = [registry];
  return {
    clients: new Gauge({ name: 'peripety_stream_clients', help: 'Clients connected to GET /v1/stream', registers }),
    sent: new Counter({ name: 'peripety_stream_sent_events_total', help: 'Events written to stream clients (one per client)', registers }),
    dropped: new Counter({ name: 'peripety_stream_dropped_events_total', help: 'Events not written to a stream client that was too slow (one per client)', registers }),
    rejected: new Counter({ name: 'peripety_stream_rejected_clients_total', help: 'Stream clients turned away (client limit)', registers }),
  };
});

interface Client {
  res: ServerResponse;
  /**
   * unsent bytes beyond which events are dropped; at least the stream's high
   * water mark, so a drop always follows a write that asked for 'drain', and
   * 'drain' delivers the lost notice even when no further event comes
   */
  limit: number;
  /** dropped since the last lost notice */
  pendingLost: number;
}

const DEFAULT_MAX_STREAM_CLIENTS = 16;
const DEFAULT_STREAM_BUFFER_BYTES = 1 << 20;
const DEFAULT_HEARTBEAT_MS = 15_000;

export class EventStreamHub implements ReceiverSink, StreamHandler {
  readonly name = 'stream';
  /** random per hub: Last-Event-ID from another agent run is not comparable */
  readonly epoch = randomBytes(6).toString('hex');
  private readonly clients = new Set<Client>();
  private readonly maxClients: number;
  private readonly maxBuffered: number;
  private readonly heartbeatMs: number;
  private readonly m: StreamMetrics | null;
  private readonly log: Logger | null;
  private seq = 0;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(opts: StreamHubOptions = {}) {
    this.maxClients = opts.maxClients ?? DEFAULT_MAX_STREAM_CLIENTS;
    this.maxBuffered = opts.maxBufferedBytes ?? DEFAULT_STREAM_BUFFER_BYTES;
    this.heartbeatMs = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.m = opts.registry ? streamMetrics(opts.registry) : null;
    this.log = opts.log ?? null;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  deliver(ev: StorageEvent, ack: Ack): boolean {
    // Acknowledged at once, never held: the kernel read position must not wait for a browser.
    ack.release();
    this.seq++;
    if (this.clients.size === 0) return true;
    const chunk = `id: ${this.epoch}-${this.seq}\ndata: ${eventJson(ev)}\n\n`;
    for (const c of this.clients) this.push(c, chunk);
    return true;
  }

  private push(c: Client, chunk: string): void {
    if (c.res.writableLength > c.limit) {
      c.pendingLost++;
      this.m?.dropped.inc();
      return;
    }
    this.flushLost(c);
    c.res.write(chunk);
    this.m?.sent.inc();
  }

  private flushLost(c: Client): void {
    if (c.pendingLost === 0) return;
    c.res.write(`event: lost\ndata: {"lost":${c.pendingLost}}\n\n`);
    c.pendingLost = 0;
  }

  attach(req: IncomingMessage, res: ServerResponse): void {
    const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
    if (this.clients.size >= this.maxClients) {
      this.m?.rejected.inc();
      res.writeHead(503, { ...headers, 'content-type': 'application/json', 'retry-after': '5' });
      res.end(`${JSON.stringify({ error: `too many stream clients (at most ${this.maxClients})` })}\n`);
      return;
    }
    // x-accel-buffering: proxies that honour it pass events on at once.
    // connection: close: when the stream ends the socket goes too, so the
    // server's stop() does not wait for an idle keep-alive connection.
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no', connection: 'close' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    req.socket.setNoDelay(true);
    const c: Client = { res, limit: Math.max(this.maxBuffered, res.writableHighWaterMark), pendingLost: 0 };
    res.write(`retry: 2000\n: peripety event stream ${this.epoch}\n\n`);
    const missed = this.missedSince(req.headers['last-event-id']);
    if (missed > 0) {
      c.pendingLost = missed;
      this.flushLost(c);
    }
    this.clients.add(c);
    this.m?.clients.set(this.clients.size);
    res.on('drain', () => this.flushLost(c));
    res.on('close', () => {
      this.clients.delete(c);
      this.m?.clients.set(this.clients.size);
      if (this.clients.size === 0) this.stopHeartbeat();
    });
    this.log?.debug({ clients: this.clients.size }, 'stream client connected');
    this.startHeartbeat();
  }

  /** Events published since `Last-Event-ID` when it is one of ours, else 0. */
  private missedSince(header: string | string[] | undefined): number {
    if (typeof header !== 'string') return 0;
    const m = /^([0-9a-f]{12})-(\d{1,15})$/.exec(header);
    if (!m || m[1] !== this.epoch) return 0;
    const last = Number(m[2]);
    return last <= this.seq ? this.seq - last : 0;
  }

  private startHeartbeat(): void {
    if (this.heartbeat) return;
    this.heartbeat = setInterval(() => {
      for (const c of this.clients) {
        // a client with a backlog has data coming; no need to pile on
        if (c.res.writableLength === 0) c.res.write(': heartbeat\n\n');
      }
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  closeAll(): void {
    this.stopHeartbeat();
    // A client that stopped reading would keep its connection (and the server's stop) forever.
    for (const c of this.clients) {
      if (c.res.writableLength > 0) c.res.destroy();
      else c.res.end();
    }
    this.clients.clear();
    this.m?.clients.set(0);
  }
}
