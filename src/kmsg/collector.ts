// The kmsg collector: reads the real /dev/kmsg (docs/events.md §5) without ever
// blocking the event loop or parking a thread-pool thread in read(): the
// descriptor is non-blocking and libuv tells us when it is readable (native
// uv_poll). One read() returns exactly one record; one native call makes
// many reads (readRecords).
import { closeSync, constants, openSync } from 'node:fs';
import type { Logger } from '../log/logger.ts';
import type { AgentMetrics } from '../metrics/agent-metrics.ts';
import { loadNative, type Native, SEEK_SET } from '../native/index.ts';
import type { Ack } from '../contracts/ack.ts';
import { Backoff } from '../contracts/backoff.ts';
import { SeqTracker } from './checkpoint.ts';
import { POSITION_FILE, readPosition, writePosition } from './position.ts';
import { parseKmsgRecord } from './record.ts';
import type { KernelRecord } from '../contracts/record.ts';
import { KmsgOptions } from './options.ts';


/**
 * The read position is written at most this often (and at every flush: stop,
 * reload, shutdown). Writing it on every commit cost a file write and a
 * rename per record at moderate rates — a quarter of the agent's CPU at ~600
 * lines/s (issue 14). A crash (kill -9) re-reads at most this much: records
 * past the saved position come again with the same event_id, none is skipped
 * (test/root/agent-kmsg.test.ts).
 */
const SAVE_INTERVAL_MS = 1000;

interface KmsgSink {
  record(rec: KernelRecord, ack: Ack): void;
  /** `lost` records between `afterSeq` and `nextSeq` were overwritten before they were read */
  overrun(lost: number, afterSeq: number, nextSeq: number, ack: Ack): void;
}

interface KmsgDeps {
  stateDir: string;
  bootId: string;
  log: Logger;
  metrics: AgentMetrics;
  /** storage can take records read again after a loss held the position (absent: never; the next start does it) */
  replayReady?: () => boolean;
}

/**
 * How a collector reading a non-blocking descriptor (this one, and the udev
 * collector) drains it besides its poll wakeups:
 * - bounded work per wakeup: at most `maxPerWakeup` reads, then yield to the
 *   event loop (timers, signals, receivers) and go on at once after that
 *   (setImmediate), not on the next poll wakeup, which may never come: the
 *   descriptor can still hold data libuv will not report again;
 * - a tick: one more drain every `tickMs` while started, so a wakeup that
 *   poll misses costs at most that long.
 */
export class DrainSchedule {
  private readonly maxPerWakeup: number;
  private readonly tickMs: number;
  private readonly drain: () => void;
  private continueScheduled = false;
  private tickTimer: NodeJS.Timeout | null = null;

  constructor(opts: { maxPerWakeup: number; tickMs: number; drain: () => void }) {
    this.maxPerWakeup = opts.maxPerWakeup;
    this.tickMs = opts.tickMs;
    this.drain = opts.drain;
  }

  /** Start the tick, and drain now. */
  start(): void {
    this.tickTimer = setInterval(this.drain, this.tickMs);
    this.tickTimer.unref();
    this.drain();
  }

  /** Stop the tick; a continuation already scheduled finds the descriptor closed. */
  stop(): void {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = null;
  }

  /** True while `reads` (0-based, in this drain) is within the budget; at the limit, schedules the continuation (once) and returns false. */
  allows(reads: number): boolean {
    if (reads < this.maxPerWakeup) return true;
    if (!this.continueScheduled) {
      this.continueScheduled = true;
      setImmediate(() => {
        this.continueScheduled = false;
        this.drain();
      });
    }
    return false;
  }
}

/** A record can be up to ~8 KiB with its dictionary; a smaller buffer gets EINVAL (and the record stays unread). */
const RECORD_ROOM = 16 * 1024;
/**
 * One readRecords() call fills at most this much: ~2,000 storm lines of
 * ~110 bytes, at least 16 records of the largest size (RECORD_ROOM).
 */
const BUFFER_SIZE = 256 * 1024;
/** and at most this many records */
const MAX_RECORDS_PER_CALL = 512;
const MAX_PER_WAKEUP = 2048;
const TICK_MS = 1000;
/** after a loss held the position: the first replay waits 2 s, later ones twice as long each up to 5 min */
const REPLAY_BACKOFF = { initialMs: 2000, maxMs: 5 * 60_000 } as const;

