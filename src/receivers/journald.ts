// The journald receiver: one journal entry per event, written with
// journald's native protocol (one AF_UNIX datagram per entry; a sealed memfd
// passed with SCM_RIGHTS for entries too large for a datagram). The bytes
// come from journald-format.ts; this file only moves them.
//
// Nothing here blocks: the socket is non-blocking; when journald's queue is
// full (EAGAIN) the receiver waits for writability through libuv, and while
// journald is unreachable it retries with a growing delay. Meanwhile events
// pile up in the bounded queue and overflow is counted as dropped, as for
// every receiver.
//
// Acknowledged (docs/architecture.md "Acknowledgement"): sent to journald's
// socket (the datagram, or the memfd passed), or dropped and counted.
import { backoffDelay } from '../contracts/backoff.ts';
import type { StorageEvent } from '../events/schema.ts';
import { loadNative, type Native } from '../native/index.ts';
import { errnoName, loadUnixDgram, type UnixDgramNative } from '../native/unixdgram.ts';
import { encodeEvent, MAX_ENTRY_BYTES } from './journald-format.ts';
import { cancellableSleep, QueuedReceiver, ReceiverClosedError, type ReceiverDeps } from './queued.ts';
import { receiverMetrics, type ReceiverMetrics } from './receiver-metrics.ts';
import { JournaldOptions } from './options.ts';


/** What sd-journal asks for: a large send buffer delays EAGAIN and EMSGSIZE (the kernel caps it at net.core.wmem_max without CAP_NET_ADMIN). */
const SNDBUF_BYTES = 8 << 20;
/** Retry delays while journald is unreachable (socket missing, connection refused): 100 ms doubling to 5 s. */
const RETRY_BACKOFF = { initialMs: 100, maxMs: 5000 } as const;
/**
 * A safety net under the writability wait: should libuv not report the
 * socket writable (or report it writable while journald's queue is still
 * full), the send is tried again after this long anyway.
 */
const WRITABLE_RECHECK_MS = 1000;
/** At most one "still unreachable" warning per this interval. */
const WARN_EVERY_MS = 60_000;

export class JournaldReceiver extends QueuedReceiver {
  private readonly opts: JournaldOptions;
  private readonly dgram: UnixDgramNative;
  private readonly uv: Native;
  private readonly m: ReceiverMetrics;
  private readonly sndbuf: number;
  private fd = -1;
  private closing = false;
  /** the pending wait (writability or a retry delay), cancelled by shutdown */
  private cancelWait: (() => void) | null = null;
  private unreachableSince = 0;
  private lastWarn = 0;

  /** `sndbufBytes`: tests shrink the send buffer to reach EMSGSIZE with small entries */
  constructor(name: string, opts: JournaldOptions, defaultQueue: number, deps: ReceiverDeps, tuning: { sndbufBytes?: number } = {}) {
    // One event per write: a send that fails for good then drops (and
    // counts) exactly that event, not events already in the journal.
    super(name, opts.queue_size ?? defaultQueue, deps, 1);
    this.opts = opts;
    this.sndbuf = tuning.sndbufBytes ?? SNDBUF_BYTES;
    try {
      this.dgram = loadUnixDgram();
      this.uv = loadNative();
    } catch (err) {
      deps.metrics.pluginUp.labels(name).set(0); // super() marked it up
      throw err;
    }
    this.m = receiverMetrics(deps.metrics.registry);
  }

  protected async write(batch: StorageEvent[]): Promise<void> {
    for (const ev of batch) await this.sendEvent(ev);
  }

