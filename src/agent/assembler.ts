// Holds findings that may still receive context lines (a SCSI failure waits
// for its `CDB:` line, a libata exception for its `failed command:` and
// `error:` lines), so that context enriches the event instead of becoming an
// event of its own. Pure bookkeeping: the caller decides when time has passed
// and what to do with what comes out. Bounded: at most `maxHeld` keys.
import type { Context, Finding } from '../contracts/parser.ts';

export interface Held<T> {
  finding: Finding;
  /** what the caller needs to emit it later (record, parser, ack…) */
  meta: T;
  /** when the last line for it arrived (caller's clock) */
  touched: number;
}

export type FlushReason = 'replaced' | 'expired' | 'capacity' | 'drain';

const NOTHING: readonly never[] = Object.freeze([]);

/**
 * After this many changes (or as many as it holds, if more) the table is
 * copied into a new Map, and it is made anew whenever it empties. Why: a
 * long-lived Map's table ends up in V8's old generation, and every resize of
 * it (a replaced or expired finding is a delete and a set) then allocates the
 * next one there too; a dead old table still points at the young findings it
 * held, so each scavenge keeps them, promotes them and everything they point
 * at (V8's allocation-site pretenuring makes it worse: measured, it is gone
 * with --no-allocation-site-pretenuring). With SCSI lines held for their CDB
 * line a third of the bus's time went to garbage collection. A Map made anew
 * is young and, copied this often, dies young. Measured with a held-only run
 * (every line a held SCSI finding): renewed every 4,096 changes the promotion
 * stayed when expiry ran on a clock, every 256 it was gone. The copy keeps the
 * insertion (= age) order; it costs at most one entry copied per change.
 */
const RENEW_AFTER = 256;

export class Assembler<T> {
  private held = new Map<string, Held<T>>();
  /** changes (sets and deletes) since the table was last made anew */
  private changes = 0;
  private readonly maxHeld: number;

  constructor(maxHeld: number) {
    this.maxHeld = maxHeld;
  }

  get size(): number {
    return this.held.size;
  }

  /**
   * Hold `finding` under its key. Returns what must be emitted now: the
   * finding previously held under the same key, and the oldest one when the
   * table is full.
   */
  hold(finding: Finding, meta: T, now: number): readonly { out: Held<T>[]; reason: FlushReason }[] {
    const key = finding.hold!;
    this.renew();
    this.changes += 2; // a delete (replaced or capacity) and a set
    // Nothing displaced is the common case: one shared empty answer, no allocation per held finding.
    let out: readonly { out: Held<T>[]; reason: FlushReason }[] = NOTHING;
    const prev = this.held.get(key);
    if (prev) {
      this.held.delete(key);
      out = [{ out: [prev], reason: 'replaced' }];
    } else if (this.held.size >= this.maxHeld) {
      const oldestKey = this.held.keys().next().value as string;
      const oldest = this.held.get(oldestKey)!;
      this.held.delete(oldestKey);
      out = [{ out: [oldest], reason: 'capacity' }];
    }
    this.held.set(key, { finding, meta, touched: now });
    return out;
  }

  /**
   * Attach a context line. Returns 'merged' when a held finding took it,
   * 'orphan' when nothing was held (the caller may hold `ctx.orphan`).
   */
  attach(ctx: Context, now: number): 'merged' | 'orphan' {
    const h = this.held.get(ctx.context);
    if (!h) return 'orphan';
    this.renew();
    this.changes += 2; // moved to the young end: a delete and a set
    const ext = h.finding.ext;
    const add = ctx.ext;
    // for…in over the parser's plain object (own keys only, in Object.entries order) without an array of pairs per line
    for (const k in add) {
      if (!Object.hasOwn(add, k)) continue;
      const v = add[k]!;
      const cur = ext[k];
      ext[k] = cur === undefined || cur === '' ? v : cur.length < 2048 ? `${cur}; ${v}` : cur;
    }
    h.touched = now;
    // keep insertion order = age order for expiry
    this.held.delete(ctx.context);
    this.held.set(ctx.context, h);
    return 'merged';
  }

  /** Everything last touched at or before `cutoff`, oldest first. */
  expire(cutoff: number): Held<T>[] {
    const out: Held<T>[] = [];
    for (const [key, h] of this.held) {
      if (h.touched > cutoff) break;
      out.push(h);
      this.held.delete(key);
    }
    if (out.length > 0) {
      this.changes += out.length;
      this.renew();
    }
    return out;
  }

  drain(): Held<T>[] {
    const out = [...this.held.values()];
    this.held = new Map();
    this.changes = 0;
    return out;
  }

  /** The oldest touch time, or undefined when nothing is held. */
  oldest(): number | undefined {
    const first = this.held.values().next();
    return first.done ? undefined : first.value.touched;
  }

  /** A new Map when the table is empty after changes, or has changed RENEW_AFTER times and at least its size (see RENEW_AFTER). */
  private renew(): void {
    const size = this.held.size;
    if (size === 0 ? this.changes > 0 : this.changes >= RENEW_AFTER && this.changes >= size) {
      this.held = size === 0 ? new Map() : new Map(this.held);
      this.changes = 0;
    }
  }
}
