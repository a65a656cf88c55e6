// The receiving side of the seed's broadcast: joins the group, decodes each
// datagram, and follows every sender's sequence numbers so that a gap is
// reported as lost events. Used by `peripety receive` (out-of-process
// receivers) and `prpt monitor`.
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { Registry } from 'prom-client';
import type { StorageEvent } from '../events/schema.ts';
import { decode } from './envelope.ts';
import { type ListenerMetrics, listenerMetrics } from './metrics.ts';

export type Observation =
  /** a sender not seen before (or forgotten): nothing is assumed about earlier numbers */
  | { kind: 'first' }
  | { kind: 'next' }
  /** `lost` numbers fromSeq…toSeq never arrived (so far) */
  | { kind: 'gap'; lost: number; fromSeq: number; toSeq: number }
  /** already seen: ignore */
  | { kind: 'duplicate' }
  /** arrived after later ones, when its number had already been counted as lost */
  | { kind: 'late' }
  /** older than the window: cannot tell a duplicate from a late one; ignore */
  | { kind: 'stale' };

interface SenderState {
  highest: number;
  /** seen[seq % window] for seq in (highest - window, highest] */
  seen: Uint8Array;
}

export interface TrackerOptions {
  /** senders tracked at once; the least recently heard is forgotten first */
  maxSenders?: number;
  /** how far back a datagram may arrive late and still be told from a duplicate */
  window?: number;
}

/** Per-sender sequence bookkeeping; bounded in senders and per-sender memory. Pure. */
export class SequenceTracker {
  private readonly senders = new Map<string, SenderState>();
  private readonly maxSenders: number;
  private readonly window: number;
  /** senders forgotten to stay within maxSenders */
  evicted = 0;

  constructor(opts: TrackerOptions = {}) {
    this.maxSenders = Math.max(1, Math.floor(opts.maxSenders ?? 256));
    this.window = Math.max(1, Math.floor(opts.window ?? 1024));
  }

  get size(): number {
    return this.senders.size;
  }

  has(sender: string): boolean {
    return this.senders.has(sender);
  }

  observe(sender: string, seq: number): Observation {
    const w = this.window;
    let st = this.senders.get(sender);
    if (st === undefined) {
      st = { highest: seq, seen: new Uint8Array(w) };
      st.seen[seq % w] = 1;
      this.senders.set(sender, st);
      if (this.senders.size > this.maxSenders) {
        // Map iteration order is insertion order and every observation
        // re-inserts its sender: the first key is the least recently heard.
        this.senders.delete(this.senders.keys().next().value!);
        this.evicted++;
      }
      return { kind: 'first' };
    }
    this.senders.delete(sender);
    this.senders.set(sender, st);
    if (seq > st.highest) {
      const from = st.highest + 1;
      if (seq - st.highest >= w) st.seen.fill(0);
      else for (let s = from; s < seq; s++) st.seen[s % w] = 0;
      st.seen[seq % w] = 1;
      st.highest = seq;
      return seq === from ? { kind: 'next' } : { kind: 'gap', lost: seq - from, fromSeq: from, toSeq: seq - 1 };
    }
    if (seq <= st.highest - w) return { kind: 'stale' };
    if (st.seen[seq % w] === 1) return { kind: 'duplicate' };
    st.seen[seq % w] = 1;
    return { kind: 'late' };
  }
}

export interface ReceivedInfo {
  sender: string;
  seq: number;
  truncated: boolean;
  /** the sender's address and port */
  address: string;
}

export interface GapInfo {
  sender: string;
  address: string;
  lost: number;
  fromSeq: number;
  toSeq: number;
}

export interface ListenerOptions {
  group: string;
  /** 0: any free port (tests) */
  port: number;
  /** local address of the interface to join on; default: the kernel's choice by route */
  interfaceIp?: string;
  tracker?: TrackerOptions;
  /**
   * SO_RCVBUF to ask for (the kernel caps it at net.core.rmem_max): a burst of
   * events arrives faster than one event loop turn reads; default 4 MiB
   */
  recvBufferBytes?: number;
  /** where the peripety_multicast_* listener metrics go (none when absent) */
  registry?: Registry;
  onEvent(ev: StorageEvent, info: ReceivedInfo): void;
  onLost?(gap: GapInfo): void;
  onMalformed?(reason: string, address: string): void;
  /** the first datagram of a sender not tracked before */
  onSender?(sender: string, address: string): void;
}

