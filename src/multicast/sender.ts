// The seed's broadcast (docs/multicast.md; docs/architecture.md "Components"): every
// synthetic event as one UDP datagram to the group, from receiver_bind_ip.
// A receiver like any other: it sits behind a bounded queue, so a slow or
// broken network never holds up the bus; what cannot be sent is counted.
// Each batch the queue hands over goes out with one sendmmsg(2) (the udp
// addon): the datagrams are packed into one buffer (DatagramPacker), each the
// bytes encode() makes of its event; Node's dgram cost a call, a Buffer and a
// callback per datagram, a sixth of the agent's CPU under a storm (issue 14).
//
// Every event the sender is handed uses up one sequence number, also when it
// is dropped (queue full, too large, send error): listeners then see the gap
// and count the loss, wherever it happened.
//
// Acknowledged (docs/architecture.md "Acknowledgement"): the datagram was
// sent to the socket (nobody confirms receipt), or dropped and counted.
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { Ack } from '../contracts/ack.ts';
import type { StorageEvent } from '../events/schema.ts';
import { RateLimited } from '../log/rate-limit.ts';
import { loadNative, type Native } from '../native/index.ts';
import { loadUdp, type UdpNative } from '../native/udp.ts';
import { errnoName } from '../native/unixdgram.ts';
import { QueuedReceiver, type ReceiverDeps } from '../receivers/queued.ts';
import { DatagramPacker, SENDER_ID_BYTES } from './envelope.ts';
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
/**
 * A full send buffer (EAGAIN) is waited out this long, then the rest of the
 * batch is dropped and counted: the queue behind it keeps moving.
 */
const WRITABLE_WAIT_MS = 1000;
const MAX_FRUITLESS_WAITS = 3;

