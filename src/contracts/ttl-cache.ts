// A bounded cache whose entries expire: the one shape behind the agent's
// caches of answers that are cheap to forget and costly or risky to
// recompute each time (TokenReview verdicts, device identities). Memory is
// bounded by `max` whatever arrives: past it the oldest entry goes, so a
// flood of new keys (forged tokens, forged device names) costs the flood's
// own entries, never unbounded growth.

export interface TtlCacheOptions {
  /** how long an entry lives unless set() says otherwise */
  ttlMs: number;
  /** at most this many entries (at least 1) */
  max: number;
  /** clock in ms (tests inject one) */
  now?: () => number;
  /**
   * Which entry is "oldest" when the bound is reached. false (the default):
   * the one set longest ago, whatever its hits. true: approximately the
   * least recently used — a hit makes an entry young again, but only when
   * at least half the bound was set since it last moved (a move on every
   * hit cost ~3 % of the pipeline benchmark in the device resolver), so a
   * hot key still outlives a flood of new ones.
   */
  refreshOnHit?: boolean;
}

interface Entry<V> {
  value: V;
  /** the clock's ms at which the entry is gone */
  expires: number;
  /** the set counter when the entry last moved to the young end */
  seq: number;
}

/** A Map in eviction order (oldest first) with a size bound and per-entry expiry. */
export class TtlCache<V> {
  private readonly map = new Map<string, Entry<V>>();
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly now: () => number;
  private readonly refreshOnHit: boolean;
  /** how many entries were set or moved so far */
  private clock = 0;

  constructor(opts: TtlCacheOptions) {
    this.ttlMs = opts.ttlMs;
    this.max = Math.max(1, Math.floor(opts.max));
    this.now = opts.now ?? Date.now;
    this.refreshOnHit = opts.refreshOnHit === true;
  }

  get size(): number {
    return this.map.size;
  }

  /** The value under `key`, or undefined when there is none or it expired (then it is dropped). */
  get(key: string): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.expires <= this.now()) {
      this.map.delete(key);
      return undefined;
    }
    if (this.refreshOnHit && this.clock - e.seq >= this.max >> 1) {
      this.map.delete(key);
      e.seq = ++this.clock;
      this.map.set(key, e);
    }
    return e.value;
  }

  /** Stores `value` as the youngest entry, living `ttlMs` (default: the cache's); the oldest go past the bound. */
  set(key: string, value: V, ttlMs: number = this.ttlMs): void {
    this.map.delete(key);
    this.map.set(key, { value, expires: this.now() + ttlMs, seq: ++this.clock });
    while (this.map.size > this.max) {
      const oldest = this.map.keys().next();
      if (oldest.done === true) break;
      this.map.delete(oldest.value);
    }
  }

  /** Drops every entry whose value (expired or not) `drop` picks. */
  deleteWhere(drop: (value: V) => boolean): void {
    for (const [k, e] of this.map) if (drop(e.value)) this.map.delete(k);
  }

  clear(): void {
    this.map.clear();
  }
}
