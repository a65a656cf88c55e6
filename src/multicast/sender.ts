// The seed's broadcast (docs/multicast.md; docs/architecture.md "Components"): every
// synthetic event as one UDP datagram to the group, from receiver_bind_ip.
// A receiver like any other: it sits behind a bounded queue, so a slow or
// broken network never holds up the bus; what cannot be sent is counted.
//
// Every event the sender is handed uses up one sequence number, also when it
// is dropped (queue full, too large, send error): listeners then see the gap
// and count the loss, wherever it happened.
//
// Acknowledged (docs/architecture.md "Acknowledgement"): the datagram was
// sent to the socket (nobody confirms receipt), or dropped and counted.
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { Ack } from '../contracts/ack.ts';
import type { StorageEvent } from '../events/schema.ts';
import { RateLimited } from '../log/rate-limit.ts';
import { QueuedReceiver, type ReceiverDeps } from '../receivers/queued.ts';
import { encode, SENDER_ID_BYTES } from './envelope.ts';
import { loadKeyFile } from './key.ts';
import { type SenderMetrics, senderMetrics } from './metrics.ts';

export interface MulticastSenderOptions {
  group: string;
  port: number;
  /** the local address the socket binds to */
  bindIp: string;
  /** the local address of the outgoing interface; default bindIp */
  interfaceIp?: string;
  ttl: number;
  loopback: boolean;
  maxDatagram: number;
  queueSize: number;
  /** sign every datagram with the key in this file (docs/multicast.md, "Signed datagrams") */
  keyFile?: string;
}

/** After a failed bind (the address is not on this host yet), try again this often. */
const REBIND_MS = 10_000;
const LOG_INTERVAL_MS = 10_000;

export class MulticastSender extends QueuedReceiver {
  /** random per sender instance (agent start, configuration reload) */
  readonly senderId: Buffer = randomBytes(SENDER_ID_BYTES);
  private readonly opts: MulticastSenderOptions;
  private readonly m: SenderMetrics;
  private seq = 0;
  private socket: dgram.Socket | null = null;
  private bound: Promise<boolean>;
  private rebindTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly errorLog: RateLimited<string>;
  private readonly key: Buffer | undefined;

  constructor(name: string, opts: MulticastSenderOptions, deps: ReceiverDeps) {
    super(name, opts.queueSize, deps);
    const family = isIP(opts.group);
    if (family === 0 || isIP(opts.bindIp) !== family || (opts.interfaceIp !== undefined && isIP(opts.interfaceIp) !== family)) {
      throw new Error(`[main] receiver_bind_ip ${opts.bindIp}${opts.interfaceIp ? `, multicast_interface ${opts.interfaceIp}` : ''} and receiver_multicast_ip ${opts.group} must be of one IP family`);
    }
    if (opts.keyFile !== undefined) {
      // read once per sender (start, reload): a changed key takes effect with the next reload
      this.key = loadKeyFile(opts.keyFile, (w) => deps.log.warn(w), '[main] multicast_key_file: ');
    }
    this.opts = opts;
    this.m = senderMetrics(deps.metrics.registry);
    this.errorLog = new RateLimited(LOG_INTERVAL_MS, (errs, more) => {
      deps.log.error({ receiver: name, err: errs[0], more }, 'multicast send failed; events dropped (listeners count them as lost)');
    }, { keep: 1 });
    this.bound = this.bind();
  }

  /** The sequence number the last event used (0: none yet). */
  get lastSeq(): number {
    return this.seq;
  }

  private bind(): Promise<boolean> {
    const { log } = this.deps;
    const o = this.opts;
    const socket = dgram.createSocket({ type: isIP(o.group) === 6 ? 'udp6' : 'udp4' });
    return new Promise<boolean>((resolve) => {
      const fail = (err: Error) => {
        this.m.errors.inc();
        this.deps.metrics.pluginUp.labels(this.name).set(0);
        log.error({ receiver: this.name, bind: o.bindIp, err: err.message, retryInSeconds: REBIND_MS / 1000 }, 'multicast sender cannot bind; events are dropped until it can');
        socket.close();
        if (!this.stopped) {
          this.rebindTimer = setTimeout(() => {
            this.rebindTimer = null;
            this.bound = this.bind();
          }, REBIND_MS);
          this.rebindTimer.unref();
        }
        resolve(false);
      };
      socket.once('error', fail);
      socket.bind({ address: o.bindIp, port: 0, exclusive: true }, () => {
        socket.off('error', fail);
        try {
          socket.setMulticastInterface(o.interfaceIp ?? o.bindIp);
          socket.setMulticastTTL(o.ttl);
          socket.setMulticastLoopback(o.loopback);
        } catch (err) {
          fail(err as Error);
          return;
        }
        if (this.stopped) {
          socket.close();
          resolve(false);
          return;
        }
        socket.on('error', (err) => {
          this.m.errors.inc();
          this.errorLog.push(err.message);
        });
        this.socket = socket;
        this.deps.metrics.pluginUp.labels(this.name).set(1);
        log.info({ receiver: this.name, group: `${o.group}:${o.port}`, bind: o.bindIp, sender: this.senderId.toString('hex'), signed: this.key !== undefined }, 'multicast sender ready');
        resolve(true);
      });
    });
  }

  override deliver(ev: StorageEvent, ack: Ack): boolean {
    if (super.deliver(ev, ack)) return true;
    this.seq++;
    this.m.dropped.labels('queue_full').inc();
    return false;
  }

  protected async write(batch: StorageEvent[]): Promise<void> {
    const ok = await this.bound;
    const socket = this.socket;
    if (!ok || socket === null) {
      this.seq += batch.length;
      this.m.dropped.labels('send_error').inc(batch.length);
      this.errorLog.push('the socket is not bound');
      return;
    }
    const { group, port, maxDatagram } = this.opts;
    let pending = 0;
    let release: (() => void) | null = null;
    const sent = (err: Error | null) => {
      if (err) {
        this.m.errors.inc();
        this.m.dropped.labels('send_error').inc();
        this.errorLog.push(err.message);
      } else this.m.sent.inc();
      if (--pending === 0 && release) release();
    };
    const nowMs = Date.now();
    for (const ev of batch) {
      const res = encode(ev, { sender: this.senderId, seq: ++this.seq, maxDatagram, key: this.key, nowMs });
      if (!res.ok) {
        this.m.dropped.labels('too_large').inc();
        this.errorLog.push(`event ${ev.event_id}: ${res.reason}`);
        continue;
      }
      if (res.truncated) this.m.truncated.inc();
      pending++;
      try {
        socket.send(res.buf, port, group, sent);
      } catch (err) {
        sent(err as Error);
      }
    }
    if (pending > 0) await new Promise<void>((resolve) => (release = resolve));
  }

  protected override async shutdown(): Promise<void> {
    this.stopped = true;
    if (this.rebindTimer) clearTimeout(this.rebindTimer);
    this.rebindTimer = null;
    this.errorLog.flush();
    const s = this.socket;
    this.socket = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
