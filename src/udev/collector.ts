// The udev collector: block devices coming, going and changing, from a
// NETLINK_KOBJECT_UEVENT socket (docs/udev.md). Read like the kmsg
// collector: a non-blocking socket, libuv tells us when it is readable
// (uv_poll), bounded work per wakeup, nothing in the thread pool.
//
// Uevents have no read position that survives a restart: what happens while
// the agent is down is not replayed (the kernel keeps no backlog).
import { existsSync } from 'node:fs';
import { Counter, type Registry } from 'prom-client';
import type { Collector, CollectorDeps, CollectorSink } from '../contracts/collector.ts';
import { NO_ACK } from '../contracts/ack.ts';
import type { DeviceResolver, Identity } from '../contracts/device.ts';
import { nowUs } from '../events/time.ts';
import { DrainSchedule } from '../kmsg/collector.ts';
import { RateLimitedLog } from '../log/rate-limit.ts';
import { perRegistry } from '../metrics/per-registry.ts';
import { loadNative } from '../native/index.ts';
import { GROUP_KERNEL, GROUP_UDEV, loadNetlink, META } from '../native/netlink.ts';
import { eventTypeOf, sysfsNameOf, ueventToEvent } from './events.ts';
import { LIMITS, parseUevent, type Uevent } from './uevent.ts';
import { UdevOptions } from './options.ts';


/** The system calls the collector makes (two addons; tests pass fakes). */
export interface UeventIo {
  open(groups: number, rcvbufBytes: number): { fd: number; rcvbuf: number };
  recv(fd: number, buf: Uint8Array, meta: Int32Array): number;
  close(fd: number): number;
  pollStart(fd: number, events: number, cb: (status: number, events: number) => void): unknown;
  pollStop(handle: unknown): void;
  READABLE: number;
  EAGAIN: number;
  ENOBUFS: number;
}

function nativeUeventIo(): UeventIo {
  const poll = loadNative();
  const nl = loadNetlink();
  return {
    open: nl.open, recv: nl.recv, close: nl.close, pollStart: poll.pollStart, pollStop: poll.pollStop,
    READABLE: poll.READABLE, EAGAIN: nl.EAGAIN, ENOBUFS: nl.ENOBUFS,
  };
}

type UdevDeps = CollectorDeps & {
  /** the system calls (default: the native addons) */
  io?: () => UeventIo;
};

// ---------------------------------------------------------------------------
// metrics: created once per registry (a reload builds a new collector on the
// same registry, and prom-client refuses a second metric of the same name)

const KNOWN_ACTIONS = new Set(['add', 'remove', 'change', 'move', 'online', 'offline', 'bind', 'unbind']);

interface UdevMetrics {
  uevents: Counter<'source' | 'action'>;
  rejected: Counter<'reason'>;
  dropped: Counter<'reason'>;
  skipped: Counter<'reason'>;
  udevTimeouts: Counter;
}

export const udevMetrics = perRegistry((registry: Registry): UdevMetrics => {
  const r = [registry];
  return {
    uevents: new Counter({ name: 'peripety_uevents_total', help: 'Uevents received from trusted senders, by source (kernel, udev) and action', labelNames: ['source', 'action'], registers: r }),
    rejected: new Counter({ name: 'peripety_uevents_rejected_total', help: 'Uevent datagrams refused: untrusted sender, truncated, or malformed (by parse failure)', labelNames: ['reason'], registers: r }),
    dropped: new Counter({ name: 'peripety_uevents_dropped_total', help: 'Times uevents were lost (overflow: the socket receive buffer overflowed; at least one uevent each)', labelNames: ['reason'], registers: r }),
    skipped: new Counter({ name: 'peripety_uevents_skipped_total', help: 'Uevents that became no event: subsystem not selected, action without an event, duplicate of a copy already sent', labelNames: ['reason'], registers: r }),
    udevTimeouts: new Counter({ name: 'peripety_uevents_udev_timeouts_total', help: 'Kernel uevents sent without udev properties because udevd\'s copy did not come in time', registers: r }),
  };
});

// ---------------------------------------------------------------------------

/** Every datagram fits: the parser refuses larger ones anyway. */
const BUFFER_SIZE = LIMITS.maxMessage;
const MAX_PER_WAKEUP = 512;
const TICK_MS = 1000;
/** sequence numbers of uevents already sent, so a late second copy is dropped */
const MAX_EMITTED = 8192;
const MAX_LOGGED = 10;
/** recv()'s sender slots (the addon needs at least 6) */
const META_SLOTS = 8;

