// Event time: microseconds since the Unix epoch (docs/events.md §1, "Event
// time"). Every part that reads or writes an event's time comes here, so a
// filter, the elos view, a backend's time column, a receiver's timestamp and
// a Kubernetes Event agree on what time an event has.
//
// An event carries its time twice: `timestamp` (Unix seconds, an integer —
// the schema enforces that, and zod's int() means a safe integer) and
// `extentions.timestamp_us` (Unix µs as decimal text, the precise one). The
// schema does not check timestamp_us: extentions are opaque strings on the
// wire (a sender is never refused for one), so the rule below decides, here
// and nowhere else, whether timestamp_us is an event time:
//
//   1 to 16 ASCII digits, value above 0 and at most Number.MAX_SAFE_INTEGER
//   (9007199254740991 µs, the year 2255).
//
// Why this rule: it is what the agent writes (formatTimestampUs), digits
// only, so nothing the agent emits is refused; a safe integer is exact as a
// JS number, so seconds, the sub-second part, a SQL integer and a Date
// (±8.64e15 ms) all hold it without rounding — the same range the schema
// grants `timestamp`; 0 and below mean "not known" (the epoch itself is no
// kernel event's time). Anything else (a sign, an exponent, a fraction,
// hex, spaces, a value past 2^53) is not a time, and `timestamp` seconds
// stand in for it.
import type { StorageEvent } from './schema.ts';

export const US_PER_MS = 1000;
export const US_PER_SECOND = 1_000_000;

/** extentions.timestamp_us as µs when it follows the rule above, else null. */
export function parseTimestampUs(text: string | undefined): number | null {
  // digit by digit rather than a regex and Number(): this runs per event per
  // backend and filter, and is faster than either. Exact: every partial value
  // is below the final one, and a value past 2^53 cannot round down below it.
  if (text === undefined || text.length === 0 || text.length > 16) return null;
  let us = 0;
  for (let i = 0; i < text.length; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return null;
    us = us * 10 + d;
  }
  return us > 0 && us <= Number.MAX_SAFE_INTEGER ? us : null;
}

/** The event's precise time in µs (valid extentions.timestamp_us), else null. */
export function timestampUsOf(ev: StorageEvent): number | null {
  return parseTimestampUs(ev.extentions.timestamp_us);
}

/** The event's time in µs: timestamp_us when valid, else `timestamp` seconds. */
export function eventTimeUs(ev: StorageEvent): number {
  return timestampUsOf(ev) ?? ev.timestamp * US_PER_SECOND;
}

/**
 * The event's time as whole seconds and the microseconds within that second
 * (the elos view's date.sec and date.nsec / 1000): from timestamp_us when
 * valid, else `timestamp` and 0 — taken as is, not through µs, so a large
 * `timestamp` is not rounded.
 */
export function eventTimeParts(ev: StorageEvent): { sec: number; usec: number } {
  const us = timestampUsOf(ev);
  if (us === null) return { sec: ev.timestamp, usec: 0 };
  const sec = usToSeconds(us);
  return { sec, usec: us - sec * US_PER_SECOND };
}

/** The event's time as a Date (ms resolution): timestamp_us when valid, else `timestamp`. */
export function eventDate(ev: StorageEvent): Date {
  const us = timestampUsOf(ev);
  return new Date(us === null ? ev.timestamp * 1000 : us / US_PER_MS);
}

/** Whole seconds of a time in µs (rounded down, also before 1970). */
export function usToSeconds(us: number): number {
  return Math.floor(us / US_PER_SECOND);
}

export function msToUs(ms: number): number {
  return ms * US_PER_MS;
}

export function secondsToUs(seconds: number): number {
  return seconds * US_PER_SECOND;
}

/** Now, in µs since the epoch (ms resolution: Date.now()). */
export function nowUs(): number {
  return Date.now() * US_PER_MS;
}

/** '000' … '999' */
const THREE_DIGITS: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
let lastSec = -1;
let lastSecText = '';

/**
 * µs as the decimal text events carry in timestamp_us. String(n) on a
 * number this large takes V8's double-to-string path; two small integers
 * are much cheaper (this runs for every event the agent makes).
 */
export function formatTimestampUs(us: number): string {
  const sec = usToSeconds(us);
  const frac = us - sec * US_PER_SECOND;
  if (sec <= 0 || !Number.isSafeInteger(us)) return String(Math.floor(us));
  // The seconds repeat from event to event: their text is kept. The
  // microseconds are two groups of three digits from a table: String() of
  // them (a double, not a small integer, to V8) was ~1 % of the pipeline.
  if (sec !== lastSec) {
    lastSec = sec;
    lastSecText = String(sec);
  }
  const ms = Math.floor(frac / 1000);
  return lastSecText + THREE_DIGITS[ms]! + THREE_DIGITS[frac - ms * 1000]!;
}

