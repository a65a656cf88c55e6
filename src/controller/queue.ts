// A keyed work queue (client-go's workqueue, reduced to what the controller
// needs): a key added while it waits is added once; a key added while it is
// being processed runs again after that run, never twice at once. The queue
// acts on what the handler returns (result.ts): a failure that may pass (or a
// throw) is retried after a per-key exponential backoff; a terminal failure
// is reported and not retried; success forgets the backoff, and a requeue
// after N ms adds the key again then (0: right after this run). Bounded:
// past `maxKeys` waiting keys new ones are refused (counted), so a flood of
// events cannot grow memory without limit — a periodic resync brings refused
// keys back.
import { backoffDelay } from '../contracts/backoff.ts';
import { isError, type Result } from './result.ts';

export interface WorkQueueOptions {
  /** how many keys are processed at once (each key by one worker at a time) */
  workers?: number;
  /** waiting keys at most; more are dropped and counted */
  maxKeys?: number;
  /** first retry delay and the cap (ms) */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** a failed run, retried in `retryInMs` */
  onError?: (key: string, err: unknown, retryInMs: number) => void;
  /** a run that failed for good (a terminal error): not retried */
  onTerminal?: (key: string, error: string) => void;
}

export class WorkQueue {
  private readonly waiting = new Set<string>();
  private readonly order: string[] = [];
  private readonly active = new Set<string>();
  /** keys added again while active: run once more after the current run */
  private readonly again = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private running = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  dropped = 0;
  readonly workers: number;
  readonly maxKeys: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  private readonly handler: (key: string) => Promise<Result | void>;
  private readonly opts: WorkQueueOptions;

  /** `handler` returns a Result (result.ts); nothing returned is done, a throw a failure that may pass */
  constructor(handler: (key: string) => Promise<Result | void>, opts: WorkQueueOptions = {}) {
    this.handler = handler;
    this.opts = opts;
    this.workers = opts.workers ?? 8;
    this.maxKeys = opts.maxKeys ?? 100_000;
    this.baseDelayMs = opts.baseDelayMs ?? 200;
    this.maxDelayMs = opts.maxDelayMs ?? 30_000;
  }

  /** keys waiting or being processed (the queue depth metric) */
  get depth(): number {
    return this.waiting.size + this.active.size;
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.active.has(key)) {
      this.again.add(key);
      return;
    }
    if (this.waiting.has(key)) return;
    if (this.waiting.size >= this.maxKeys) {
      this.dropped++;
      return;
    }
    this.waiting.add(key);
    this.order.push(key);
    this.pump();
  }

  /** add after a delay (a retry); a newer add of the key runs it sooner */
  addAfter(key: string, ms: number): void {
    if (this.stopped || this.timers.has(key)) return;
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    t.unref();
    this.timers.set(key, t);
  }

  /** the retry delay a key would get after `n` failures */
  backoff(n: number): number {
    return backoffDelay(n, { initialMs: this.baseDelayMs, maxMs: this.maxDelayMs });
  }

  /** resolves when nothing waits and nothing runs */
  idle(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.waiting.clear();
    this.order.length = 0;
    this.again.clear();
  }

  private pump(): void {
    while (this.running < this.workers && this.order.length > 0) {
      const key = this.order.shift()!;
      if (!this.waiting.delete(key)) continue;
      this.active.add(key);
      this.running++;
      void this.run(key);
    }
    if (this.depth === 0 && this.idleWaiters.length > 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  private async run(key: string): Promise<void> {
    try {
      const result = await this.handler(key);
      if (result && isError(result)) {
        if (result.terminal) {
          this.failures.delete(key);
          this.opts.onTerminal?.(key, result.error);
        } else this.retry(key, result.error);
      } else {
        this.failures.delete(key);
        const after = result?.requeueAfterMs;
        if (after !== undefined) {
          if (after <= 0) this.again.add(key);
          else this.addAfter(key, after);
        }
      }
    } catch (err) {
      this.retry(key, err);
    } finally {
      this.active.delete(key);
      this.running--;
      if (this.again.delete(key)) this.add(key);
      this.pump();
    }
  }

  private retry(key: string, err: unknown): void {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const delay = this.backoff(n);
    this.opts.onError?.(key, err, delay);
    this.addAfter(key, delay);
  }
}