export class MulticastSender extends QueuedReceiver {
  /** random per sender instance (agent start, configuration reload) */
  readonly senderId: Buffer = randomBytes(SENDER_ID_BYTES);
  private readonly opts: MulticastSenderOptions;
  private readonly m: SenderMetrics;
  private seq = 0;
  private readonly udp: UdpNative;
  private readonly uv: Native;
  /** the socket, once bound and set up; -1 before, after a failed bind and after shutdown */
  private fd = -1;
  /** the group and port as a socket address (udp.address) */
  private readonly dest: Buffer;
  private readonly status = new Int32Array(1);
  private readonly packer: DatagramPacker;
  private rebindTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** ends a wait for writability early (shutdown) */
  private cancelWait: (() => void) | null = null;
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
    this.udp = loadUdp();
    this.uv = loadNative();
    this.dest = Buffer.alloc(this.udp.SOCKADDR_BYTES);
    if (this.udp.address(opts.group, opts.port, this.dest) < 0) throw new Error(`[main] receiver_multicast_ip ${opts.group} port ${opts.port}: not a numeric IP address and port`);
    this.packer = new DatagramPacker({ sender: this.senderId, maxDatagram: opts.maxDatagram, key: this.key });
    this.errorLog = new RateLimited(LOG_INTERVAL_MS, (errs, more) => {
      deps.log.error({ receiver: name, err: errs[0], more }, 'multicast send failed; events dropped (listeners count them as lost)');
    }, { keep: 1 });
    this.bind();
  }

  /** The sequence number the last event used (0: none yet). */
  get lastSeq(): number {
    return this.seq;
  }

  /**
   * A socket bound to receiver_bind_ip (any port) with the multicast
   * options Node's dgram set before: the interface (multicast_interface, default
   * the bind address), the TTL and loopback. On failure: counted, logged,
   * tried again in REBIND_MS; events are dropped (send_error) meanwhile.
   */
  private bind(): void {
    const { log } = this.deps;
    const { udp } = this;
    const o = this.opts;
    const fail = (what: string, negErrno: number, fd: number) => {
      if (fd >= 0) udp.close(fd);
      this.m.errors.inc();
      this.deps.metrics.pluginUp.labels(this.name).set(0);
      log.error({ receiver: this.name, bind: o.bindIp, err: `${what} ${errnoName(negErrno)}`, retryInSeconds: REBIND_MS / 1000 }, 'multicast sender cannot bind; events are dropped until it can');
      if (!this.stopped) {
        this.rebindTimer = setTimeout(() => {
          this.rebindTimer = null;
          this.bind();
        }, REBIND_MS);
        this.rebindTimer.unref();
      }
    };
    const local = Buffer.alloc(udp.SOCKADDR_BYTES);
    const iface = Buffer.alloc(udp.SOCKADDR_BYTES);
    if (udp.address(o.bindIp, 0, local) < 0) return fail(`address ${o.bindIp}`, -udp.EINVAL, -1);
    if (udp.address(o.interfaceIp ?? o.bindIp, 0, iface) < 0) return fail(`address ${o.interfaceIp ?? o.bindIp}`, -udp.EINVAL, -1);
    const fd = udp.socket(isIP(o.group) === 6 ? 6 : 4);
    if (fd < 0) return fail('socket', fd, -1);
    let r = udp.bind(fd, local);
    if (r < 0) return fail(`bind ${o.bindIp}`, r, fd);
    r = udp.multicastOptions(fd, iface, o.ttl, o.loopback);
    if (r < 0) return fail('setsockopt (multicast interface, TTL, loopback)', r, fd);
    this.fd = fd;
    this.deps.metrics.pluginUp.labels(this.name).set(1);
    log.info({ receiver: this.name, group: `${o.group}:${o.port}`, bind: o.bindIp, sender: this.senderId.toString('hex'), signed: this.key !== undefined }, 'multicast sender ready');
  }

  override deliver(ev: StorageEvent, ack: Ack): boolean {
    if (super.deliver(ev, ack)) return true;
    this.seq++;
    this.m.dropped.labels('queue_full').inc();
    return false;
  }

  /**
   * The batch packed into one buffer (one datagram each, the same bytes as
   * encode() makes) and handed to the kernel with sendmmsg, as many a call
   * as it takes: a full send buffer (EAGAIN) waits for writability, never
   * spins; a datagram the kernel refuses otherwise (ENOBUFS, EPERM, …) is
   * dropped and counted, and the rest go on.
   */
  protected async write(batch: StorageEvent[]): Promise<number> {
    if (this.fd < 0) {
      this.seq += batch.length;
      this.m.dropped.labels('send_error').inc(batch.length);
      this.errorLog.push('the socket is not bound');
      return batch.length;
    }
    const p = this.packer;
    p.reset();
    const nowMs = Date.now();
    for (const ev of batch) {
      const res = p.add(ev, ++this.seq, nowMs);
      if (res === 'ok') continue;
      if (res === 'truncated') {
        this.m.truncated.inc();
        continue;
      }
      this.m.dropped.labels('too_large').inc();
      this.errorLog.push(`event ${ev.event_id}: ${res.reason}`);
    }
    const count = p.count;
    /** events of the batch not sent (too large, refused): QueuedReceiver counts them dropped, not sent */
    let dropped = batch.length - count;
    let from = 0;
    /** waits in a row after which not one datagram went: a socket that says writable and then is not must not loop */
    let fruitless = 0;
    while (from < count) {
      if (this.fd < 0) {
        // shut down while waiting: the rest is dropped
        this.m.dropped.labels('send_error').inc(count - from);
        return dropped + count - from;
      }
      const n = this.udp.send(this.fd, this.dest, p.buf, p.ends, from, count, this.status);
      if (n > 0) this.m.sent.inc(n);
      from += n;
      if (from >= count) break;
      const errno = this.status[0]!;
      if (errno === this.udp.EAGAIN) {
        fruitless = n > 0 ? 0 : fruitless + 1;
        if (fruitless <= MAX_FRUITLESS_WAITS && (await this.waitWritable())) continue;
        if (this.fd < 0) continue; // shut down while waiting: dropped at the top of the loop
        this.m.errors.inc();
        this.m.dropped.labels('send_error').inc(count - from);
        this.errorLog.push(`the socket's send buffer stayed full (${WRITABLE_WAIT_MS} ms, or ${MAX_FRUITLESS_WAITS} wakeups without a datagram sent)`);
        return dropped + count - from;
      }
      this.m.errors.inc();
      this.m.dropped.labels('send_error').inc();
      this.errorLog.push(`send ${errnoName(-errno)} ${this.opts.group}:${this.opts.port}`);
      dropped++;
      from++;
    }
    return dropped;
  }

  /** True once the socket takes more, false after WRITABLE_WAIT_MS or at shutdown. */
  private waitWritable(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let handle: unknown = null;
      const finish = (writable: boolean): void => {
        clearTimeout(timer);
        if (handle !== null) this.uv.pollStop(handle);
        handle = null;
        this.cancelWait = null;
        resolve(writable);
      };
      const timer = setTimeout(() => finish(false), WRITABLE_WAIT_MS);
      this.cancelWait = () => finish(false);
      try {
        handle = this.uv.pollStart(this.fd, this.udp.WRITABLE, (status) => finish(status >= 0));
      } catch {
        // cannot poll the socket: the timer ends the wait
      }
    });
  }

  protected override async shutdown(): Promise<void> {
    this.stopped = true;
    if (this.rebindTimer) clearTimeout(this.rebindTimer);
    this.rebindTimer = null;
    this.cancelWait?.();
    this.errorLog.flush();
    const fd = this.fd;
    this.fd = -1;
    if (fd >= 0) this.udp.close(fd);
  }
}
