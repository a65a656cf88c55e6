// One storage backend's writer (docs/storage.md "Delivery guarantees": "writes never happen on the
// event path"). The manager hands events over without waiting; the worker
// persists them in batches; when the backend rejects, times out or cannot
// keep up, events go to the on-disk spool (acknowledged once fsynced) and are
// replayed in order when it is back. Every event is acknowledged exactly
// once: persisted (the backend's persist() resolved; each backend says what
// that means, docs/architecture.md "Acknowledgement"), fsynced to the spool,
// or dropped and counted (as lost when the backend must not lose events).
// Memory is bounded by the queue capacity (plus the batch in flight); the
// spool by its byte cap.
//
// Two loops share the queue:
// - the writer persists: from the spool while it holds events (replay),
//   else straight from the queue;
// - the spiller appends the queue to the spool while the worker is in spool
//   mode: the backend is down, the spool is not empty (order: nothing may
//   overtake what is already spooled), or the queue passed its spill mark
//   (the backend is too slow). If a direct batch is in flight when spilling
//   starts, it is spooled first, so the spool's order stays the queue's
//   order; should that batch also be stored directly, its replay is a
//   duplicate that the backend absorbs (idempotent by eventKey).
import type { Ack } from '../contracts/ack.ts';
import { Backoff } from '../contracts/backoff.ts';
import type { StorageEvent } from '../events/schema.ts';
import type { Logger } from '../log/logger.ts';
import type { BackendMetrics } from './metrics.ts';
import { DEFAULT_SPOOL_MAX_BYTES, DEFAULT_SPOOL_SEGMENT_BYTES, openSpool, type SpoolHandle } from './spool.ts';
import type { Backend } from './types.ts';

/**
 * This backend's hold on an event's ack ends (null: an event replayed from
 * the spool, acknowledged in an earlier run): released, or — `asLost` — lost,
 * when it dropped the event although it must not lose events.
 */
function releaseHold(ack: Ack | null, asLost = false): void {
  if (ack === null) return;
  try {
    if (asLost) ack.lost();
    else ack.release();
  } catch {
    // the caller's release must not break the worker's loop; the agent's acks do not throw
  }
}

export interface WorkerTuning {
  /** events held in memory at most (queue and the batch in flight); beyond: spool, or drop when there is no usable spool */
  capacity: number;
  /** events per persist or spool append */
  maxBatch: number;
  /** how long a partial batch waits for more events */
  maxWaitMs: number;
  /** queue depth from which events go to the spool although the backend works (it is too slow); default capacity / 2 */
  spillAt: number;
  /** first retry after a failure; doubles up to retryMaxMs */
  retryMinMs: number;
  retryMaxMs: number;
  /** a persist that takes longer counts as failed (its events go to the spool); the next one waits until it settles */
  persistTimeoutMs: number;
  /** stop() flushes the queue for at most this long; the rest goes to the spool */
  stopTimeoutMs: number;
  spoolMaxBytes: number;
  spoolSegmentBytes: number;
}

export const DEFAULT_WORKER_TUNING: Readonly<Omit<WorkerTuning, 'spillAt'>> = {
  capacity: 10_000,
  maxBatch: 500,
  maxWaitMs: 50,
  retryMinMs: 1000,
  retryMaxMs: 30_000,
  persistTimeoutMs: 30_000,
  stopTimeoutMs: 5000,
  spoolMaxBytes: DEFAULT_SPOOL_MAX_BYTES,
  spoolSegmentBytes: DEFAULT_SPOOL_SEGMENT_BYTES,
};

export interface WorkerOptions extends Partial<WorkerTuning> {
  /** the backend's name (logs, metrics) */
  name: string;
  backend: Pick<Backend, 'persist'>;
  /** `<stateDir>/spool/<backend>`; null: no spool (events the backend rejects stay in memory until retried or dropped) */
  spoolDir: string | null;
  /**
   * the backend keeps events (jsonl, sqlite, postgres): what it drops is
   * acknowledged as lost, so the kernel read position stays before it and
   * the next start reads it again (default false: a plain acknowledgement)
   */
  mustNotLose?: boolean;
  log: Logger;
  metrics?: BackendMetrics | null;
}

