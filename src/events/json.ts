// An event as JSON, made once and shared. The multicast sender, the stdout
// receiver, the SSE stream, the jsonl backend and the storage spool each need
// the same text of the same event; each used to call JSON.stringify on its
// own (issue 14: four serialisations of every event under a storm).
//
// The cache is keyed by the event object (a WeakMap: an event that is gone
// takes its text with it). That is sound because an event is not changed once
// the bus hands it on: receivers and backends only read it (a truncated
// multicast copy or a redacted webhook body is a new object). Build a new
// event rather than change one that was delivered.
import type { StorageEvent } from './schema.ts';

const texts = new WeakMap<StorageEvent, string>();

/** JSON.stringify(ev), computed once per event object. */
export function eventJson(ev: StorageEvent): string {
  let s = texts.get(ev);
  if (s === undefined) {
    s = JSON.stringify(ev);
    texts.set(ev, s);
  }
  return s;
}
