// How events look to a person at a terminal.
//
// Every string of an event can be chosen by an attacker: a kernel message
// (the kernel escapes control bytes in /dev/kmsg as \xNN and the parser
// restores them), a device or file-system label, a mount point, a host name
// or a whole forged multicast datagram. A terminal acts on control
// characters: OSC 0 sets the window title, OSC 52 writes the clipboard, CSI
// clears the screen or hides text, bidi overrides make a line read in
// another order than it is stored. So text output never carries them raw:
// escapeControls() turns each into a visible escape, and formatText applies
// it to the whole line. JSON output keeps every value exact (a program reads
// it back), only with the characters JSON.stringify leaves raw written as
// \u escapes.
import type { StorageEvent } from '../events/schema.ts';
import { eventDate, timestampUsOf, US_PER_MS } from '../events/time.ts';
import { eventJson } from '../events/json.ts';

const SEV = { info: 'INFO ', warn: 'WARN ', error: 'ERROR' } as const;

/**
 * C0 controls except TAB (0x00–0x08, 0x0a–0x1f, LF and CR included: one event
 * is one line), DEL, the C1 controls U+0080–U+009F (some terminals act on
 * them as code points too), and the bidi embeddings, overrides and isolates
 * U+202A–U+202E, U+2066–U+2069.
 */
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
const HAS_CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;
/** the same without LF: for messages that are several lines on purpose */
const CONTROLS_BUT_LF = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

function escapeOne(ch: string): string {
  const c = ch.charCodeAt(0);
  // \xNN for the one-byte range (as the kernel writes them in /dev/kmsg), \uNNNN above
  return c <= 0x7f ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`;
}

/**
 * `s` with every terminal control character (see CONTROLS) replaced by a
 * visible escape: ESC → `\x1b`, BEL → `\x07`, U+009B → `\u009b`, U+202E →
 * `\u202e`. For display only: a backslash already in `s` is left as it is, so
 * the result is not meant to be unescaped.
 */
export function escapeControls(s: string): string {
  return HAS_CONTROLS.test(s) ? s.replace(CONTROLS, escapeOne) : s;
}

/** escapeControls, but line feeds stay: error reports that list one problem a line. */
export function escapeControlsKeepLines(s: string): string {
  return HAS_CONTROLS.test(s) ? s.replace(CONTROLS_BUT_LF, escapeOne) : s;
}

/** The first 20 characters of toISOString() ("2026-12-08T00:37:27.") of the second last formatted. */
let isoSecond = NaN;
let isoPrefix = '';
/** 1 Jan 10000: from there on toISOString() writes a six-digit year */
const ISO_FOUR_DIGIT_YEARS_END_MS = 253_402_300_800_000;

/**
 * eventDate(ev).toISOString(), without a Date per event: under a storm the
 * stdout receiver formats thousands of events a second, nearly all within
 * the same second, so the text up to the milliseconds is made once per
 * second and reused. Times before 1970 or after 9999 take the Date path.
 */
function isoTime(ev: StorageEvent): string {
  const us = timestampUsOf(ev);
  // as new Date(x): the time value is x truncated to whole ms
  const ms = us === null ? ev.timestamp * 1000 : Math.trunc(us / US_PER_MS);
  if (!(ms >= 0 && ms < ISO_FOUR_DIGIT_YEARS_END_MS)) return eventDate(ev).toISOString();
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
    isoSecond = second;
  }
  const frac = ms - second * 1000;
  return `${isoPrefix}${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
}

export function formatText(ev: StorageEvent): string {
  const when = isoTime(ev);
  const dev = ev.dev_name ? ` ${ev.dev_name}${ev.dev_wwid ? ` (${ev.dev_wwid})` : ''}` : '';
  const mp = ev.extentions.mount_point ? ` on ${ev.extentions.mount_point}` : '';
  return escapeControls(`${when} ${ev.hostname} ${SEV[ev.severity]} ${ev.system}/${ev.event_type}${dev}${mp}: ${ev.msg}`);
}

// JSON.stringify escapes C0 but leaves DEL, C1 and the bidi controls raw.
const JSON_RAW = /[\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;
const JSON_RAW_G = /[\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

/** A value as JSON for a terminal or a pipe; parses back to exactly the same value. */
export function jsonLine(value: unknown, indent?: number): string {
  return escapeRaw(JSON.stringify(value, null, indent));
}

/** JSON text with the characters a terminal would act on written as \uNNNN (they can only occur inside JSON strings, where that means the same). */
function escapeRaw(json: string): string {
  return JSON_RAW.test(json) ? json.replace(JSON_RAW_G, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`) : json;
}

/** One event as JSON (its shared text, src/events/json.ts); parses back to exactly the same value. */
export function formatJson(ev: StorageEvent): string {
  return escapeRaw(eventJson(ev));
}
