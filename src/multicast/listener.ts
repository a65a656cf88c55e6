// The receiving side of the seed's broadcast: joins the group, decodes each
// datagram, and follows every sender's sequence numbers so that a gap is
// reported as lost events. Used by `peripety receive` (out-of-process
// receivers) and `prpt monitor`.
//
// Anyone on the group can send (docs/multicast.md, "Signed datagrams and
// the trust model"). Without a key, a stream is (sender id, source address)
// and implausible numbers resync the stream rather than silence it; with a
// key, only datagrams that verify count, and a replay is refused.
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { Registry } from 'prom-client';
import type { StorageEvent } from '../events/schema.ts';
import { decode } from './envelope.ts';
import { type ListenerMetrics, listenerMetrics, type RejectReason } from './metrics.ts';

export type Observation =
  /** a stream not seen before (or forgotten): nothing is assumed about earlier numbers */
  | { kind: 'first' }
  | { kind: 'next' }
  /** `lost` numbers fromSeq…toSeq never arrived (so far) */
  | { kind: 'gap'; lost: number; fromSeq: number; toSeq: number }
  /** already seen: ignore */
  | { kind: 'duplicate' }
  /** arrived after later ones, when its number had already been counted as lost */
  | { kind: 'late' }
  /** older than the window: cannot tell a duplicate from a late one; ignore */
  | { kind: 'stale' }
  /**
   * an implausible jump (forward beyond maxJump, or back beyond the window):
   * not a loss; the stream starts over at this number. `retracted`: numbers
   * of the previous gap that are no longer believed lost (the jump that
   * opened it was the implausible one, and this number continues the stream
   * from before it).
   */
  | { kind: 'resync'; jump: number; retracted: number };

interface SenderState {
  highest: number;
  /** seen[seq % window] for seq in (highest - window, highest] */
  seen: Uint8Array;
  /** the last gap (for a resync that shows it was forged); null after anything else moved the window */
  lastGap: { fromSeq: number; toSeq: number; open: number } | null;
}

/**
 * A forward jump larger than this between two datagrams of one stream is
 * taken as a new stream, not as this many lost events: without a key,
 * anyone on the group can send any number under any sender id.
 */
export const DEFAULT_MAX_JUMP = 16_384;

export interface TrackerOptions {
  /** streams tracked at once; the least recently heard is forgotten first */
  maxSenders?: number;
  /** how far back a datagram may arrive late and still be told from a duplicate */
  window?: number;
  /**
   * Forward jumps beyond this, and numbers further back than the window, are
   * implausible: the stream resyncs there (see Observation `resync`).
   * Infinity: every number is believed (signed datagrams: only the key
   * holder can choose one); then a number beyond the window is `stale`.
   */
  maxJump?: number;
}

/** Per-stream sequence bookkeeping; bounded in streams and per-stream memory. Pure. */
export class SequenceTracker {
  private readonly senders = new Map<string, SenderState>();
  private readonly maxSenders: number;
  private readonly window: number;
  private readonly maxJump: number;
  /** senders forgotten to stay within maxSenders */
  evicted = 0;

  constructor(opts: TrackerOptions = {}) {
    this.maxSenders = Math.max(1, Math.floor(opts.maxSenders ?? 256));
    this.window = Math.max(1, Math.floor(opts.window ?? 1024));
    const j = opts.maxJump ?? DEFAULT_MAX_JUMP;
    this.maxJump = j === Infinity ? Infinity : Math.max(this.window, Math.floor(j));
  }

  get size(): number {
    return this.senders.size;
  }

  has(sender: string): boolean {
    return this.senders.has(sender);
  }

  private restart(st: SenderState, seq: number): void {
    st.seen.fill(0);
    st.seen[seq % this.window] = 1;
    st.highest = seq;
    st.lastGap = null;
  }