const DEFAULT_RECV_BUFFER = 4 << 20;

export interface ListenerStats {
  received: number;
  /** net: numbers counted lost, minus those that arrived late */
  lost: number;
  duplicates: number;
  reordered: number;
  malformed: number;
  senders: number;
}

export class MulticastListener {
  private readonly opts: ListenerOptions;
  private readonly tracker: SequenceTracker;
  private readonly m: ListenerMetrics | null;
  private socket: dgram.Socket | null = null;
  readonly stats: ListenerStats = { received: 0, lost: 0, duplicates: 0, reordered: 0, malformed: 0, senders: 0 };

  constructor(opts: ListenerOptions) {
    this.opts = opts;
    this.tracker = new SequenceTracker(opts.tracker);
    this.m = opts.registry ? listenerMetrics(opts.registry) : null;
  }

  /** Bind, join the group; resolves with the bound port. Throws with a clear message when it cannot. */
  async start(): Promise<{ port: number }> {
    const { group, port, interfaceIp } = this.opts;
    const family = isIP(group);
    if (family === 0) throw new Error(`${group} is not an IP address`);
    if (interfaceIp !== undefined && isIP(interfaceIp) !== family) throw new Error(`the interface address ${interfaceIp} is not of the group's IP family`);
    // reuseAddr: several listeners on one host (prpt monitor beside peripety receive) share the port.
    const socket = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', reuseAddr: true, recvBufferSize: this.opts.recvBufferBytes ?? DEFAULT_RECV_BUFFER });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      // Bound to the group address, the socket gets that group's datagrams only (Linux).
      socket.bind({ address: group, port, exclusive: false }, () => {
        socket.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      socket.close();
      throw new Error(`cannot bind ${group}:${port}: ${(err as Error).message}`);
    });
    try {
      socket.addMembership(group, interfaceIp);
    } catch (err) {
      socket.close();
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      const hint = interfaceIp === undefined ? 'no route for the group? give the interface address' : `is ${interfaceIp} an address of this host?`;
      throw new Error(`cannot join ${group} on ${interfaceIp ?? 'the default interface'}: ${code} (${hint})`);
    }
    // A receive error on an unconnected UDP socket is transient; without a
    // handler it would crash the process. Keep listening.
    socket.on('error', () => {});
    socket.on('message', (msg, rinfo) => this.onMessage(msg, `${rinfo.address}:${rinfo.port}`));
    this.socket = socket;
    return { port: socket.address().port };
  }

  private onMessage(msg: Buffer, address: string): void {
    const o = this.opts;
    const d = decode(msg);
    if (!d.ok) {
      this.stats.malformed++;
      this.m?.malformed.inc();
      o.onMalformed?.(d.reason, address);
      return;
    }
    const { sender, seq, truncated, event } = d.datagram;
    const obs = this.tracker.observe(sender, seq);
    switch (obs.kind) {
      case 'duplicate':
      case 'stale':
        this.stats.duplicates++;
        this.m?.duplicates.inc();
        return;
      case 'late':
        this.stats.reordered++;
        this.stats.lost--;
        this.m?.reordered.inc();
        break;
      case 'gap':
        this.stats.lost += obs.lost;
        this.m?.lost.inc(obs.lost);
        o.onLost?.({ sender, address, lost: obs.lost, fromSeq: obs.fromSeq, toSeq: obs.toSeq });
        break;
      case 'first':
        o.onSender?.(sender, address);
        break;
      case 'next':
        break;
    }
    this.stats.senders = this.tracker.size;
    this.m?.senders.set(this.tracker.size);
    this.stats.received++;
    this.m?.received.inc();
    o.onEvent(event, { sender, seq, truncated, address });
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
