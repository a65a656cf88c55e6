// Scoring the real-world corpus (test/fixtures/real-world/*.jsonl, described
// in its README): each line through `prpt parse`'s own parser, as pasted and
// as the bare kernel message, against the event it should give.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { OfflineParser } from '../../src/agent/offline.ts';
import type { StorageEvent } from '../../src/events/schema.ts';
import { ROOT } from './agent.ts';

export const CorpusEntry = z.object({
  source: z.string().url(),
  format: z.string(),
  line: z.string().min(1),
  message: z.string(),
  expect: z.object({ type: z.string(), system: z.string(), device: z.string().nullable(), severity: z.string(), new: z.boolean().optional() }).nullable(),
  family: z.string(),
  note: z.string().optional(),
});
export type CorpusEntry = z.infer<typeof CorpusEntry>;

export function loadCorpus(dir = path.join(ROOT, 'test/fixtures/real-world')): CorpusEntry[] {
  const out: CorpusEntry[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort()) {
    readFileSync(path.join(dir, f), 'utf8').split('\n').forEach((l, i) => {
      if (l.trim() === '') return;
      const r = CorpusEntry.safeParse(JSON.parse(l));
      if (!r.success) throw new Error(`${f}:${i + 1}: ${r.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
      out.push(r.data);
    });
  }
  return out;
}

export function parseText(text: string): StorageEvent[] {
  const events: StorageEvent[] = [];
  const p = new OfflineParser({ hostname: 'unknown', bootId: 'corpus', bootEpochUs: 0, resolver: null, source: 'corpus', text: { year: 2021 } }, (e) => events.push(e), () => {});
  for (const l of text.split('\n')) p.line(l);
  p.end();
  return events;
}

export interface Score {
  storage: number;
  hitAsPasted: number;
  hitBare: number;
  /** unrelated (non-storage) kernel lines: family `none` */
  nonStorage: number;
  falsePositives: CorpusEntry[];
  /**
   * storage lines that carry no event of their own (a failure's context or
   * result line, progress): scored alone they may still make one, which is
   * not a false positive — the line is about storage — only counted
   */
  context: number;
  contextWithEvent: number;
  misses: { entry: CorpusEntry; got: string }[];
  /** where the expected event was made: how often its severity is the one expected */
  severityAgrees: number;
  wrongIdentity: { entry: CorpusEntry; got: string }[];
}

function describe(evs: StorageEvent[]): string {
  return evs.map((e) => `${e.event_type}/${e.system}/${e.dev_name || '-'}/${e.severity}`).join(' ') || 'none';
}

/** An event of the expected type, and — when it is made — the system and device right. */
export function scoreCorpus(entries: CorpusEntry[]): Score {
  const s: Score = { storage: 0, hitAsPasted: 0, hitBare: 0, nonStorage: 0, falsePositives: [], context: 0, contextWithEvent: 0, misses: [], severityAgrees: 0, wrongIdentity: [] };
  for (const e of entries) {
    const pasted = parseText(e.line);
    if (e.expect === null) {
      if (e.family === 'none') {
        s.nonStorage++;
        if (pasted.length > 0) s.falsePositives.push(e);
      } else {
        s.context++;
        if (pasted.length > 0) s.contextWithEvent++;
      }
      continue;
    }
    s.storage++;
    const want = e.expect;
    const hit = (evs: StorageEvent[]): StorageEvent | undefined => evs.find((ev) => ev.event_type === want.type);
    const p = hit(pasted);
    if (p) {
      s.hitAsPasted++;
      if (p.severity === want.severity) s.severityAgrees++;
      const dev = p.dev_name || null;
      if (p.system !== want.system || (want.device !== null && dev !== want.device)) s.wrongIdentity.push({ entry: e, got: describe([p]) });
    } else s.misses.push({ entry: e, got: describe(pasted) });
    if (hit(parseText(e.message))) s.hitBare++;
  }
  return s;
}