export class KmsgCollector {
  readonly name: string;
  private readonly opts: KmsgOptions;
  private readonly deps: KmsgDeps;
  private readonly sink: KmsgSink;
  private native: Native | null = null;
  private fd = -1;
  private watch: unknown = null;
  private rearmTimer: NodeJS.Timeout | null = null;
  private readonly drains = new DrainSchedule({ maxPerWakeup: MAX_PER_WAKEUP, tickMs: TICK_MS, drain: () => this.drain() });
  private buf = Buffer.alloc(BUFFER_SIZE);
  /** where each record of a readRecords() batch ends in buf */
  private readonly ends = new Int32Array(MAX_RECORDS_PER_CALL);
  /** readRecords(): why it stopped, reads made */
  private readonly readState = new Int32Array(2);
  /** last sequence number read (processed or not) */
  private lastSeq = -1;
  private tracker: SeqTracker | null = null;
  /** a save is pending (setImmediate or the interval timer) */
  private saveScheduled = false;
  private saveTimer: NodeJS.Timeout | null = null;
  /** performance.now() of the last write of the position */
  private savedAt = -Infinity;
  private malformedLogged = 0;
  /** performance.now() before which no replay is tried; its backoff (one failure per replay since storage last kept up) */
  private replayAfter = 0;
  private readonly replayBackoff = new Backoff(REPLAY_BACKOFF);
  /** during a replay: the last sequence number read before it (a gap below it is not a new overwrite) */
  private replayUpto = -1;

  constructor(name: string, opts: KmsgOptions, deps: KmsgDeps, sink: KmsgSink) {
    this.name = name;
    this.opts = opts;
    this.deps = deps;
    this.sink = sink;
  }

