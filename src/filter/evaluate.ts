// The runtime side of a compiled filter: how each path reads an event, and
// the object the compiler hands out. The compiler turns the RPN program into
// a tree of closures (see compile.ts); this file provides the leaves.
//
// Readers compute only the elos member a filter names, from the event
// itself, instead of building the whole elos view (toElos) per event: a
// storage filter runs on every event of every backend. Each reader mirrors
// the derivation in src/events/elos.ts (the date readers share its rule of
// event time, src/events/time.ts); test/unit/filter/table.test.ts checks
// that both agree on the sample events and on every catalog type.
//
// Runtime errors do not throw: the reader or operator records the first
// reason in the filter's EvalState and returns a neutral value; the caller
// sees ERROR once the program has run. A program runs synchronously and
// calls no user code, so one EvalState per compiled filter is enough.
import { CATALOG, EVENT_TYPES, messageCodeOf, MESSAGE_CODE_READ_ERROR, MESSAGE_CODE_WRITE_ERROR } from '../events/catalog.ts';
import { CLASSIFICATION, ELOS_SEVERITY, elosSeverity } from '../events/elos.ts';
import type { StorageEvent } from '../events/schema.ts';
import { timestampUsOf, US_PER_SECOND, usToSeconds } from '../events/time.ts';
import type { CompiledFilter, FilterHints, FilterResult } from './types.ts';

export interface EvalState {
  error: string | null;
}

export type NumFn = (ev: StorageEvent) => number;
export type BigFn = (ev: StorageEvent) => bigint;
export type BoolFn = (ev: StorageEvent) => boolean;
export type StrFn = (ev: StorageEvent) => string;

/** Keeps the first error: later operators may fail again on the neutral values. */
export function fail(st: EvalState, message: string): void {
  if (st.error === null) st.error = message;
}

export type EqField = 'hostname' | 'system' | 'event_type' | 'event_id' | 'dev_wwid' | 'dev_name';

interface IntMember {
  type: 'int';
  /** canonical name (aliases resolve to it) */
  name: string;
  /** bounds every value this reader can return; the compiler picks number or BigInt arithmetic from them */
  lo: bigint;
  hi: bigint;
  read: (st: EvalState) => NumFn;
}

interface StringMember {
  type: 'string';
  name: string;
  /** the wire field a `STRCMP` on this member constrains, for FilterHints */
  hintField: EqField | null;
  read: (st: EvalState) => StrFn;
}

export type Member = IntMember | StringMember;

const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

function stringField(name: EqField | 'msg', hintField: EqField | null, alias?: string): StringMember {
  return {
    type: 'string',
    name: alias ?? name,
    hintField,
    // A malformed event (not parsed by the schema) must not pass as a match.
    read: (st) => (ev) => {
      const v = ev[name];
      if (typeof v === 'string') return v;
      fail(st, `the event's ${name} is not a string`);
      return '';
    },
  };
}

function timestampOf(st: EvalState, ev: StorageEvent): number {
  const t = ev.timestamp;
  if (Number.isSafeInteger(t)) return t;
  fail(st, `the event's timestamp is not an integer`);
  return 0;
}

// Distinct bits, so a sum is their union; unlike `|` it stays exact above 2^31.
const BIT_KERNEL = Number(CLASSIFICATION.KERNEL);
const BIT_STORAGE = Number(CLASSIFICATION.STORAGE);
const BIT_HARDWARE = Number(CLASSIFICATION.HARDWARE);
const CLASSIFICATION_ALL = CLASSIFICATION.KERNEL | CLASSIFICATION.STORAGE | CLASSIFICATION.HARDWARE;

// Object.hasOwn on the catalog costs more than the rest of a typical filter:
// the hot lookups use Sets and Maps built from it once.
const HARDWARE_TYPES: ReadonlySet<string> = new Set(EVENT_TYPES.filter((t) => CATALOG[t].hardware));
/** types whose messageCode does not depend on extentions.op */
const PLAIN_CODES: ReadonlyMap<string, number> = new Map(
  EVENT_TYPES.filter((t) => !('io' in CATALOG[t])).map((t): [string, number] => [t, messageCodeOf(t, undefined)]),
);

/** classificationOf() as a number: the same rule without a BigInt allocation per event. */
export function classificationBits(ev: StorageEvent): number {
  let bits = BIT_STORAGE;
  if (ev.extentions.kmsg_seq !== undefined || ev.extentions.source === '/dev/kmsg' || ev.extentions.uevent_source === 'kernel') bits += BIT_KERNEL;
  if (HARDWARE_TYPES.has(ev.event_type)) bits += BIT_HARDWARE;
  return bits;
}

/** I/O error types: the messageCode when extentions.op is neither a read nor a write */
const IO_CODES: ReadonlyMap<string, number> = new Map(
  EVENT_TYPES.filter((t) => 'io' in CATALOG[t]).map((t): [string, number] => [t, messageCodeOf(t, undefined)]),
);

/**
 * `op.toUpperCase().startsWith(word)` for an upper-case ASCII word, without
 * the string toUpperCase allocates; null when it cannot tell (a non-ASCII
 * character may upper-case to several).
 */
function upperStartsWith(op: string, word: string): boolean | null {
  const n = Math.min(op.length, word.length);
  for (let i = 0; i < n; i++) {
    let c = op.charCodeAt(i);
    if (c >= 0x80) return null;
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    if (c !== word.charCodeAt(i)) return false;
  }
  return op.length >= word.length;
}