  observe(sender: string, seq: number): Observation {
    const w = this.window;
    let st = this.senders.get(sender);
    if (st === undefined) {
      st = { highest: seq, seen: new Uint8Array(w), lastGap: null };
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
      const jump = seq - st.highest;
      if (jump > this.maxJump) {
        this.restart(st, seq);
        return { kind: 'resync', jump, retracted: 0 };
      }
      if (jump >= w) st.seen.fill(0);
      else for (let s = from; s < seq; s++) st.seen[s % w] = 0;
      st.seen[seq % w] = 1;
      st.highest = seq;
      if (seq === from) {
        st.lastGap = null;
        return { kind: 'next' };
      }
      st.lastGap = { fromSeq: from, toSeq: seq - 1, open: seq - from };
      return { kind: 'gap', lost: seq - from, fromSeq: from, toSeq: seq - 1 };
    }
    if (seq <= st.highest - w) {
      if (this.maxJump === Infinity) return { kind: 'stale' };
      // Far behind: either a datagram older than the window (rare on any
      // network) or the stream continuing after a forged jump ahead. Both
      // are delivered; in the second case the gap that jump opened was never
      // a loss.
      const g = st.lastGap;
      const retracted = g !== null && seq >= g.fromSeq && seq <= g.toSeq + 1 ? g.open : 0;
      const jump = seq - st.highest;
      this.restart(st, seq);
      return { kind: 'resync', jump, retracted };
    }
    if (st.seen[seq % w] === 1) return { kind: 'duplicate' };
    st.seen[seq % w] = 1;
    const g = st.lastGap;
    if (g !== null && seq >= g.fromSeq && seq <= g.toSeq) g.open--;
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


/** A signed datagram whose time is further than this from the receiver's clock is refused as `expired`. */
export const DEFAULT_MAX_AGE_MS = 60_000;

export interface ResyncInfo {
  sender: string;
  address: string;
  /** seq minus the highest number seen before */
  jump: number;
  seq: number;
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
   * The shared key (docs/multicast.md, "Signed datagrams"): only version 2
   * datagrams with a matching MAC and a time within maxAgeMs are accepted,
   * and each sender id (authenticated) is followed wherever it comes from,
   * so a datagram replayed from anywhere is a duplicate. Without a key every
   * (sender id, source address) is its own stream, and implausible jumps
   * resync instead of counting as loss.
   */
  key?: Uint8Array;
  /** signed datagrams: how far their time may be from this host's clock; default DEFAULT_MAX_AGE_MS */
  maxAgeMs?: number;
  /** ms since the epoch (tests) */
  now?: () => number;
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
  /** a datagram refused by the key checks */
  onRejected?(reason: RejectReason, address: string, detail: string): void;
  /** an implausible jump: the stream starts over (see SequenceTracker) */
  onResync?(info: ResyncInfo): void;
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
  /** refused by the key checks (forged, changed, unsigned, expired, replayed) */
  rejected: number;
  /** implausible jumps: streams started over instead of counting a loss */
  resyncs: number;
  senders: number;
}

export function emptyStats(): ListenerStats {
  return { received: 0, lost: 0, duplicates: 0, reordered: 0, malformed: 0, rejected: 0, resyncs: 0, senders: 0 };
}

export class MulticastListener {
  private readonly opts: ListenerOptions;
  private readonly tracker: SequenceTracker;
  private readonly m: ListenerMetrics | null;
  private socket: dgram.Socket | null = null;
  readonly stats: ListenerStats = emptyStats();
  private readonly key: Uint8Array | undefined;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(opts: ListenerOptions) {
    this.opts = opts;
    this.key = opts.key !== undefined && opts.key.length > 0 ? opts.key : undefined;
    this.maxAgeMs = opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.now = opts.now ?? Date.now;
    // Signed: a sequence number is as trustworthy as the event, so every jump is believed.
    this.tracker = new SequenceTracker(this.key ? { ...opts.tracker, maxJump: Infinity } : opts.tracker);
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

  private reject(reason: RejectReason, address: string, detail: string): void {
    this.stats.rejected++;
    this.m?.rejected.labels(reason).inc();
    this.opts.onRejected?.(reason, address, detail);
  }

  private onMessage(msg: Buffer, address: string): void {
    const o = this.opts;
    const d = decode(msg, { key: this.key });
    if (!d.ok) {
      if (d.code === 'malformed') {
        this.stats.malformed++;
        this.m?.malformed.inc();
        o.onMalformed?.(d.reason, address);
      } else this.reject(d.code, address, d.reason);
      return;
    }
    const { sender, seq, truncated, event, timeMs } = d.datagram;
    if (this.key !== undefined && timeMs !== null) {
      const skew = timeMs - this.now();
      if (Math.abs(skew) > this.maxAgeMs) {
        this.reject('expired', address, `the datagram's time is ${Math.round(skew / 1000)} s from this host's clock (at most ${this.maxAgeMs / 1000} s): replayed, or the clocks differ`);
        return;
      }
    }
    // Signed: the sender id is authenticated; follow it wherever it comes
    // from, so a replay from another address is still a duplicate. Unsigned:
    // anyone can claim any id; a claim from another address is another
    // stream and cannot disturb the genuine one.
    const stream = this.key !== undefined ? sender : `${sender}@${address}`;
    const obs = this.tracker.observe(stream, seq);
    switch (obs.kind) {
      case 'duplicate':
      case 'stale':
        if (this.key !== undefined) {
          // a signed datagram seen before: replayed (or, rarely, duplicated by the network)
          this.reject('replayed', address, `sender ${sender} seq ${seq} was already received or is older than the window`);
          return;
        }
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
      case 'resync':
        this.stats.resyncs++;
        this.m?.resyncs.inc();
        if (obs.retracted > 0) {
          this.stats.lost -= obs.retracted;
          this.m?.retracted.inc(obs.retracted);
        }
        o.onResync?.({ sender, address, jump: obs.jump, seq });
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