  start(): void {
    const { log } = this.deps;
    this.native = loadNative();
    try {
      // libuv adds O_CLOEXEC to every open itself, so children never inherit this fd.
      this.fd = openSync(this.opts.path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      throw new Error(`kmsg collector [${this.name}]: cannot open ${this.opts.path}: ${(err as Error).message}`);
    }
    let committed = -1;
    let mode: string = this.opts.start;
    if (this.opts.start === 'resume') {
      const { position, error } = readPosition(this.deps.stateDir);
      if (error) log.warn({ collector: this.name, err: error }, 'ignoring the saved kmsg position');
      if (position && position.boot_id === this.deps.bootId) {
        // Sequence numbers only grow within a boot, so a saved one beyond the
        // newest record was never read from this kernel (a tampered or
        // corrupt state file): trusting it would skip every record as
        // "already processed" until the next reboot. Read from the oldest.
        const newest = this.skipToEnd();
        if (position.seq > newest) {
          this.deps.metrics.kmsgPositionResets.labels('ahead_of_log').inc();
          log.warn({ collector: this.name, saved_seq: position.seq, newest_seq: newest, file: POSITION_FILE }, 'the saved kmsg position is ahead of the kernel log (this boot never wrote that sequence number); reading from the oldest record');
          mode = 'beginning (saved position ahead of the kernel log)';
        } else {
          committed = position.seq;
          this.lastSeq = position.seq;
          mode = `resume after seq ${position.seq}`;
        }
      } else {
        mode = position ? 'beginning (new boot)' : 'beginning (no saved position)';
      }
    }
    const r = this.native.lseek(this.fd, 0, SEEK_SET);
    if (r < 0) log.warn({ collector: this.name, errno: -r }, 'lseek on kmsg failed; reading from the current position');
    if (this.opts.start === 'end') {
      // Not SEEK_END: that hides the sequence number of the last record, and
      // without it a reader that falls behind cannot count what it lost.
      // Reading past what is there now costs a few ms even for a large ring.
      committed = this.skipToEnd();
      this.lastSeq = committed;
      mode = committed >= 0 ? `end (after seq ${committed})` : 'end (empty log)';
    }
    this.tracker = this.newTracker(committed);
    log.info({ collector: this.name, path: this.opts.path, start: mode }, 'kmsg collector started');
    this.arm();
    // Safety net: on this project's test kernel (6.18) epoll stops reporting a
    // kmsg descriptor whose reader fell behind an overwrite, though read()
    // returns records. A cheap non-blocking read each second means a missed
    // wakeup costs at most a second, never the rest of the log.
    this.drains.start();
  }

  private newTracker(committed: number): SeqTracker {
    return new SeqTracker(committed, () => this.scheduleSave(), (seq, first) => {
      this.deps.metrics.kmsgPositionHeld.inc();
      if (first) {
        this.replayAfter = performance.now() + this.replayBackoff.peek();
        this.deps.log.warn({ collector: this.name, seq, held_at: seq - 1 }, 'kmsg position held: a storage backend that must not lose events dropped one (disk full, queue or spool full, stopped); the saved position stays before that record, which is read again once storage writes again (or at the next start) while the kernel ring still holds it');
      }
      this.scheduleSave();
    });
  }

  /**
   * A loss holds the position and storage writes again: read the ring again
   * from the held position, in this run. A fresh tracker starts there (the
   * old one's acks still release into it, which moves nothing), the
   * descriptor goes back to the oldest record, and the drain skips what is
   * at or before the held position. Every receiver sees the records after it
   * once more; backends store them once (idempotent by event_id). Records
   * the ring no longer holds come out as an overrun. Tries back off while
   * a replay ends in a new hold.
   */
  private maybeReplay(): void {
    const tracker = this.tracker;
    if (tracker === null || this.fd < 0) return;
    const held = tracker.held;
    if (held === null) {
      if (this.replayBackoff.failures > 0 && tracker.inFlight === 0) this.replayBackoff.reset();
      return;
    }
    const now = performance.now();
    if (now < this.replayAfter || !(this.deps.replayReady?.() ?? false)) return;
    // this replay counts as one failure: should it end in a new hold, the next waits twice as long
    this.replayBackoff.next();
    this.replayAfter = now + this.replayBackoff.peek();
    const r = this.native!.lseek(this.fd, 0, SEEK_SET);
    if (r < 0) {
      this.deps.log.warn({ collector: this.name, errno: -r }, 'lseek on kmsg failed; the held position is read again at the next start');
      return;
    }
    this.deps.metrics.kmsgReplays.inc();
    this.deps.log.info({ collector: this.name, from_seq: held + 1, to_seq: this.lastSeq }, 'storage writes again: reading the kernel records after the held position again');
    this.tracker = this.newTracker(held);
    this.replayUpto = Math.max(this.replayUpto, this.lastSeq);
    this.lastSeq = held;
  }

  /** Read and drop every record available now; returns the last sequence number seen. */
  private skipToEnd(): number {
    const native = this.native!;
    let last = -1;
    for (;;) {
      const n = native.read(this.fd, this.buf);
      if (n === -native.EPIPE) continue;
      if (n <= 0) return last;
      const comma = this.buf.indexOf(44 /* , */);
      const end = comma >= 0 ? this.buf.indexOf(44, comma + 1) : -1;
      const seq = end > comma + 1 ? Number(this.buf.toString('latin1', comma + 1, end)) : NaN;
      if (Number.isSafeInteger(seq) && seq > last) last = seq;
    }
  }

  /**
   * Wait for readability. PRIORITIZED matters: when records were overwritten
   * the kernel reports POLLERR|POLLPRI, and libuv treats POLLERR without a
   * requested POLLPRI as a dead descriptor and stops the watch (UV_EBADF).
   */
  private arm(): void {
    const native = this.native!;
    this.watch = native.pollStart(this.fd, native.READABLE | native.PRIORITIZED, (status) => {
      if (status < 0) {
        // Should not happen on a kmsg descriptor; read what is there and
        // re-arm after a pause rather than going deaf.
        this.deps.log.error({ collector: this.name, status }, 'poll on kmsg failed; re-arming in 1 s');
        if (this.watch) native.pollStop(this.watch);
        this.watch = null;
        this.drain();
        this.rearmTimer = setTimeout(() => {
          this.rearmTimer = null;
          if (this.fd >= 0) this.arm();
        }, 1000);
        return;
      }
      this.drain();
    });
  }

  /**
   * Read every record available now, at most MAX_PER_WAKEUP before yielding
   * to the event loop; the rest follows at once after that (DrainSchedule:
   * the next poll wakeup may never come, see start). The records come in
   * batches, many reads per native call (readRecords), and are handed on one
   * by one in order, as before.
   */
  private drain(): void {
    const native = this.native!;
    const { metrics } = this.deps;
    this.maybeReplay();
    const buf = this.buf;
    const ends = this.ends;
    const state = this.readState;
    let reads = 0;
    while (this.fd >= 0) {
      if (!this.drains.allows(reads)) return;
      const count = native.readRecords(this.fd, buf, ends, state, MAX_PER_WAKEUP - reads, RECORD_ROOM);
      const made = state[1]!;
      const stop = state[0]!;
      reads += made;
      let start = 0;
      let done = 0;
      // a record's sink may stop this collector (fd -1): the rest of the batch is then not handed on, as if never read
      for (; done < count && this.fd >= 0; done++) {
        const end = ends[done]!;
        this.onRecord(buf.toString('latin1', start, end));
        start = end;
      }
      if (done > 0) metrics.kmsgRecords.inc(done);
      if (stop === 1) {
        if (made > 0) continue; // a limit of the call: go on while the budget allows
        return;
      }
      if (stop === 0 || stop === -native.EAGAIN) return;
      this.deps.log.error({ collector: this.name, errno: -stop }, 'read from kmsg failed');
      return;
    }
  }

  private onRecord(text: string): void {
    const tracker = this.tracker!;
    const { metrics, log } = this.deps;
    const parsed = parseKmsgRecord(text);
    if (!parsed.ok) {
      metrics.kmsgMalformed.inc();
      if (this.malformedLogged++ < 10) log.warn({ collector: this.name, err: parsed.error, record: text.slice(0, 200) }, 'malformed kmsg record');
      // without a sequence number we cannot account for it; the next good record moves the position
      return;
    }
    const rec = parsed.record;
    if (rec.seq <= this.lastSeq) {
      metrics.kmsgIgnored.labels('already_processed').inc();
      return;
    }
    if (this.lastSeq >= 0 && rec.seq > this.lastSeq + 1) {
      const lost = rec.seq - this.lastSeq - 1;
      metrics.kmsgLost.inc(lost);
      if (this.lastSeq < this.replayUpto) {
        // a replay from a held position found the ring wrapped past it: an upper bound (some of them were stored before the hold)
        log.warn({ collector: this.name, lost, after: this.lastSeq, next: rec.seq }, 'replay: the kernel ring no longer holds the records after the held position; those a storage backend dropped are lost');
      } else {
        log.warn({ collector: this.name, lost, after: this.lastSeq, next: rec.seq }, 'kernel records were overwritten before they were read');
      }
      const t = tracker.begin(rec.seq - 1);
      this.sink.overrun(lost, this.lastSeq, rec.seq, t);
      t.release();
    }
    this.lastSeq = rec.seq;
    if (rec.facility !== 0 && !this.opts.accept_user_facility) {
      metrics.kmsgIgnored.labels('not_kernel_facility').inc();
      tracker.skip(rec.seq);
      return;
    }
    const ack = tracker.begin(rec.seq);
    try {
      this.sink.record(rec, ack);
    } finally {
      ack.release();
    }
  }

  /** Coalesce commits into one write: at once (next turn) when the last was long enough ago, else when the interval ends. */
  private scheduleSave(): void {
    if (this.saveScheduled) return;
    this.saveScheduled = true;
    const wait = this.savedAt + SAVE_INTERVAL_MS - performance.now();
    const run = () => {
      this.saveTimer = null;
      this.saveScheduled = false;
      this.save();
    };
    if (wait <= 0) setImmediate(run);
    // unref: a pending save never keeps the process alive; stop() and shutdown flush
    else this.saveTimer = setTimeout(run, wait).unref();
  }

  private save(): void {
    if (!this.tracker) return;
    this.savedAt = performance.now();
    try {
      writePosition(this.deps.stateDir, { boot_id: this.deps.bootId, seq: this.tracker.committed });
      this.deps.metrics.kmsgPositionSaves.inc();
    } catch (err) {
      this.deps.log.error({ collector: this.name, err: (err as Error).message }, 'cannot save the kmsg position');
    }
  }

  get committedSeq(): number {
    return this.tracker?.committed ?? -1;
  }

  /** Stop reading; records already handed on keep their acks. */
  stop(): void {
    // a save waiting for the interval is done now: a later one could land after a new collector's
    if (this.saveTimer) this.flush();
    if (this.rearmTimer) clearTimeout(this.rearmTimer);
    this.rearmTimer = null;
    this.drains.stop();
    if (this.watch && this.native) this.native.pollStop(this.watch);
    this.watch = null;
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }

  /** Save the position now (after the pipeline drained). */
  flush(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    this.saveScheduled = false;
    this.save();
  }
}
