// Rate limits for log lines about things that can happen thousands of times
// a second (send errors, refused requests, gaps on a lossy network, buffer
// overflows): the first line goes out, the rest are counted, and the count
// reaches the log. Two shapes, because they differ in when the count is told:
//
// - RateLimitedLog: a gate per key, no timer. A suppressed occurrence is
//   only counted; the next line let through carries the count. For
//   conditions that repeat while they last (refusals, failed retries,
//   overflows): no line is owed once they stop.
// - RateLimited<T>: a summary with a timer. What comes during the interval
//   (up to `keep` items, the rest counted) is emitted together when it ends,
//   even if nothing follows: nothing seen is left untold.
//
// Counters (prom-client) count every occurrence; these only keep the log
// readable.

/** At most one log line per interval per key; the next one carries how many were suppressed. */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(opts: { intervalMs: number; now?: () => number }) {
    this.intervalMs = opts.intervalMs;
    this.now = opts.now ?? (() => Date.now());
  }

  /** Null when this one is suppressed, else the number suppressed since the last emitted line. */
  admit(key: string): number | null {
    const t = this.now();
    const s = this.last.get(key);
    if (s && t - s.at < this.intervalMs) {
      s.suppressed++;
      return null;
    }
    const suppressed = s?.suppressed ?? 0;
    this.last.set(key, { at: t, suppressed: 0 });
    return suppressed;
  }
}

/**
 * At most one call of `emit` per interval: the first occurrence at once, the
 * rest summed into the next one. For log lines about things that can happen
 * thousands of times a second (send errors, gaps on a lossy network).
 */
export class RateLimited<T> {
  private readonly intervalMs: number;
  private readonly emit: (items: T[], suppressed: number) => void;
  private readonly now: () => number;
  private last = -Infinity;
  private pending: T[] = [];
  private suppressed = 0;
  private timer: NodeJS.Timeout | null = null;
  /** at most this many items are kept for the next emit; the rest are only counted */
  private readonly keep: number;

  constructor(intervalMs: number, emit: (items: T[], suppressed: number) => void, opts: { keep?: number; now?: () => number } = {}) {
    this.intervalMs = intervalMs;
    this.emit = emit;
    this.keep = opts.keep ?? 1;
    this.now = opts.now ?? (() => performance.now());
  }

  push(item: T): void {
    const now = this.now();
    if (this.timer === null && now - this.last >= this.intervalMs) {
      this.last = now;
      this.emit([item], 0);
      return;
    }
    if (this.pending.length < this.keep) this.pending.push(item);
    else this.suppressed++;
    if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), Math.max(0, this.last + this.intervalMs - now));
      this.timer.unref();
    }
  }

  /** Emit what is pending now (shutdown). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.length === 0 && this.suppressed === 0) return;
    const items = this.pending;
    const suppressed = this.suppressed;
    this.pending = [];
    this.suppressed = 0;
    this.last = this.now();
    this.emit(items, suppressed);
  }
}
