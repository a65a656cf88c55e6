// Metrics of the network receivers (journald, webhook) beyond the sent and
// dropped counts every QueuedReceiver has (src/metrics/agent-metrics.ts).
//
// One set per registry, created on first use: a reload builds the new
// receivers while the old ones still drain, on the same registry, and
// prom-client refuses a second metric of the same name
// (src/metrics/per-registry.ts). Labels are bounded: receiver names come
// from the configuration, `result` and `transport` are fixed sets.
import { Counter, type Registry } from 'prom-client';
import { perRegistry } from '../metrics/per-registry.ts';

export const WEBHOOK_RESULTS = ['ok', 'retryable', 'rejected', 'timeout', 'network'] as const;
export type WebhookResult = (typeof WEBHOOK_RESULTS)[number];

export const JOURNAL_TRANSPORTS = ['datagram', 'memfd'] as const;
export type JournalTransport = (typeof JOURNAL_TRANSPORTS)[number];

export interface ReceiverMetrics {
  /** failed delivery attempts (a request that failed, a send that failed), retried or not */
  errors: Counter<'receiver'>;
  /** attempts that were retries of an earlier failed one */
  retries: Counter<'receiver'>;
  /** events the far end refused for good (HTTP 4xx other than 408/429): dropped, never retried */
  rejected: Counter<'receiver'>;
  /** webhook requests by outcome */
  webhookRequests: Counter<'receiver' | 'result'>;
  /** journal entries written, by how they travelled */
  journalEntries: Counter<'receiver' | 'transport'>;
  /** extentions keys left out of a journal entry (no valid field name, a duplicate name, too many fields) */
  journalSkippedFields: Counter<'receiver'>;
}

/** Declared once per registry (src/metrics/per-registry.ts). */
export const receiverMetrics = perRegistry((registry: Registry): ReceiverMetrics => {
  const registers = [registry];
  return {
    errors: new Counter({ name: 'peripety_receiver_errors_total', help: 'Failed delivery attempts of a receiver (each attempt counts, retried or not)', labelNames: ['receiver'], registers }),
    retries: new Counter({ name: 'peripety_receiver_retries_total', help: 'Delivery attempts that retried an earlier failed one', labelNames: ['receiver'], registers }),
    rejected: new Counter({ name: 'peripety_receiver_rejected_events_total', help: 'Events the destination refused for good (HTTP 4xx other than 408/429); dropped without retry', labelNames: ['receiver'], registers }),
    webhookRequests: new Counter({
      name: 'peripety_webhook_requests_total',
      help: 'Webhook HTTP requests by result (ok: 2xx; retryable: 5xx, 408, 429, other 1xx/3xx; rejected: other 4xx; timeout; network)',
      labelNames: ['receiver', 'result'], registers,
    }),
    journalEntries: new Counter({
      name: 'peripety_journald_entries_total',
      help: 'Journal entries sent to journald, by transport (datagram, or a sealed memfd for large entries)',
      labelNames: ['receiver', 'transport'], registers,
    }),
    journalSkippedFields: new Counter({
      name: 'peripety_journald_skipped_fields_total',
      help: 'Event extentions left out of journal entries (no valid journal field name, a duplicate name, or over the field limit)',
      labelNames: ['receiver'], registers,
    }),
  };
});
