// The elos view of a storage event (docs/events.md §1, "The elos view"): derived,
// never stored separately, so elos filter strings such as
// `.event.severity 1 GT` work unchanged on peripety events.
import { CATALOG, isEventType, messageCodeOf } from './catalog.ts';
import type { StorageEvent } from './schema.ts';
import { eventTimeParts } from './time.ts';

export const ELOS_SEVERITY = { FATAL: 1, ERROR: 2, WARN: 3, INFO: 4 } as const;

export const CLASSIFICATION = {
  KERNEL: 0x1n,
  STORAGE: 0x10n,
  HARDWARE: 0x80n,
} as const;

interface ElosEvent {
  date: { sec: number; nsec: number };
  source: { appName: string; fileName: string; pid: number };
  severity: number;
  hardwareid: string;
  classification: bigint;
  messageCode: number;
  payload: string;
}

/** elos severity: error → 2, warn → 3, info → 4; kernel levels 0-2 → 1 (FATAL). */
export function elosSeverity(ev: StorageEvent): number {
  const level = ev.extentions.kernel_level;
  if (level !== undefined && level !== '' && Number(level) <= 2) return ELOS_SEVERITY.FATAL;
  return ev.severity === 'error' ? ELOS_SEVERITY.ERROR : ev.severity === 'warn' ? ELOS_SEVERITY.WARN : ELOS_SEVERITY.INFO;
}

export function classificationOf(ev: StorageEvent): bigint {
  let bits = CLASSIFICATION.STORAGE;
  if (ev.extentions.kmsg_seq !== undefined || ev.extentions.source === '/dev/kmsg' || ev.extentions.uevent_source === 'kernel') bits |= CLASSIFICATION.KERNEL;
  if (isEventType(ev.event_type) && CATALOG[ev.event_type].hardware) bits |= CLASSIFICATION.HARDWARE;
  return bits;
}

export function toElos(ev: StorageEvent, pid: number = process.pid): ElosEvent {
  const { sec, usec } = eventTimeParts(ev);
  return {
    date: { sec, nsec: usec * 1000 },
    source: {
      appName: `peripety/${ev.extentions.plugin ?? 'unknown'}`,
      fileName: ev.extentions.source ?? '',
      pid,
    },
    severity: elosSeverity(ev),
    hardwareid: ev.hostname,
    classification: classificationOf(ev),
    messageCode: messageCodeOf(ev.event_type, ev.extentions.op),
    payload: ev.msg,
  };
}
