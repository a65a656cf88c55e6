// The pure parts of the k8s-events receiver: time formatting, label and note
// bounding, the token bucket and the aggregation state. No I/O here, and the
// clock is always passed in, so unit tests drive every decision.
import type { StorageEvent } from '../../events/schema.ts';
import { msToUs, secondsToUs, timestampUsOf } from '../../events/time.ts';

/** RFC 3339 with exactly 6 fractional digits (a Kubernetes MicroTime), from microseconds since the epoch. */
export function microTime(us: number): string {
  const whole = Math.floor(us);
  const ms = Math.floor(whole / 1000);
  const iso = new Date(ms).toISOString(); // 2026-12-01T10:00:00.123Z
  const micro = String(((whole % 1_000_000) + 1_000_000) % 1_000_000).padStart(6, '0');
  return `${iso.slice(0, 19)}.${micro}Z`;
}

/** When the event happened, in microseconds: extentions.timestamp_us (the one rule, src/events/time.ts), else timestamp (seconds) when after 1970, else now. */
export function eventMicros(ev: StorageEvent, nowMs: number): number {
  const us = timestampUsOf(ev);
  if (us !== null) return us;
  if (ev.timestamp > 0) return secondsToUs(ev.timestamp);
  return msToUs(nowMs);
}

const LABEL_VALUE_MAX = 63;

/** A valid label value (≤63 chars, [A-Za-z0-9._-], alphanumeric at both ends), or '' (also valid). */
export function labelValue(s: string): string {
  let v = s.replace(/[^A-Za-z0-9._-]/g, '_');
  if (v.length > LABEL_VALUE_MAX) v = v.slice(0, LABEL_VALUE_MAX);
  return v.replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9]+$/, '');
}

/** At most maxBytes of UTF-8, cut on a character boundary, with a marker when cut. */
export function boundUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  const marker = '…';
  const budget = maxBytes - Buffer.byteLength(marker);
  const buf = Buffer.from(s).subarray(0, budget);
  // drop a partial trailing character
  let end = buf.length;
  while (end > 0 && (buf[end - 1]! & 0xc0) === 0x80) end--;
  if (end > 0 && buf[end - 1]! >= 0xc0) end--;
  return buf.subarray(0, end).toString('utf8') + marker;
}

/** A metadata.name part: lower-case DNS-1123 characters. */
export function nameSafe(s: string, max: number): string {
  const v = s.toLowerCase().replace(/[^a-z0-9.-]/g, '-').slice(0, max);
  return v.replace(/^[^a-z0-9]+/, '').replace(/[^a-z0-9]+$/, '') || 'node';
}

/** A token bucket: `rate` tokens per second up to `burst`. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  readonly rate: number;
  readonly burst: number;

  constructor(rate: number, burst: number, nowMs: number) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.last = nowMs;
  }

  private refill(nowMs: number): void {
    if (nowMs > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.last) / 1000) * this.rate);
      this.last = nowMs;
    }
  }

  available(nowMs: number): number {
    this.refill(nowMs);
    return this.tokens;
  }

  take(nowMs: number): boolean {
    this.refill(nowMs);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }
}

/** One aggregation key: (node, device, event type) → one Kubernetes Event and its series. */
export interface AggEntry {
  key: string;
  /** the first event (labels, note, reason come from it) */
  first: StorageEvent;
  eventType: string;
  /** when the Event's window started (ms, local clock) */
  startedMs: number;
  firstUs: number;
  lastUs: number;
  /** occurrences observed for this Event */
  count: number;
  /** occurrences the API server has (acknowledged writes) */
  written: number;
  /** occurrences in the write in flight (0 when none) */
  inFlight: number;
  /** the Event's metadata.name once created */
  name?: string;
  lastWriteMs: number;
  /** a write is in flight */
  busy: boolean;
  /** dropped from the table while a write was in flight: its outcome decides what is counted as held back */
  evicted: boolean;
}

export type Action =
  | { kind: 'create'; entry: AggEntry }
  | { kind: 'patch'; entry: AggEntry }
  | { kind: 'summary' };

interface AggregatorOptions {
  windowMs: number;
  maxKeys: number;
  /** at most one write per key per this many ms */
  coalesceMs: number;
  /** at most one summary Event per this many ms */
  summaryIntervalMs: number;
}

/**
 * The aggregation table and the held-back counts. The invariant the tests
 * check: every observed occurrence ends up either in an Event (its series
 * count, or 1) or in `heldBack` (reported by a summary Event), never nowhere.
 */
