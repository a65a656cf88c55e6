// Metrics of the multicast sender and listeners. prom-client refuses a second
// metric of the same name in one registry, and the agent keeps its registry
// across configuration reloads (each reload builds a new sender), so the
// metrics are created once per registry and shared.
import { Counter, Gauge, type Registry } from 'prom-client';
import { perRegistry } from '../metrics/per-registry.ts';

export interface SenderMetrics {
  sent: Counter;
  dropped: Counter<'reason'>;
  errors: Counter;
  truncated: Counter;
}

export interface ListenerMetrics {
  received: Counter;
  lost: Counter;
  duplicates: Counter;
  reordered: Counter;
  malformed: Counter;
  rejected: Counter<'reason'>;
  resyncs: Counter;
  retracted: Counter;
  senders: Gauge;
}

export const senderMetrics = perRegistry((registry: Registry): SenderMetrics => {
  const registers = [registry];
  return {
    sent: new Counter({ name: 'peripety_multicast_sent_datagrams_total', help: 'Events sent to the multicast group (one datagram each)', registers }),
    dropped: new Counter({
      name: 'peripety_multicast_dropped_events_total',
      help: 'Events not sent to the multicast group, by reason (queue_full, too_large, send_error); each still used a sequence number, so listeners see the loss',
      labelNames: ['reason'], registers,
    }),
    errors: new Counter({ name: 'peripety_multicast_errors_total', help: 'Multicast socket errors (bind, send)', registers }),
    truncated: new Counter({ name: 'peripety_multicast_truncated_events_total', help: 'Events shortened to fit the datagram size limit', registers }),
  };
});

/** Why an authentic-looking datagram was refused (the label of peripety_multicast_rejected_datagrams_total). */
export type RejectReason = 'unsigned' | 'bad_mac' | 'expired' | 'replayed';
export const REJECT_REASONS: readonly RejectReason[] = ['unsigned', 'bad_mac', 'expired', 'replayed'];

export const listenerMetrics = perRegistry((registry: Registry): ListenerMetrics => {
  const registers = [registry];
  const m: ListenerMetrics = {
    received: new Counter({ name: 'peripety_multicast_received_events_total', help: 'Events received from the multicast group (duplicates not counted)', registers }),
    lost: new Counter({ name: 'peripety_multicast_lost_events_total', help: 'Events missing from the multicast group (gaps in the senders\' sequence numbers)', registers }),
    duplicates: new Counter({ name: 'peripety_multicast_duplicate_datagrams_total', help: 'Datagrams received twice (ignored)', registers }),
    reordered: new Counter({ name: 'peripety_multicast_reordered_datagrams_total', help: 'Datagrams that arrived after their gap was counted as lost (delivered; lost corrected)', registers }),
    malformed: new Counter({ name: 'peripety_multicast_malformed_datagrams_total', help: 'Datagrams on the group that are not peripety events', registers }),
    rejected: new Counter({
      name: 'peripety_multicast_rejected_datagrams_total',
      help: 'Datagrams refused by a listener with a shared key, by reason (unsigned, bad_mac: forged or changed, expired: time outside the window, replayed: seen before)',
      labelNames: ['reason'], registers,
    }),
    resyncs: new Counter({ name: 'peripety_multicast_resynced_streams_total', help: 'Implausible sequence jumps (forward beyond the bound, or back beyond the window): the stream started over instead of counting a loss', registers }),
    retracted: new Counter({ name: 'peripety_multicast_retracted_lost_events_total', help: 'Events first counted lost in a gap that a later resync showed was opened by an implausible (forged) number', registers }),
    senders: new Gauge({ name: 'peripety_multicast_senders', help: 'Streams (sender id and source address; sender id alone with a key) whose sequence numbers are tracked', registers }),
  };
  // every reason from the start, so that a rate over it works before the first refusal
  for (const reason of REJECT_REASONS) m.rejected.labels(reason);
  return m;
});

