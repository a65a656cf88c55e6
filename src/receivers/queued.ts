// The bounded queue every receiver sits behind: the bus hands events over
// without waiting; the receiver writes them in batches at its own pace; when
// the queue is full the event is dropped and counted, never buffered without
// bound. An event's ack is released when write() settled for its batch: what
// that means is each receiver's own (its class comment, and the table in
// docs/architecture.md "Acknowledgement"). A receiver may drop events, so it
// only ever releases, never reports one lost.
import type { Counter, Gauge } from 'prom-client';
import type { StorageEvent } from '../events/schema.ts';
import type { Logger } from '../log/logger.ts';
import type { AgentMetrics } from '../metrics/agent-metrics.ts';
import type { Ack } from '../contracts/ack.ts';
import type { ReceiverSink } from '../contracts/receiver.ts';

export interface ReceiverDeps {
  log: Logger;
  metrics: AgentMetrics;
}

/** What a wait that shutdown() cut short rejects with. */
export class ReceiverClosedError extends Error {
  constructor() {
    super('receiver closed');
  }
}

/**
 * A retry backoff that shutdown() can cut short: `cancel()` ends the wait at
 * once with ReceiverClosedError (after the timer it does nothing), so a
 * receiver never holds a drain up by sleeping.
 */
export function cancellableSleep(ms: number): { done: Promise<void>; cancel: () => void } {
  let cancel: () => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    cancel = () => {
      clearTimeout(timer);
      reject(new ReceiverClosedError());
    };
  });
  return { done, cancel };
}

export abstract class QueuedReceiver implements ReceiverSink {
  readonly name: string;
  protected readonly deps: ReceiverDeps;
  private readonly capacity: number;
  private readonly maxBatch: number;
  private items: { ev: StorageEvent; ack: Ack }[] = [];
  private head = 0;
  private pumping = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  /** this receiver's series, looked up once: labels() hashes its values on every call, and pump() runs per batch */
  private readonly sentCount: Counter.Internal;
  private readonly droppedCount: Counter.Internal;
  private readonly depthGauge: Gauge.Internal<'receiver'>;

  constructor(name: string, capacity: number, deps: ReceiverDeps, maxBatch = 512) {
    this.name = name;
    this.capacity = capacity;
    this.deps = deps;
    this.maxBatch = maxBatch;
    deps.metrics.pluginUp.labels(name).set(1);
    this.sentCount = deps.metrics.receiverSent.labels(name);
    this.droppedCount = deps.metrics.receiverDropped.labels(name);
    this.depthGauge = deps.metrics.receiverQueueDepth.labels(name);
    // the series exists from the start at 0, so increase() sees the first drop
    this.droppedCount.inc(0);
  }

  /**
   * Write one batch; resolve when it is written (or given up for good, having
   * counted it), optionally with how many of its events were dropped (counted
   * here as dropped instead of sent). Resolving acknowledges the batch.
   */
  protected abstract write(batch: StorageEvent[]): Promise<void | number>;

  /** Release resources after the queue drained. */
  protected async shutdown(): Promise<void> {}

  get depth(): number {
    return this.items.length - this.head;
  }

  deliver(ev: StorageEvent, ack: Ack): boolean {
    if (this.closed || this.depth >= this.capacity) {
      this.droppedCount.inc();
      return false;
    }
    this.items.push({ ev, ack });
    if (!this.pumping) {
      this.pumping = true;
      // next tick: let the bus finish the current record first, then write a batch
      queueMicrotask(() => void this.pump());
    }
    return true;
  }

  private async pump(): Promise<void> {
    const { log } = this.deps;
    while (this.depth > 0) {
      const end = Math.min(this.items.length, this.head + this.maxBatch);
      const batch = this.items.slice(this.head, end);
      this.head = end;
      if (this.head > 4096 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      this.depthGauge.set(this.depth);
      try {
        const dropped = Math.min(batch.length, (await this.write(batch.map((b) => b.ev))) ?? 0);
        if (dropped > 0) this.droppedCount.inc(dropped);
        this.sentCount.inc(batch.length - dropped);
      } catch (err) {
        this.droppedCount.inc(batch.length);
        log.error({ receiver: this.name, err: (err as Error).message, events: batch.length }, 'receiver failed to write a batch');
      }
      for (const b of batch) b.ack.release();
    }
    this.depthGauge.set(0);
    this.pumping = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Wait until the queue is empty (or the timeout passes), then stop. */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.pumping || this.depth > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeoutMs);
        this.idleWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    this.closed = true;
    const left = this.depth;
    if (left > 0) {
      this.droppedCount.inc(left);
      this.deps.log.warn({ receiver: this.name, events: left }, 'receiver closed with events still queued');
      for (let i = this.head; i < this.items.length; i++) this.items[i]!.ack.release();
      this.items = [];
      this.head = 0;
    }
    this.deps.metrics.pluginUp.labels(this.name).set(0);
    await this.shutdown();
  }
}