export class Aggregator {
  readonly opts: AggregatorOptions;
  private readonly entries = new Map<string, AggEntry>();
  /** occurrences no Event reflects, by event type, not yet reported by a summary */
  readonly heldBack = new Map<string, number>();
  heldBackTotal = 0;
  lastSummaryMs = -Infinity;

  constructor(opts: AggregatorOptions) {
    this.opts = opts;
  }

  get size(): number {
    return this.entries.size;
  }

  holdBack(eventType: string, n: number): void {
    if (n <= 0) return;
    this.heldBack.set(eventType, (this.heldBack.get(eventType) ?? 0) + n);
    this.heldBackTotal += n;
  }

  /** The not-yet-written part of an entry that leaves the table. */
  private retire(e: AggEntry): void {
    if (e.busy) {
      e.evicted = true;
      this.holdBack(e.eventType, e.count - e.written - e.inFlight);
    } else {
      this.holdBack(e.eventType, e.count - e.written);
    }
  }

  static key(node: string, ev: StorageEvent): string {
    return `${node}\0${ev.dev_name}|${ev.dev_wwid}\0${ev.event_type}`;
  }

  /** Record one occurrence. */
  observe(node: string, ev: StorageEvent, us: number, nowMs: number): AggEntry {
    const key = Aggregator.key(node, ev);
    let e = this.entries.get(key);
    if (e && nowMs - e.startedMs > this.opts.windowMs) {
      this.entries.delete(key);
      this.retire(e);
      e = undefined;
    }
    if (e) {
      // LRU: most recently seen last
      this.entries.delete(key);
      this.entries.set(key, e);
      e.count++;
      if (us > e.lastUs) e.lastUs = us;
      return e;
    }
    e = { key, first: ev, eventType: ev.event_type, startedMs: nowMs, firstUs: us, lastUs: us, count: 1, written: 0, inFlight: 0, lastWriteMs: -Infinity, busy: false, evicted: false };
    this.entries.set(key, e);
    while (this.entries.size > this.opts.maxKeys) {
      const oldest = this.entries.values().next().value as AggEntry;
      this.entries.delete(oldest.key);
      this.retire(oldest);
    }
    return e;
  }

  /** Drop entries whose window passed and that have nothing left to write. */
  expire(nowMs: number): void {
    for (const e of this.entries.values()) {
      if (nowMs - e.startedMs > this.opts.windowMs && !e.busy && e.count === e.written) this.entries.delete(e.key);
    }
  }

  /**
   * The writes due now, in order: creates first, then a summary, then series
   * patches. `take` is asked for a token before each; a create refused a
   * token is held back (its entry leaves the table), a patch just waits.
   */
  due(nowMs: number, take: () => boolean): Action[] {
    const out: Action[] = [];
    const creates: AggEntry[] = [];
    const patches: AggEntry[] = [];
    for (const e of this.entries.values()) {
      if (e.busy) continue;
      if (e.name === undefined) {
        if (nowMs - e.lastWriteMs >= this.opts.coalesceMs) creates.push(e);
      } else if (e.count > e.written && nowMs - e.lastWriteMs >= this.opts.coalesceMs) {
        patches.push(e);
      }
    }
    for (const e of creates) {
      if (take()) out.push({ kind: 'create', entry: e });
      else {
        this.entries.delete(e.key);
        this.retire(e);
      }
    }
    if (this.heldBackTotal > 0 && nowMs - this.lastSummaryMs >= this.opts.summaryIntervalMs && take()) out.push({ kind: 'summary' });
    for (const e of patches) {
      if (!take()) break;
      out.push({ kind: 'patch', entry: e });
    }
    return out;
  }

  /** Take the held-back counts for a summary (restored with `restore` if the write fails). */
  drainHeldBack(): { total: number; byType: Map<string, number> } {
    const byType = new Map(this.heldBack);
    const total = this.heldBackTotal;
    this.heldBack.clear();
    this.heldBackTotal = 0;
    return { total, byType };
  }

  restore(byType: Map<string, number>): void {
    for (const [t, n] of byType) this.holdBack(t, n);
  }

  /** Forget an entry (a write it needed failed for good). */
  remove(e: AggEntry): void {
    if (this.entries.get(e.key) === e) this.entries.delete(e.key);
  }

  /** Put an entry back whose Event disappeared (404 on patch): it is created again with its unwritten count. */
  has(e: AggEntry): boolean {
    return this.entries.get(e.key) === e;
  }

  /** Entries with something still to write (for close()). */
  pending(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.busy || e.count > e.written || e.name === undefined) n++;
    return n + (this.heldBackTotal > 0 ? 1 : 0);
  }
}