type Mode = 'kernel' | 'udev' | 'both';

interface Pending {
  u: Uevent;
  /** what the resolver knew before this uevent invalidated it (a removed device has nothing else) */
  identity: Readonly<Identity> | null;
  deadline: number;
}

export class UdevCollector implements Collector {
  readonly name: string;
  private readonly opts: UdevOptions;
  private readonly deps: UdevDeps;
  private readonly sink: CollectorSink;
  private readonly metrics: UdevMetrics;
  private readonly subsystems: ReadonlySet<string>;
  private readonly hostname: string;
  private io: UeventIo | null = null;
  private fd = -1;
  private watch: unknown = null;
  private mode: Mode = 'kernel';
  private down = false;
  private downReason = '';

  /** false when the socket could not be opened (start logged why) */
  get up(): boolean {
    return !this.down;
  }
  private pendingTimer: NodeJS.Timeout | null = null;
  private rearmTimer: NodeJS.Timeout | null = null;
  private readonly drains = new DrainSchedule({ maxPerWakeup: MAX_PER_WAKEUP, tickMs: TICK_MS, drain: () => this.drain() });
  private readonly buf = Buffer.alloc(BUFFER_SIZE);
  private readonly meta = new Int32Array(META_SLOTS);
  private readonly pending = new Map<string, Pending>();
  private readonly emitted = new Set<string>();
  private rejectedLogged = 0;
  private readonly overflowLog = new RateLimitedLog({ intervalMs: 10_000 });

  constructor(name: string, opts: UdevOptions, deps: UdevDeps, sink: CollectorSink) {
    this.name = name;
    this.opts = opts;
    this.deps = deps;
    this.sink = sink;
    this.metrics = udevMetrics(deps.metrics.registry);
    this.subsystems = new Set(opts.subsystems);
    this.hostname = deps.hostname;
  }

  /** Which groups are read (after start), or 'down' when the socket could not be opened. */
  get state(): Mode | 'down' | 'stopped' {
    if (this.down) return 'down';
    return this.fd >= 0 ? this.mode : 'stopped';
  }

  get failure(): string {
    return this.downReason;
  }

  /**
   * Never throws: a node where the socket cannot be opened (no addon, no
   * permission, a sandbox without AF_NETLINK) still gets its kernel log
   * events. The failure is logged and peripety_plugin_up says 0.
   */
  start(): void {
    const { log } = this.deps;
    this.mode = this.resolveMode();
    const groups = (this.mode === 'udev' ? 0 : GROUP_KERNEL) | (this.mode === 'kernel' ? 0 : GROUP_UDEV);
    let rcvbuf = -1;
    try {
      this.io = (this.deps.io ?? nativeUeventIo)();
      const s = this.io.open(groups, this.opts.receive_buffer_bytes);
      this.fd = s.fd;
      rcvbuf = s.rcvbuf;
    } catch (err) {
      this.down = true;
      this.downReason = `cannot open the uevent netlink socket: ${(err as Error).message}`;
      log.error({ collector: this.name, err: this.downReason },
        'udev collector is down: device add/remove/change events will not be reported (needs AF_NETLINK in the host network namespace; see docs/udev.md)');
      return;
    }
    if (rcvbuf >= 0 && rcvbuf < this.opts.receive_buffer_bytes) {
      log.warn({ collector: this.name, asked: this.opts.receive_buffer_bytes, got: rcvbuf },
        'the uevent receive buffer is smaller than configured (no CAP_NET_ADMIN, net.core.rmem_max): bursts may overflow');
    }
    if (this.mode !== 'kernel' && !existsSync(this.opts.udev_control_path)) {
      log.warn({ collector: this.name, groups: this.mode, udev_control_path: this.opts.udev_control_path },
        this.mode === 'udev' ? 'udevd does not seem to run: no uevents will arrive' : `udevd does not seem to run: every kernel uevent waits ${this.opts.udev_wait_ms} ms for a udev copy`);
    }
    log.info({ collector: this.name, groups: this.mode, subsystems: this.opts.subsystems, rcvbuf }, 'udev collector started');
    this.arm();
    this.drains.start();
  }

  private resolveMode(): Mode {
    if (this.opts.groups !== 'auto') return this.opts.groups;
    return existsSync(this.opts.udev_control_path) ? 'both' : 'kernel';
  }

