// The plugin registry: every implementation a configuration section may name,
// with the schema of its options (from the pure src/config/plugins.ts, under
// the same names) and how to build it. Adding a collector or
// a receiver means adding one entry here; the agent never names plugins.
import { COLLECTOR_OPTIONS, type CollectorName, RECEIVER_OPTIONS, type ReceiverName } from '../config/plugins.ts';
import type { AgentConfig, MainSection } from '../config/schema.ts';
import { KmsgCollector } from '../kmsg/collector.ts';
import { KmsgOptions } from '../kmsg/options.ts';
import { UdevCollector } from '../udev/collector.ts';
import { UdevOptions } from '../udev/options.ts';
import type { Logger } from '../log/logger.ts';
import { MulticastSender, type MulticastSenderOptions } from '../multicast/sender.ts';
import { DeviceErrorsReceiver } from '../receivers/device-errors.ts';
import type { AgentMetrics } from '../metrics/agent-metrics.ts';
import type { QueuedReceiver } from '../receivers/queued.ts';
import { StdoutReceiver } from '../receivers/stdout.ts';
import { StdoutOptions, JournaldOptions } from '../receivers/options.ts';
import { JournaldReceiver } from '../receivers/journald.ts';
import { createWebhookReceiver } from '../receivers/webhook.ts';
import { createK8sEventsReceiver } from '../receivers/k8s-events/index.ts';
import type { CollectorPlugin, OptionsSchema } from '../contracts/collector.ts';

export interface ReceiverDepsFull {
  log: Logger;
  metrics: AgentMetrics;
  config: AgentConfig;
}

export interface ReceiverPlugin {
  options: OptionsSchema;
  create(name: string, options: Record<string, unknown>, deps: ReceiverDepsFull): QueuedReceiver;
}

/** The multicast sender's options from [main] (the seed's keys). */
export function senderOptions(main: MainSection): MulticastSenderOptions {
  return {
    group: main.receiver_multicast_ip,
    port: main.receiver_multicast_port,
    bindIp: main.receiver_bind_ip,
    interfaceIp: main.multicast_interface,
    ttl: main.multicast_ttl,
    loopback: main.multicast_loopback,
    maxDatagram: main.multicast_max_datagram,
    queueSize: main.queue_size,
    keyFile: main.multicast_key_file,
  };
}

/**
 * Receivers every agent runs whatever the plugin sections say (the seed's
 * multicast broadcast, configured by [main]); built after the configured ones.
 */
export function builtinReceivers(deps: ReceiverDepsFull): QueuedReceiver[] {
  const out: QueuedReceiver[] = [];
  if (deps.config.main.multicast) out.push(new MulticastSender('multicast', senderOptions(deps.config.main), { log: deps.log, metrics: deps.metrics }));
  out.push(new DeviceErrorsReceiver('device-errors', deps.config.main.queue_size, { log: deps.log, metrics: deps.metrics }));
  return out;
}

export const COLLECTORS: Readonly<Record<string, CollectorPlugin>> = {
  kmsg: {
    options: COLLECTOR_OPTIONS.kmsg,
    create: (name, options, deps, sink) => new KmsgCollector(name, KmsgOptions.parse(options), deps, sink),
    // Refused rather than given separate positions: each reads the whole
    // kernel log, so two would still deliver every record twice.
    onlyOne: 'each reads the whole kernel log, so two would deliver every record twice, and they would share one saved position (<state_dir>/kmsg.position.json)',
  },
  udev: {
    options: COLLECTOR_OPTIONS.udev,
    create: (name, options, deps, sink) => new UdevCollector(name, UdevOptions.parse(options), deps, sink),
  },
} satisfies Record<CollectorName, CollectorPlugin>;

export const RECEIVERS: Readonly<Record<string, ReceiverPlugin>> = {
  stdout: {
    options: RECEIVER_OPTIONS.stdout,
    create: (name, options, { log, metrics, config }) => new StdoutReceiver(name, StdoutOptions.parse(options), config.main.queue_size, { log, metrics }),
  },
  journald: {
    options: RECEIVER_OPTIONS.journald,
    create: (name, options, { log, metrics, config }) => new JournaldReceiver(name, JournaldOptions.parse(options), config.main.queue_size, { log, metrics }),
  },
  webhook: {
    options: RECEIVER_OPTIONS.webhook,
    create: (name, options, { log, metrics, config }) => createWebhookReceiver(name, options, config.main.queue_size, { log, metrics }),
  },
  'k8s-events': {
    options: RECEIVER_OPTIONS['k8s-events'],
    create: (name, options, { log, metrics, config }) => createK8sEventsReceiver(name, options, config.main.queue_size, { log, metrics, hostname: config.main.hostname }),
  },
} satisfies Record<ReceiverName, ReceiverPlugin>;

/**
 * Collectors that may run once but are configured more than once (enabled
 * sections only): the error text, or null. Every clash is named, not only
 * the first.
 */
export function collectorClashes(config: AgentConfig): string | null {
  const byPlugin = new Map<string, string[]>();
  for (const p of config.plugins) {
    if (p.type !== 'collector' || !p.enabled) continue;
    if (!Object.hasOwn(COLLECTORS, p.plugin) || COLLECTORS[p.plugin]!.onlyOne === undefined) continue;
    byPlugin.set(p.plugin, [...(byPlugin.get(p.plugin) ?? []), p.name]);
  }
  const errors: string[] = [];
  for (const [plugin, names] of byPlugin) {
    if (names.length < 2) continue;
    errors.push(`config: ${names.map((n) => `[${n}]`).join(', ')} are all ${plugin} collectors, but only one may run: ${COLLECTORS[plugin]!.onlyOne}; keep one (or set enabled = false on the others)`);
  }
  return errors.length > 0 ? errors.join('; ') : null;
}
