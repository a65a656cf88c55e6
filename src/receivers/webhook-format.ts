// What the webhook receiver sends, and the pure parts of its retry policy:
// request bodies (peripety's own `{"events":[…]}` or Alertmanager's alert
// list), the idempotency key of a batch, the classification of HTTP
// statuses, Retry-After and the backoff. No I/O here (webhook.ts does it).
import { createHash } from 'node:crypto';
import { backoffDelay as sharedBackoffDelay } from '../contracts/backoff.ts';
import type { StorageEvent } from '../events/schema.ts';
import { eventDate } from '../events/time.ts';

export const WEBHOOK_FORMATS = ['events', 'alertmanager'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/** The default body: the batch's events in the wire format (docs/events.md §1), each with its event_id. */
export function eventsPayload(batch: readonly StorageEvent[]): string {
  return JSON.stringify({ events: batch });
}

/** One alert as Alertmanager's `POST /api/v2/alerts` takes it (postableAlert). */
export interface AlertmanagerAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  generatorURL?: string;
}

/** Alertmanager severity label values, as Prometheus alerting rules commonly use them. */
export const ALERT_SEVERITY = { error: 'critical', warn: 'warning', info: 'info' } as const;

/**
 * An event as an Alertmanager alert. Labels identify the alert, so they hold
 * what names the condition, never what names one occurrence: the same kind
 * of event on the same device of the same node is one alert that repeats
 * (Alertmanager groups and de-duplicates it), not a new one per event.
 * Empty values are left out (Alertmanager treats an empty label as absent).
 * No endsAt: Alertmanager resolves the alert after its resolve_timeout unless
 * the event comes again.
 */
export function toAlert(ev: StorageEvent, generatorUrl?: string): AlertmanagerAlert {
  const labels: Record<string, string> = {
    alertname: ev.event_type || 'PeripetyStorageEvent',
    severity: ALERT_SEVERITY[ev.severity],
    system: ev.system,
    instance: ev.hostname,
  };
  if (ev.dev_name) labels.device = ev.dev_name;
  if (ev.dev_wwid) labels.wwid = ev.dev_wwid;
  if (ev.extentions.mount_point) labels.mount_point = ev.extentions.mount_point;
  labels.source = 'peripety';

  const annotations: Record<string, string> = {
    summary: ev.msg,
    description: describe(ev),
    event_id: ev.event_id,
    timestamp: eventDate(ev).toISOString(),
  };
  if (ev.extentions.raw_msg) annotations.raw_msg = ev.extentions.raw_msg;
  const alert: AlertmanagerAlert = { labels, annotations, startsAt: eventDate(ev).toISOString() };
  if (generatorUrl) alert.generatorURL = generatorUrl;
  return alert;
}

/** A sentence for people: what, where, and the kernel's own words when there are some. */
function describe(ev: StorageEvent): string {
  const where = ev.dev_name ? ` on ${ev.dev_name}${ev.dev_wwid ? ` (${ev.dev_wwid})` : ''}` : '';
  const mp = ev.extentions.mount_point ? `, mounted on ${ev.extentions.mount_point}` : '';
  const raw = ev.extentions.raw_msg ? ` Kernel: ${ev.extentions.raw_msg}` : '';
  return `${ev.system} ${ev.event_type || 'event'}${where}${mp} at ${ev.hostname}: ${ev.msg}.${raw}`;
}

/** The Alertmanager body: a JSON array of alerts, one per event. */
export function alertmanagerPayload(batch: readonly StorageEvent[], generatorUrl?: string): string {
  return JSON.stringify(batch.map((ev) => toAlert(ev, generatorUrl)));
}

export function payload(format: WebhookFormat, batch: readonly StorageEvent[], generatorUrl?: string): string {
  return format === 'alertmanager' ? alertmanagerPayload(batch, generatorUrl) : eventsPayload(batch);
}

/**
 * What tells two events apart: a synthetic event keeps the event_id of the
 * raw record it came from, and one record may yield events of different
 * types or devices.
 */
export function eventKey(ev: StorageEvent): string {
  return `${ev.event_id}/${ev.system}/${ev.event_type}/${ev.dev_name}`;
}

/**
 * The Idempotency-Key of a batch: SHA-256 (hex) of its event keys in order.
 * A retried batch carries the same key, so a server that saw the first
 * attempt (whose answer was lost) can drop the repeat.
 */
export function idempotencyKey(batch: readonly StorageEvent[]): string {
  const h = createHash('sha256');
  for (const ev of batch) h.update(eventKey(ev)).update('\n');
  return h.digest('hex');
}

export type StatusClass = 'ok' | 'retryable' | 'rejected';

/**
 * 2xx: delivered. 408 and 429 (the server asks to come back) and 5xx:
 * retried. Other 4xx: the request itself is wrong and will stay wrong:
 * rejected, not retried. 3xx (redirects are not followed: a POST body and a
 * token must not wander to another URL) are rejected too: configure the
 * final URL. Anything else is retried.
 */
export function classifyStatus(status: number): StatusClass {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 408 || status === 429) return 'retryable';
  if (status >= 300 && status < 500) return 'rejected';
  return 'retryable';
}

/** Retry-After (delta-seconds or an HTTP-date) as milliseconds from `now`; null when absent or unparsable. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | null {
  if (value === null || value === undefined) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v), 1e9) * 1000;
  if (!/[a-z]/i.test(v)) return null; // no sign of a date ("-5", "1.5")
  const t = Date.parse(v);
  if (Number.isNaN(t)) return null;
  return Math.max(0, t - now);
}

/** between half and all of the exponential wait */
const EQUAL_JITTER = { min: 0.5, max: 1 } as const;

/**
 * The wait before retry number `retry` (1 for the first): the shared
 * exponential backoff (src/contracts/backoff.ts, initial × 2^(retry−1),
 * capped at maxMs) with "equal jitter" (between half and all of it, so many
 * agents that failed together do not retry together, yet none retries at
 * once). A Retry-After from the server raises it (never lowers it), up to
 * maxMs as well: a longer wait is left to the next retry's answer. `random`
 * is in [0, 1).
 */
export function backoffDelay(retry: number, policy: { initialMs: number; maxMs: number }, retryAfterMs: number | null, random: () => number = Math.random): number {
  const jittered = sharedBackoffDelay(retry, { ...policy, jitter: EQUAL_JITTER }, random);
  const wanted = retryAfterMs === null ? jittered : Math.max(jittered, retryAfterMs);
  return Math.round(Math.min(policy.maxMs, wanted));
}