  private arm(): void {
    const io = this.io!;
    try {
      this.watch = io.pollStart(this.fd, io.READABLE, (status) => {
        if (status < 0) {
          // libuv stops a watch when epoll reports EPOLLERR with data (what a
          // receive buffer overflow looks like): read, which clears the
          // error, and watch again.
          if (this.watch) io.pollStop(this.watch);
          this.watch = null;
          this.drain();
          if (this.fd >= 0) this.arm();
          return;
        }
        this.drain();
      });
    } catch (err) {
      this.watch = null;
      this.deps.log.error({ collector: this.name, err: (err as Error).message }, 'cannot poll the uevent socket; retrying in 1 s (the 1 s tick still reads)');
      this.rearmTimer = setTimeout(() => {
        this.rearmTimer = null;
        if (this.fd >= 0 && this.watch === null) this.arm();
      }, 1000);
    }
  }

  /** Read what is there, at most MAX_PER_WAKEUP datagrams before yielding to the event loop. */
  private drain(): void {
    const io = this.io;
    if (!io) return;
    for (let i = 0; this.fd >= 0; i++) {
      if (!this.drains.allows(i)) return;
      const n = io.recv(this.fd, this.buf, this.meta);
      if (n === -io.EAGAIN) return;
      if (n === -io.ENOBUFS) {
        this.overflowed();
        continue;
      }
      if (n < 0) {
        this.deps.log.error({ collector: this.name, errno: -n }, 'recv on the uevent socket failed');
        return;
      }
      this.onDatagram(n);
    }
  }

  private overflowed(): void {
    this.metrics.dropped.labels('overflow').inc();
    const suppressed = this.overflowLog.admit('overflow');
    if (suppressed !== null) {
      // overflows: this one and those since the last line
      this.deps.log.warn({ collector: this.name, overflows: suppressed + 1, receive_buffer_bytes: this.opts.receive_buffer_bytes },
        'the uevent socket buffer overflowed: uevents were lost (raise receive_buffer_bytes)');
    }
  }

  private refuse(reason: string, detail: Record<string, unknown>): void {
    this.metrics.rejected.labels(reason).inc();
    if (this.rejectedLogged++ < MAX_LOGGED) this.deps.log.warn({ collector: this.name, reason, ...detail }, 'uevent refused');
  }

  private onDatagram(n: number): void {
    const meta = this.meta;
    if (meta[META.TRUNC] === 1 || n > this.buf.length) {
      this.refuse('truncated', { bytes: n });
      return;
    }
    const parsed = parseUevent(this.buf.subarray(0, n));
    if (!parsed.ok) {
      this.refuse(parsed.reason, { detail: parsed.detail });
      return;
    }
    const u = parsed.uevent;
    const port = meta[META.PORT]! >>> 0;
    const groups = meta[META.GROUPS]! >>> 0;
    const hasCred = meta[META.HAS_CRED] === 1;
    const uid = meta[META.UID]! >>> 0;
    // The kernel sends from port 0 to group 1. udevd sends from its own port
    // to group 2, as root. Anything else (a unicast, another process with
    // CAP_NET_ADMIN in this network namespace) is not to be believed.
    const trusted = u.source === 'kernel'
      ? port === 0 && (groups & GROUP_KERNEL) !== 0 && (!hasCred || uid === 0)
      : port !== 0 && (groups & GROUP_UDEV) !== 0 && hasCred && uid === 0;
    if (!trusted) {
      this.refuse('sender', { source: u.source, port, groups, uid: hasCred ? uid : null, pid: hasCred ? meta[META.PID] : null, devpath: u.devpath.slice(0, 200) });
      return;
    }
    this.onUevent(u);
  }