/** A batch taken from the queue for a direct persist. */
interface Batch {
  evs: StorageEvent[];
  acks: (Ack | null)[];
  acked: boolean;
  /** whether the spiller copied it to the spool ('pending' while that append runs) */
  spill: 'no' | 'pending' | 'yes';
  /** the persist settled */
  settled: boolean;
}

export interface WorkerStats {
  persisted: number;
  replayed: number;
  spooled: number;
  failed: number;
  dropped: number;
  corrupt: number;
}

const DROP_LOG_INTERVAL_MS = 10_000;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class BackendWorker {
  readonly name: string;
  private readonly t: WorkerTuning;
  private readonly backend: Pick<Backend, 'persist'>;
  private readonly spoolDir: string | null;
  private readonly log: Logger;
  private readonly metrics: BackendMetrics | null;
  private readonly mustNotLose: boolean;

  // the queue: parallel arrays from `head` (no object per entry)
  private evs: StorageEvent[] = [];
  private acks: (Ack | null)[] = [];
  private head = 0;
  /** when the queue last went from empty to non-empty */
  private firstAt = 0;
  private inflight: Batch | null = null;
  /** events taken by a spool append that has not finished (still in memory, still unacknowledged) */
  private spilling = 0;

  private spool: SpoolHandle | null = null;
  /** the last persist failed; cleared by a successful one */
  private down = false;
  /** the retry timer fired since the last failure */
  private retryDue = false;
  /** the last spool append failed; retried after the retry timer or a success */
  private spoolBlocked = false;
  /** a timed-out (or aborted) persist has not settled yet: no new persist until it has */
  private stuck = false;
  private stopping = false;
  /** stop's deadline passed: spool what is left, persist nothing more */
  private forceSpool = false;
  private closed = false;
  private stopPromise: Promise<void> | null = null;
  /** flush() calls waiting: partial batches go out at once instead of waiting for more events */
  private flushing = 0;
  private abortPersist: (() => void) | null = null;

  private writerBusy = false;
  private spillerBusy = false;
  private kickScheduled = false;
  private batchTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly backoff: Backoff;
  private waiters: (() => void)[] = [];

  private droppedSinceLog = 0;
  private lastDropLog = 0;
  readonly stats: WorkerStats = { persisted: 0, replayed: 0, spooled: 0, failed: 0, dropped: 0, corrupt: 0 };
  /** the last write or spool error (for status; the backend's own message) */
  lastError: string | null = null;

  constructor(opts: WorkerOptions) {
    this.name = opts.name;
    const d = DEFAULT_WORKER_TUNING;
    const num = (v: number | undefined, dflt: number, min: number) => (typeof v === 'number' && Number.isFinite(v) ? Math.max(min, v) : dflt);
    const capacity = Math.floor(num(opts.capacity, d.capacity, 1));
    const spoolMaxBytes = num(opts.spoolMaxBytes, d.spoolMaxBytes, 1);
    this.t = {
      capacity,
      maxBatch: Math.floor(num(opts.maxBatch, d.maxBatch, 1)),
      maxWaitMs: num(opts.maxWaitMs, d.maxWaitMs, 0),
      spillAt: Math.min(capacity, Math.floor(num(opts.spillAt, capacity / 2, 1))) || 1,
      retryMinMs: num(opts.retryMinMs, d.retryMinMs, 1),
      retryMaxMs: num(opts.retryMaxMs, d.retryMaxMs, 1),
      persistTimeoutMs: num(opts.persistTimeoutMs, d.persistTimeoutMs, 1),
      stopTimeoutMs: num(opts.stopTimeoutMs, d.stopTimeoutMs, 0),
      spoolMaxBytes,
      // several segments under the cap, so replayed ones can be deleted while the spool is near full
      spoolSegmentBytes: num(opts.spoolSegmentBytes, Math.min(d.spoolSegmentBytes, Math.ceil(spoolMaxBytes / 4)), 1),
    };
    this.backend = opts.backend;
    this.spoolDir = opts.spoolDir;
    this.log = opts.log;
    this.metrics = opts.metrics ?? null;
    this.mustNotLose = opts.mustNotLose === true;
    this.backoff = new Backoff({ initialMs: this.t.retryMinMs, maxMs: this.t.retryMaxMs });
  }

  /** Open the spool and start replaying what an earlier run left. A spool that cannot be opened is logged, not fatal. */
  async open(): Promise<void> {
    if (this.spoolDir !== null) {
      try {
        this.spool = await openSpool(
          { dir: this.spoolDir, maxBytes: this.t.spoolMaxBytes, segmentBytes: this.t.spoolSegmentBytes, log: this.log },
          () => this.kick(),
        );
      } catch (err) {
        this.lastError = `spool unusable: ${message(err)}`;
        this.log.error({ backend: this.name, spool: this.spoolDir, err: message(err) }, 'storage spool cannot be opened: events the backend rejects stay in memory, overflow is dropped');
      }
    }
    this.kick();
  }

  get queued(): number {
    return this.evs.length - this.head;
  }

  /** events in memory, not yet persisted or spooled */
  get depth(): number {
    const f = this.inflight;
    return this.queued + this.spilling + (f !== null && !f.acked ? f.evs.length : 0);
  }

  get spoolBytes(): number {
    return this.spool?.bytes ?? 0;
  }

  get spoolUsable(): boolean {
    return this.spool !== null && !this.spoolBlocked;
  }

  /** the last persist succeeded (or none failed yet) */
  get up(): boolean {
    return !this.down && !this.closed;
  }

  get dropped(): number {
    return this.stats.dropped;
  }

  /**
   * Ready to take kernel records read again after a loss held the position:
   * open, its last write succeeded, and its queue at most a quarter full (a
   * replay into a backend that is still failing or behind would only drop
   * them again).
   */
  get readyForReplay(): boolean {
    return !this.closed && !this.down && this.depth <= this.t.capacity / 4;
  }

  /** what it drops is acknowledged as lost */
  get holdsPosition(): boolean {
    return this.mustNotLose;
  }

  /** Take an event; never waits. When it cannot be held, it is dropped, counted and its ack released. */
  enqueue(ev: StorageEvent, ack: Ack | null): void {
    if (this.closed || this.depth >= this.t.capacity) {
      this.drop(1);
      releaseHold(ack, this.mustNotLose);
      return;
    }
    if (this.queued === 0) this.firstAt = performance.now();
    this.evs.push(ev);
    this.acks.push(ack);
    this.kick();
  }

  private kick(): void {
    if (this.kickScheduled) return;
    this.kickScheduled = true;
    queueMicrotask(() => {
      this.kickScheduled = false;
      void this.runWriter();
      void this.runSpiller();
      this.armBatchTimer();
      this.notify();
    });
  }

  /** the queue should be written now rather than wait for more events */
  private ready(): boolean {
    const q = this.queued;
    if (q === 0) return false;
    return q >= this.t.maxBatch || q >= this.t.spillAt || this.stopping || this.flushing > 0 || performance.now() - this.firstAt >= this.t.maxWaitMs;
  }

  /** new events may not go to the backend directly */
  private spillMode(): boolean {
    if (!this.spoolUsable) return false;
    return this.down || this.forceSpool || this.spool!.hasData || this.queued >= this.t.spillAt;
  }

  private armBatchTimer(): void {
    if (this.batchTimer !== null || this.closed || this.queued === 0 || this.ready()) return;
    const wait = Math.max(1, Math.ceil(this.t.maxWaitMs - (performance.now() - this.firstAt)));
    this.batchTimer = setTimeout(() => {
      this.batchTimer = null;
      this.kick();
    }, wait);
  }

  // ---- the writer ----

  private writerAction(): (() => Promise<boolean>) | null {
    if (this.stuck || this.forceSpool || this.closed) return null;
    if (this.down && !this.retryDue) return null;
    const sp = this.spool;
    if (sp !== null && sp.hasData) {
      // order: what is spooled goes first; replay is left for the next run once stopping
      return !this.stopping && sp.isReader ? () => this.replayOnce(sp) : null;
    }
    if (this.spillMode()) return null;
    if (this.queued > 0 && (this.ready() || this.retryDue)) return () => this.persistOnce();
    return null;
  }

  private async runWriter(): Promise<void> {
    if (this.writerBusy) return;
    this.writerBusy = true;
    let acted = false;
    try {
      for (let a = this.writerAction(); a !== null; a = this.writerAction()) {
        acted = true;
        if (!(await a())) break;
      }
    } catch (err) {
      this.log.error({ backend: this.name, err: message(err) }, 'storage worker: unexpected error in the writer');
    } finally {
      this.writerBusy = false;
      if (acted) this.kick();
      this.notify();
    }
  }

  /** One replay batch; false when there was nothing to read (stop the loop). */
  private async replayOnce(sp: SpoolHandle): Promise<boolean> {
    let batch;
    try {
      batch = await sp.read(this.t.maxBatch);
    } catch (err) {
      this.failed(err, 0, 'reading the spool failed');
      return true;
    }
    if (batch === null) return false;
    this.stats.corrupt += batch.corrupt;
    try {
      await this.persistGuarded(batch.events);
    } catch (err) {
      this.failed(err, batch.events.length, 'replaying the spool failed');
      return true;
    }
    try {
      await sp.commit(batch);
    } catch (err) {
      // the batch stays in the spool and is replayed again: a duplicate, which the backend absorbs
      this.log.warn({ backend: this.name, err: message(err) }, 'storage spool: recording the replay position failed');
    }
    this.stats.replayed += batch.events.length;
    this.succeeded(batch.events.length);
    return true;
  }

  private async persistOnce(): Promise<boolean> {
    const n = Math.min(this.queued, this.t.maxBatch);
    const b: Batch = { ...this.take(n), acked: false, spill: 'no', settled: false };
    this.inflight = b;
    try {
      await this.persistGuarded(b.evs);
    } catch (err) {
      b.settled = true;
      this.inflight = null;
      this.failed(err, n, 'persisting a batch failed');
      // not in the spool yet (and not being copied there): back to the head of the queue, ahead of newer events
      if (b.spill === 'no' && !b.acked) this.putBack(b.evs, b.acks);
      return true;
    }
    b.settled = true;
    this.inflight = null;
    this.stats.persisted += n;
    this.succeeded(n);
    this.ackBatch(b);
    return true;
  }

  /** persist with a timeout and an abort (stop's deadline); an abandoned persist blocks new ones until it settles */
  private persistGuarded(evs: readonly StorageEvent[]): Promise<void> {
    let p: Promise<void>;
    try {
      p = Promise.resolve(this.backend.persist(evs));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | null, abandon: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.abortPersist = null;
        if (abandon) {
          this.stuck = true;
          const unstick = () => {
            this.stuck = false;
            this.kick();
          };
          p.then(unstick, unstick);
        }
        if (err === null) resolve();
        else reject(err);
      };
      const timer = setTimeout(() => finish(new Error(`persist did not finish within ${this.t.persistTimeoutMs} ms`), true), this.t.persistTimeoutMs);
      this.abortPersist = () => finish(new Error('stopped while persisting'), true);
      p.then(() => finish(null, false), (e: unknown) => finish(e instanceof Error ? e : new Error(String(e ?? 'persist rejected')), false));
    });
  }

  private failed(err: unknown, events: number, what: string): void {
    const msg = message(err);
    this.lastError = `${what}: ${msg}`;
    if (events > 0) {
      this.stats.failed += events;
      this.metrics?.failed(events);
    }
    if (!this.down) this.log.warn({ backend: this.name, err: msg, events }, `storage backend: ${what}; spooling and retrying`);
    else this.log.debug({ backend: this.name, err: msg, events }, `storage backend: ${what}`);
    this.down = true;
    this.retryDue = false;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    const delay = this.backoff.next();
    if (this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryDue = true;
      this.spoolBlocked = false;
      this.kick();
    }, delay);
  }

  private succeeded(events: number): void {
    if (events > 0) this.metrics?.ok(events);
    if (this.down) this.log.info({ backend: this.name }, 'storage backend: writing again');
    this.down = false;
    this.retryDue = false;
    this.spoolBlocked = false;
    this.backoff.reset();
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  // ---- the spiller ----

  private async runSpiller(): Promise<void> {
    if (this.spillerBusy) return;
    this.spillerBusy = true;
    let acted = false;
    try {
      while (!this.closed && this.spillMode() && this.ready()) {
        acted = true;
        await this.spillOnce(this.spool!);
      }
    } catch (err) {
      this.log.error({ backend: this.name, err: message(err) }, 'storage worker: unexpected error in the spiller');
    } finally {
      this.spillerBusy = false;
      if (acted) this.kick();
      this.notify();
    }
  }

  private async spillOnce(sp: SpoolHandle): Promise<void> {
    // everything queued in one append: one fsync however far behind we are (the queue is bounded by capacity)
    const { evs, acks } = this.take(this.queued);
    // a direct batch in flight is older than the queue: it goes first
    const f = this.inflight;
    const front = f !== null && f.spill === 'no' && !f.settled && !f.acked ? f : null;
    if (front !== null) front.spill = 'pending';
    const fl = front?.evs.length ?? 0;
    let n: number;
    this.spilling = evs.length;
    try {
      n = await sp.append(front !== null ? front.evs.concat(evs) : evs);
    } catch (err) {
      this.spilling = 0;
      this.spoolBlocked = true;
      this.lastError = `spool append failed: ${message(err)}`;
      this.log.error({ backend: this.name, err: message(err), events: evs.length + fl }, 'storage spool: append failed; keeping the events in memory');
      this.putBack(evs, acks);
      if (front !== null) {
        front.spill = 'no';
        // the persist failed meanwhile and left the batch to us: back to the head, before `evs`
        if (front.settled && !front.acked) this.putBack(front.evs, front.acks);
      }
      return;
    }
    this.spilling = 0;
    if (front !== null) {
      if (n >= fl) {
        front.spill = 'yes';
        this.stats.spooled += fl;
        this.metrics?.spooled(fl);
        this.ackBatch(front);
      } else {
        front.spill = 'no';
        if (front.settled && !front.acked) {
          // the spool is full and the backend rejected it: given up, counted
          this.drop(fl);
          this.ackBatch(front, this.mustNotLose);
        }
      }
    }
    const m = Math.max(0, n - fl);
    if (m > 0) {
      this.stats.spooled += m;
      this.metrics?.spooled(m);
    }
    for (let i = 0; i < m; i++) releaseHold(acks[i] ?? null);
    if (m < evs.length) {
      // the spool is full
      this.drop(evs.length - m);
      for (let i = m; i < evs.length; i++) releaseHold(acks[i] ?? null, this.mustNotLose);
    }
  }

  // ---- the queue ----

  private take(n: number): { evs: StorageEvent[]; acks: (Ack | null)[] } {
    const end = this.head + n;
    const out = { evs: this.evs.slice(this.head, end), acks: this.acks.slice(this.head, end) };
    this.head = end;
    if (this.head >= this.evs.length) {
      this.evs = [];
      this.acks = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.evs.length) {
      this.evs = this.evs.slice(this.head);
      this.acks = this.acks.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  private putBack(evs: StorageEvent[], acks: (Ack | null)[]): void {
    if (evs.length === 0) return;
    this.evs = evs.concat(this.evs.slice(this.head));
    this.acks = acks.concat(this.acks.slice(this.head));
    this.head = 0;
    // these waited already: no batching delay for them
    this.firstAt = -Infinity;
  }

  private ackBatch(b: Batch, lost = false): void {
    if (b.acked) return;
    b.acked = true;
    for (const a of b.acks) releaseHold(a, lost);
  }

  private drop(n: number): void {
    this.stats.dropped += n;
    this.metrics?.dropped(n);
    this.droppedSinceLog += n;
    const now = performance.now();
    if (now - this.lastDropLog >= DROP_LOG_INTERVAL_MS) {
      this.lastDropLog = now;
      this.log.warn({ backend: this.name, events: this.droppedSinceLog, total: this.stats.dropped }, 'storage backend: events dropped (queue full without a usable spool, spool full, or stopped)');
      this.droppedSinceLog = 0;
    }
  }

  // ---- stop ----

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolve true once `cond` holds (re-checked whenever a loop finishes), false after `ms`. */
  private waitFor(cond: () => boolean, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const check = () => {
        if (cond()) {
          if (timer !== null) clearTimeout(timer);
          resolve(true);
        } else {
          this.waiters.push(check);
        }
      };
      if (Number.isFinite(ms)) {
        timer = setTimeout(() => {
          const i = this.waiters.indexOf(check);
          if (i >= 0) this.waiters.splice(i, 1);
          resolve(cond());
        }, ms);
      }
      check();
    });
  }

  /**
   * Write what is queued and what the spool holds, without the batching
   * delay, waiting at most `timeoutMs`; a backend that is down is tried at
   * once instead of at the end of its backoff (the caller asked for it now).
   * True once the queue and the spool were empty at one moment — under a
   * steady stream of events that means "caught up", not "nothing newer than
   * the call". False at the deadline (the backend down or too slow): nothing
   * is lost, the events stay queued or spooled and are written later.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.closed) return this.queued === 0;
    this.flushing++;
    if (this.down && this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.retryDue = true;
      this.spoolBlocked = false;
    }
    this.kick();
    try {
      return await this.waitFor(() => this.closed || (this.queued === 0 && this.spilling === 0 && this.inflight === null
        && !this.writerBusy && !this.spillerBusy && !(this.spool?.hasData ?? false)), timeoutMs);
    } finally {
      this.flushing--;
    }
  }

  /**
   * Flush the queue to the backend (or the spool) for at most `timeoutMs`;
   * then stop persisting, spool what is left (dropped and counted when the
   * spool cannot take it) and close the spool. Every ack is released when it
   * resolves. The spool is not replayed further: the next run does that.
   */
  stop(timeoutMs: number = this.t.stopTimeoutMs): Promise<void> {
    this.stopPromise ??= this.doStop(timeoutMs);
    return this.stopPromise;
  }

  private async doStop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    this.kick();
    const idle = () => !this.writerBusy && !this.spillerBusy && this.inflight === null && !this.kickScheduled;
    const drained = await this.waitFor(() => this.queued === 0 && idle(), timeoutMs);
    if (!drained) {
      this.forceSpool = true;
      this.abortPersist?.();
      this.kick();
      await this.waitFor(() => idle() && !(this.spillMode() && this.queued > 0), Infinity);
    }
    this.closed = true;
    if (this.batchTimer !== null) clearTimeout(this.batchTimer);
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.batchTimer = null;
    this.retryTimer = null;
    const left = this.take(this.queued);
    if (left.evs.length > 0) {
      this.drop(left.evs.length);
      this.log.warn({ backend: this.name, events: left.evs.length }, 'storage backend stopped with events neither stored nor spooled: dropped');
      for (const a of left.acks) releaseHold(a, this.mustNotLose);
    }
    const sp = this.spool;
    if (sp !== null) {
      try {
        await sp.close();
      } catch (err) {
        this.log.warn({ backend: this.name, err: message(err) }, 'storage spool: closing failed');
      }
    }
    // a flush() waiting on this worker is done: it is closed
    this.notify();
  }
}
