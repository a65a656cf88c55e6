// Metrics of the network receivers (journald, webhook) beyond the sent and
// dropped counts every QueuedReceiver has (src/metrics/agent-metrics.ts).
//
// One set per registry, created on first use: a reload builds the new
// receivers while the old ones still drain, on the same registry, and
// prom-client refuses a second metric of the same name. A metric another
// module registered first under the same name is reused, not registered
// again. Labels are bounded: receiver names come from the configuration,
// `result` and `transport` are fixed sets.
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

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) {
    if (existing instanceof Counter) return existing as Counter<L>;
    throw new Error(`metric ${name} is already registered with another type`);
  }
  return new Counter({ name, help, labelNames, registers: [registry] });
}

export const receiverMetrics = perRegistry((registry: Registry): ReceiverMetrics => ({
  errors: counter(registry, 'peripety_receiver_errors_total', 'Failed delivery attempts of a receiver (each attempt counts, retried or not)', ['receiver']),
  retries: counter(registry, 'peripety_receiver_retries_total', 'Delivery attempts that retried an earlier failed one', ['receiver']),
  rejected: counter(registry, 'peripety_receiver_rejected_events_total', 'Events the destination refused for good (HTTP 4xx other than 408/429); dropped without retry', ['receiver']),
  webhookRequests: counter(registry, 'peripety_webhook_requests_total', 'Webhook HTTP requests by result (ok: 2xx; retryable: 5xx, 408, 429, other 1xx/3xx; rejected: other 4xx; timeout; network)', ['receiver', 'result']),
  journalEntries: counter(registry, 'peripety_journald_entries_total', 'Journal entries sent to journald, by transport (datagram, or a sealed memfd for large entries)', ['receiver', 'transport']),
  journalSkippedFields: counter(registry, 'peripety_journald_skipped_fields_total', 'Event extentions left out of journal entries (no valid journal field name, a duplicate name, or over the field limit)', ['receiver']),
}));
