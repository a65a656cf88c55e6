// GET /v1/events parameters → a validated query (docs/storage.md "Queries"). Pure: the
// server and `prpt query` share it, and tests call it directly.
import { z } from 'zod';

/** Most events one HTTP answer carries; `limit=0` (unbounded in elos) is cut here and says so with isTruncated. */
export const MAX_HTTP_LIMIT = 10_000;
const DEFAULT_HTTP_LIMIT = 1000;

const micros = z
  .string()
  .regex(/^\d{1,17}$/, 'must be Unix time in microseconds (digits only), 0 for unbounded')
  .transform(Number);

const EventsQueryParams = z.strictObject({
  filter: z.string().max(4096, 'at most 4096 characters').optional(),
  newest: micros.optional(),
  oldest: micros.optional(),
  limit: z.string().regex(/^\d{1,9}$/, 'must be a non-negative integer').transform(Number).optional(),
  backend: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a backend name').optional(),
});

export interface EventsRequest {
  filter: string | null;
  newest: number;
  oldest: number;
  /** what the backend is asked for (≥ 1, ≤ MAX_HTTP_LIMIT) */
  limit: number;
  /** the client asked for everything (limit=0): truncation at MAX_HTTP_LIMIT is reported */
  unbounded: boolean;
  backend: string | null;
}

type EventsRequestResult = { ok: true; request: EventsRequest } | { ok: false; error: string };

export function parseEventsQuery(params: URLSearchParams): EventsRequestResult {
  // A Map, not an object literal: `raw[k] = v` with k "__proto__" calls the
  // prototype setter instead of adding a key, so `?__proto__=1` slipped past
  // both the duplicate check and the strict schema. Object.fromEntries defines
  // own properties, so the schema sees (and refuses) every name given.
  const raw = new Map<string, string>();
  for (const [k, v] of params) {
    if (raw.has(k)) return { ok: false, error: `parameter "${k.slice(0, 40)}" given twice` };
    raw.set(k, v);
  }
  const r = EventsQueryParams.safeParse(Object.fromEntries(raw));
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const key = issue.path.length > 0 ? String(issue.path[0]) : '';
    const message = issue.code === 'unrecognized_keys' ? `unknown parameter ${issue.keys.map((k) => `"${k.slice(0, 40)}"`).join(', ')}` : `${key}: ${issue.message}`;
    return { ok: false, error: message };
  }
  const p = r.data;
  const newest = p.newest ?? 0;
  const oldest = p.oldest ?? 0;
  if (newest !== 0 && oldest !== 0 && oldest >= newest) {
    return { ok: false, error: 'oldest must be before newest (newest is inclusive, oldest exclusive)' };
  }
  const asked = p.limit ?? DEFAULT_HTTP_LIMIT;
  return {
    ok: true,
    request: {
      filter: p.filter !== undefined && p.filter.trim() !== '' ? p.filter : null,
      newest,
      oldest,
      limit: asked === 0 ? MAX_HTTP_LIMIT : Math.min(asked, MAX_HTTP_LIMIT),
      unbounded: asked === 0 || asked > MAX_HTTP_LIMIT,
      backend: p.backend ?? null,
    },
  };
}
