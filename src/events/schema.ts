// The wire format of a storage event (docs/events.md §1) as a zod schema: the one
// source of truth for the StorageEvent type. Field names are the seed's,
// including its spelling `extentions`: existing consumers parse it.
import { z } from 'zod';

export const SEVERITIES = ['info', 'warn', 'error'] as const;
export const Severity = z.enum(SEVERITIES);
export type Severity = z.infer<typeof Severity>;

export const SYSTEMS = ['scsi', 'nvme', 'block', 'multipath', 'dm', 'lvm', 'mdraid', 'fs'] as const;
export const System = z.enum(SYSTEMS);
export type System = z.infer<typeof System>;

export const StorageEvent = z.object({
  hostname: z.string(),
  severity: Severity,
  system: System,
  timestamp: z.number().int(),
  event_id: z.string(),
  event_type: z.string().regex(/^([A-Z][A-Z0-9_]*)?$/),
  dev_wwid: z.string(),
  dev_name: z.string(),
  msg: z.string(),
  extentions: z.record(z.string(), z.string()),
});
export type StorageEvent = z.infer<typeof StorageEvent>;

const SEVERITY_RANK: Record<Severity, number> = { info: 0, warn: 1, error: 2 };

/** The worse of two severities (a parser may raise, never lower). */
export function worse(a: Severity, b: Severity): Severity {
  return SEVERITY_RANK[a] >= SEVERITY_RANK[b] ? a : b;
}

/** Kernel log level 0-3 → error, 4 → warn, 5-7 → info (docs/events.md §1). */
export function severityOfLevel(level: number): Severity {
  if (level <= 3) return 'error';
  if (level === 4) return 'warn';
  return 'info';
}

export function isSystem(s: string): s is System {
  return (SYSTEMS as readonly string[]).includes(s);
}