  /** A parsed uevent from a trusted sender (tests call this directly). */
  onUevent(u: Uevent): void {
    const m = this.metrics;
    m.uevents.labels(u.source, KNOWN_ACTIONS.has(u.action) ? u.action : 'other').inc();
    const wanted = (this.subsystems.has('*') || this.subsystems.has(u.subsystem)) && eventTypeOf(u.action) !== null;
    // Identity caches follow every block uevent, selected or not.
    const before = u.subsystem === 'block' ? this.invalidate(u, wanted) : null;
    if (!wanted) {
      m.skipped.labels(eventTypeOf(u.action) === null ? 'action' : 'subsystem').inc();
      return;
    }
    const seq = u.seqnum;
    if (seq !== '' && this.emitted.has(seq)) {
      m.skipped.labels('duplicate').inc();
      return;
    }
    if (this.mode === 'both' && seq !== '') {
      if (u.source === 'kernel') {
        if (this.opts.udev_wait_ms === 0) {
          this.emit(u, before);
          return;
        }
        if (this.pending.has(seq)) {
          m.skipped.labels('duplicate').inc();
          return;
        }
        if (this.pending.size >= this.opts.max_pending) this.releaseOldest(true);
        this.pending.set(seq, { u, identity: before, deadline: Date.now() + this.opts.udev_wait_ms });
        this.armPendingTimer();
        return;
      }
      const held = this.pending.get(seq);
      if (held) {
        this.pending.delete(seq);
        // the kernel copy: superseded by this one
        m.skipped.labels('duplicate').inc();
        this.emit(u, held.identity ?? before);
        return;
      }
    }
    this.emit(u, before);
  }

  /**
   * Drop what the resolver knows about the device; returns what it knew
   * before when `keep`: a removed device cannot be looked up afterwards, and
   * a loop device bound to another file had another identity.
   */
  private invalidate(u: Uevent, keep: boolean): Readonly<Identity> | null {
    const resolver = this.deps.resolver();
    if (!resolver) return null;
    const name = sysfsNameOf(u);
    const before = keep ? safeResolve(resolver, name) : null;
    // A dm or md device (re)configured, or a rename, changes what other
    // names resolve to (holders of multipath paths, stacks): start afresh.
    if (/^(dm-|md)/.test(name) || u.action === 'move') resolver.invalidate();
    else resolver.invalidate(name);
    return before;
  }

  private emit(u: Uevent, before: Readonly<Identity> | null): void {
    let identity = before;
    // only block devices are in the resolver: a scsi_disk "0:0:0:0" is no name of it
    if (u.action !== 'remove' && u.subsystem === 'block') {
      const resolver = this.deps.resolver();
      identity = resolver ? safeResolve(resolver, sysfsNameOf(u)) : null;
    }
    const ev = ueventToEvent(u, {
      hostname: this.hostname, bootId: this.deps.bootId, subsystems: this.subsystems, identity, previous: before, nowUs: nowUs(),
    });
    if (u.seqnum !== '') this.remember(u.seqnum);
    if (ev) this.sink.publish(ev, NO_ACK, this.name);
  }

  private remember(seq: string): void {
    this.emitted.add(seq);
    if (this.emitted.size > MAX_EMITTED) this.emitted.delete(this.emitted.values().next().value as string);
  }

  /** Send the longest-waiting kernel uevent without its udev copy. */
  private releaseOldest(timedOut: boolean): void {
    const first = this.pending.entries().next();
    if (first.done) return;
    const [seq, p] = first.value;
    this.pending.delete(seq);
    if (timedOut) this.metrics.udevTimeouts.inc();
    this.emit(p.u, p.identity);
  }

  private armPendingTimer(): void {
    if (this.pendingTimer || this.pending.size === 0) return;
    const first = this.pending.values().next();
    if (first.done) return;
    this.pendingTimer = setTimeout(() => {
      this.pendingTimer = null;
      const now = Date.now();
      // insertion order is deadline order: the wait is the same for all
      for (let p = this.pending.values().next(); !p.done && p.value.deadline <= now; p = this.pending.values().next()) this.releaseOldest(true);
      this.armPendingTimer();
    }, Math.max(0, first.value.deadline - Date.now()));
  }

  /** Stop reading; kernel uevents still waiting for their udev copy go out now. */
  stop(): void {
    this.drains.stop();
    if (this.rearmTimer) clearTimeout(this.rearmTimer);
    this.rearmTimer = null;
    if (this.pendingTimer) clearTimeout(this.pendingTimer);
    this.pendingTimer = null;
    if (this.watch && this.io) this.io.pollStop(this.watch);
    this.watch = null;
    if (this.fd >= 0 && this.io) this.io.close(this.fd);
    this.fd = -1;
    while (this.pending.size > 0) this.releaseOldest(false);
  }

  /** Nothing to persist: uevents have no position to resume from. */
  flush(): void {}
}

function safeResolve(resolver: DeviceResolver, name: string): Readonly<Identity> | null {
  try {
    return resolver.resolve({ printed: name, name });
  } catch {
    return null;
  }
}