/** messageCodeOf(ev.event_type, ev.extentions.op), allocation-free for the catalog's types. */
export function messageCode(ev: StorageEvent): number {
  const t = ev.event_type;
  const plain = PLAIN_CODES.get(t);
  if (plain !== undefined) return plain;
  const fallback = IO_CODES.get(t);
  const op = ev.extentions.op;
  if (fallback === undefined || !op) return fallback ?? messageCodeOf(t, op);
  const read = upperStartsWith(op, 'READ');
  if (read === true) return MESSAGE_CODE_READ_ERROR;
  const write = read === null ? null : upperStartsWith(op, 'WRITE');
  if (write === true) return MESSAGE_CODE_WRITE_ERROR;
  return write === null ? messageCodeOf(t, op) : fallback;
}

const MESSAGE_CODE_MAX = BigInt(Math.max(MESSAGE_CODE_READ_ERROR, MESSAGE_CODE_WRITE_ERROR, ...EVENT_TYPES.map((t) => CATALOG[t].messageCode)));
const SEVERITY_VALUES = Object.values(ELOS_SEVERITY);

const MEMBER_LIST: Array<[string[], Member]> = [
  [['date.sec', 'date.tv_sec'], {
    type: 'int', name: 'date.sec', lo: SAFE_MIN, hi: SAFE_MAX,
    read: (st) => (ev) => {
      // eventTimeParts() without its object: timestamp_us by the one rule, else timestamp
      const us = timestampUsOf(ev);
      return us !== null ? usToSeconds(us) : timestampOf(st, ev);
    },
  }],
  [['date.nsec', 'date.tv_nsec'], {
    type: 'int', name: 'date.nsec', lo: 0n, hi: 999_999_000n,
    read: () => (ev) => {
      const us = timestampUsOf(ev);
      return us !== null ? (us % US_PER_SECOND) * 1000 : 0;
    },
  }],
  [['source.appName'], {
    type: 'string', name: 'source.appName', hintField: null,
    read: () => (ev) => `peripety/${ev.extentions.plugin ?? 'unknown'}`,
  }],
  [['source.fileName'], {
    type: 'string', name: 'source.fileName', hintField: null,
    read: () => (ev) => ev.extentions.source ?? '',
  }],
  // The agent's own pid (docs/events.md §1, "The elos view"): pid_t is a 32-bit signed integer.
  [['source.pid'], { type: 'int', name: 'source.pid', lo: 0n, hi: 2n ** 31n - 1n, read: () => () => process.pid }],
  [['severity'], {
    type: 'int', name: 'severity', lo: BigInt(Math.min(...SEVERITY_VALUES)), hi: BigInt(Math.max(...SEVERITY_VALUES)),
    read: () => elosSeverity,
  }],
  [['hardwareid'], stringField('hostname', 'hostname', 'hardwareid')],
  [['classification'], { type: 'int', name: 'classification', lo: 0n, hi: CLASSIFICATION_ALL, read: () => classificationBits }],
  [['messageCode'], {
    type: 'int', name: 'messageCode', lo: 0n, hi: MESSAGE_CODE_MAX,
    read: () => messageCode,
  }],
  [['payload'], stringField('msg', null, 'payload')],
  [['hostname'], stringField('hostname', 'hostname')],
  [['system'], stringField('system', 'system')],
  [['event_type'], stringField('event_type', 'event_type')],
  [['event_id'], stringField('event_id', 'event_id')],
  [['dev_wwid'], stringField('dev_wwid', 'dev_wwid')],
  [['dev_name'], stringField('dev_name', 'dev_name')],
  [['msg'], stringField('msg', null)],
  [['timestamp'], { type: 'int', name: 'timestamp', lo: SAFE_MIN, hi: SAFE_MAX, read: (st) => (ev) => timestampOf(st, ev) }],
];

/** Every member a path may name after `.event.` (aliases included), except `extentions.<key>`. */
export const MEMBERS: ReadonlyMap<string, Member> = new Map(MEMBER_LIST.flatMap(([names, m]) => names.map((n): [string, Member] => [n, m])));

/** Keys are plain identifiers: no prototype names can reach the lookup, which is an own-property check anyway. */
export const EXTENTION_KEY = /^[A-Za-z0-9_-]{1,64}$/;

export function extentionMember(key: string): StringMember {
  return {
    type: 'string',
    name: `extentions.${key}`,
    hintField: null,
    read: (st) => (ev) => {
      const x = ev.extentions;
      if (!Object.hasOwn(x, key)) return '';
      const v = x[key];
      if (typeof v === 'string') return v;
      fail(st, `the event's extentions.${key} is not a string`);
      return '';
    },
  };
}

export function makeCompiledFilter(source: string, hints: FilterHints, root: BoolFn, st: EvalState, cost: number): CompiledFilter {
  const run = (ev: StorageEvent): FilterResult => {
    st.error = null;
    let matched: boolean;
    try {
      matched = root(ev);
    } catch (e) {
      // Only an event that is not a StorageEvent gets here (a missing
      // extentions object, a throwing getter): the filter cannot judge it.
      fail(st, `the event cannot be read: ${(e instanceof Error ? e.message : String(e)).slice(0, 200)}`);
      return 'ERROR';
    }
    if (st.error !== null) return 'ERROR';
    return matched ? 'MATCH' : 'NO_MATCH';
  };
  return Object.freeze({
    source,
    hints,
    cost,
    evaluate: run,
    evaluateDetailed(ev: StorageEvent): { result: FilterResult; error?: string } {
      const result = run(ev);
      return result === 'ERROR' ? { result, error: st.error ?? 'unknown error' } : { result };
    },
  });
}
