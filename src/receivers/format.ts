// How events look to a person at a terminal.
import type { StorageEvent } from '../events/schema.ts';

const SEV = { info: 'INFO ', warn: 'WARN ', error: 'ERROR' } as const;

export function formatText(ev: StorageEvent): string {
  const us = Number(ev.extentions.timestamp_us);
  const when = new Date(Number.isFinite(us) ? us / 1000 : ev.timestamp * 1000).toISOString();
  const dev = ev.dev_name ? ` ${ev.dev_name}${ev.dev_wwid ? ` (${ev.dev_wwid})` : ''}` : '';
  const mp = ev.extentions.mount_point ? ` on ${ev.extentions.mount_point}` : '';
  return `${when} ${ev.hostname} ${SEV[ev.severity]} ${ev.system}/${ev.event_type}${dev}${mp}: ${ev.msg}`;
}

export function formatJson(ev: StorageEvent): string {
  return JSON.stringify(ev);
}
