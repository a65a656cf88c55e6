// Time arguments of `prpt query --since/--until`: what a person types, turned
// into Unix microseconds. Pure: `now` is passed in.
import { msToUs, secondsToUs } from '../events/time.ts';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/**
 * `now`; a duration ago (`90s`, `15m`, `2h`, `7d`, `1w`); Unix seconds
 * (`1700000000`, up to 11 digits) or microseconds (16 digits); an ISO 8601
 * date or date-time (`2026-11-22`, `2026-11-22T10:00:00Z`; without a zone: UTC).
 */
export function parseTimeArg(text: string, nowMs: number): { ok: true; us: number } | { ok: false; error: string } {
  const s = text.trim();
  if (s === 'now') return { ok: true, us: msToUs(nowMs) };
  let m = /^(\d{1,9})([smhdw])$/.exec(s);
  if (m) return { ok: true, us: msToUs(nowMs - Number(m[1]) * UNITS[m[2]!]! * 1000) };
  if (/^\d{1,11}$/.test(s)) return { ok: true, us: secondsToUs(Number(s)) };
  if (/^\d{16}$/.test(s)) return { ok: true, us: Number(s) };
  m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(s);
  if (m) {
    const zone = m[8] ?? 'Z';
    const iso = `${m[1]}-${m[2]}-${m[3]}T${m[4] ?? '00'}:${m[5] ?? '00'}:${m[6] ?? '00'}${zone === 'Z' ? 'Z' : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone}`;
    const ms = Date.parse(iso);
    if (Number.isFinite(ms)) return { ok: true, us: msToUs(ms) + Number((m[7] ?? '').padEnd(6, '0')) };
  }
  return { ok: false, error: `"${s.slice(0, 60)}" is not a time: use now, a duration ago (15m, 2h, 7d), Unix seconds, or ISO 8601 (2026-11-22T10:00:00Z)` };
}