  private async sendEvent(ev: StorageEvent): Promise<void> {
    const { bytes, skipped } = encodeEvent(ev, this.opts.identifier);
    if (skipped.length > 0) {
      this.m.journalSkippedFields.labels(this.name).inc(skipped.length);
      this.deps.log.debug({ receiver: this.name, keys: skipped.slice(0, 10), event_id: ev.event_id }, 'extentions keys without a valid journal field name left out');
    }
    if (bytes.length > MAX_ENTRY_BYTES) {
      this.m.errors.labels(this.name).inc();
      throw new Error(`journal entry of ${bytes.length} bytes is larger than the ${MAX_ENTRY_BYTES}-byte limit`);
    }
    let memfd = bytes.length > this.opts.memfd_threshold_bytes;
    let waits = 0;
    let failedBefore = false;
    for (;;) {
      if (this.closing) throw new ReceiverClosedError();
      const wasConnected = this.fd >= 0;
      let r = this.connect();
      if (r >= 0) r = memfd ? this.dgram.sendMemfd(this.fd, null, bytes) : this.dgram.send(this.fd, null, bytes);
      if (r >= 0) {
        this.m.journalEntries.labels(this.name, memfd ? 'memfd' : 'datagram').inc();
        this.reachable();
        return;
      }
      const d = this.dgram;
      if (r === -d.EMSGSIZE && !memfd) {
        // larger than the socket's send buffer allows: the memfd path is what it is for
        memfd = true;
        continue;
      }
      if (r === -d.EAGAIN) {
        // journald's receive queue is full: not a failure, wait until it drains
        await this.waitWritable();
        continue;
      }
      this.m.errors.labels(this.name).inc();
      if (failedBefore) this.m.retries.labels(this.name).inc();
      failedBefore = true;
      if (r === -d.ECONNREFUSED || r === -d.ENOTCONN || r === -d.ENOENT || r === -d.ENOBUFS || r === -d.EPERM || r === -d.EACCES) {
        // journald is gone (restarting, not running) or the socket went away
        // under us: reconnect, at once the first time (a restarted journald
        // has a new socket at the same path), then after growing delays; the
        // queue bounds what piles up meanwhile
        this.closeSocket();
        if (wasConnected) continue;
        this.unreachable(r);
        await this.sleep(backoffDelay(++waits, RETRY_BACKOFF));
        continue;
      }
      throw new Error(`journald receiver: sending ${bytes.length} bytes to ${this.opts.socket}${memfd ? ' (memfd)' : ''}: ${errnoName(r)}`);
    }
  }

  /** A connected socket in this.fd; 0, or -errno when journald cannot be reached. */
  private connect(): number {
    if (this.fd >= 0) return 0;
    const fd = this.dgram.socket(this.sndbuf);
    if (fd < 0) return fd;
    // Connected, not sendto(): only then does poll() report writability by
    // the state of journald's queue (an unconnected datagram socket always
    // polls writable), and a journald restart shows as ECONNREFUSED.
    const r = this.dgram.connect(fd, this.opts.socket);
    if (r < 0) {
      this.dgram.close(fd);
      return r;
    }
    this.fd = fd;
    return 0;
  }

  private closeSocket(): void {
    if (this.fd >= 0) {
      this.dgram.close(this.fd);
      this.fd = -1;
    }
  }

  private unreachable(r: number): void {
    const now = Date.now();
    if (this.unreachableSince === 0) this.unreachableSince = now;
    if (now - this.lastWarn >= WARN_EVERY_MS) {
      this.lastWarn = now;
      this.deps.log.warn({ receiver: this.name, socket: this.opts.socket, err: errnoName(r), since: new Date(this.unreachableSince).toISOString() }, 'journald unreachable; retrying (events wait in the queue, overflow is dropped and counted)');
    }
  }

  private reachable(): void {
    if (this.unreachableSince === 0) return;
    this.deps.log.info({ receiver: this.name, socket: this.opts.socket, unreachable_ms: Date.now() - this.unreachableSince }, 'journald reachable again');
    this.unreachableSince = 0;
    this.lastWarn = 0;
  }

  /** Until the socket is writable (journald drained its queue), or WRITABLE_RECHECK_MS passed. */
  private waitWritable(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let handle: unknown = null;
      const finish = (): void => {
        clearTimeout(timer);
        if (handle !== null) this.uv.pollStop(handle);
        handle = null;
        this.cancelWait = null;
      };
      const timer = setTimeout(() => {
        finish();
        resolve();
      }, WRITABLE_RECHECK_MS);
      this.cancelWait = () => {
        finish();
        reject(new ReceiverClosedError());
      };
      try {
        handle = this.uv.pollStart(this.fd, this.dgram.WRITABLE, () => {
          finish();
          resolve();
        });
      } catch {
        // cannot poll this descriptor: the timer alone paces the retries
      }
    });
  }

  /** (a cancel left behind after the timer is a no-op; the next wait replaces it) */
  private sleep(ms: number): Promise<void> {
    const wait = cancellableSleep(ms);
    this.cancelWait = wait.cancel;
    return wait.done;
  }

  protected override async shutdown(): Promise<void> {
    // close() waited for the queue as long as it may; a send still waiting
    // for journald gives up now (its event is counted as dropped)
    this.closing = true;
    this.cancelWait?.();
    this.closeSocket();
  }
}
