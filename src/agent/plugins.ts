// The plugin registry: every implementation a configuration section may name,
// in the registry shape of every component (src/contracts/plugin.ts): the
// pure half (name, description, options) from the components' options.ts
// (gathered in src/config/plugins.ts, under the same names) with `build`
// added. Adding a collector, a parser or a receiver means adding one entry
// here; the agent never names plugins.
import { COLLECTOR_PLUGINS, type CollectorName, RECEIVER_PLUGINS, type ReceiverName } from '../config/plugins.ts';
import type { AgentConfig, MainSection } from '../config/schema.ts';
import { KmsgCollector } from '../kmsg/collector.ts';
import { UdevCollector } from '../udev/collector.ts';
import type { Logger } from '../log/logger.ts';
import { MulticastSender, type MulticastSenderOptions } from '../multicast/sender.ts';
import { DeviceErrorsReceiver } from '../receivers/device-errors.ts';
import type { AgentMetrics } from '../metrics/agent-metrics.ts';
import type { QueuedReceiver } from '../receivers/queued.ts';
import { StdoutReceiver } from '../receivers/stdout.ts';
import { JournaldReceiver } from '../receivers/journald.ts';
import { createWebhookReceiver } from '../receivers/webhook.ts';
import { createK8sEventsReceiver } from '../receivers/k8s-events/index.ts';
import type { CollectorPlugin } from '../contracts/collector.ts';
import type { Parser } from '../contracts/parser.ts';
import { type PluginSpec, type Registry, withBuild } from '../contracts/plugin.ts';
import { PARSERS } from '../parsers/index.ts';
import { PARSER_PLUGINS, type ParserName } from '../parsers/options.ts';

export interface ReceiverDepsFull {
  log: Logger;
  metrics: AgentMetrics;
  config: AgentConfig;
  /** the node name ([main] hostname, --node-name, $NODE_NAME, the host name; the agent decides) */
  hostname: string;
}

type ReceiverPlugin = PluginSpec<Record<string, unknown>, ReceiverDepsFull, QueuedReceiver>;

/** Parsers are pure and stateless: every section naming one shares its one instance. */
type ParserPlugin = PluginSpec<Record<string, unknown>, void, Parser>;

/** The multicast sender's options from [main] (the seed's keys). */
function senderOptions(main: MainSection): MulticastSenderOptions {
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
export function builtinReceivers(deps: Omit<ReceiverDepsFull, 'hostname'>): QueuedReceiver[] {
  const out: QueuedReceiver[] = [];
  if (deps.config.main.multicast) out.push(new MulticastSender('multicast', senderOptions(deps.config.main), { log: deps.log, metrics: deps.metrics }));
  out.push(new DeviceErrorsReceiver('device-errors', deps.config.main.queue_size, { log: deps.log, metrics: deps.metrics }));
  return out;
}

export const COLLECTOR_SPECS: Registry<CollectorPlugin> = {
  kmsg: {
    ...withBuild(COLLECTOR_PLUGINS.kmsg, (name, options, { sink, ...deps }) => new KmsgCollector(name, options, deps, sink)),
    // Refused rather than given separate positions: each reads the whole
    // kernel log, so two would still deliver every record twice.
    onlyOne: 'each reads the whole kernel log, so two would deliver every record twice, and they would share one saved position (<state_dir>/kmsg.position.json)',
  },
  udev: withBuild(COLLECTOR_PLUGINS.udev, (name, options, { sink, ...deps }) => new UdevCollector(name, options, deps, sink)),
} satisfies Record<CollectorName, CollectorPlugin>;

export const PARSER_SPECS: Registry<ParserPlugin> = Object.fromEntries(
  (Object.keys(PARSER_PLUGINS) as ParserName[]).map((n) => [n, withBuild(PARSER_PLUGINS[n], () => PARSERS[n]!)]),
);

export const RECEIVER_SPECS: Registry<ReceiverPlugin> = {
  stdout: withBuild(RECEIVER_PLUGINS.stdout, (name, options, { log, metrics, config }: ReceiverDepsFull) => new StdoutReceiver(name, options, config.main.queue_size, { log, metrics })),
  journald: withBuild(RECEIVER_PLUGINS.journald, (name, options, { log, metrics, config }: ReceiverDepsFull) => new JournaldReceiver(name, options, config.main.queue_size, { log, metrics })),
  webhook: withBuild(RECEIVER_PLUGINS.webhook, (name, options, { log, metrics, config }: ReceiverDepsFull) => createWebhookReceiver(name, options, config.main.queue_size, { log, metrics })),
  'k8s-events': withBuild(RECEIVER_PLUGINS['k8s-events'], (name, options, { log, metrics, config, hostname }: ReceiverDepsFull) =>
    createK8sEventsReceiver(name, options, config.main.queue_size, { log, metrics, hostname })),
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
    if (!Object.hasOwn(COLLECTOR_SPECS, p.plugin) || COLLECTOR_SPECS[p.plugin]!.onlyOne === undefined) continue;
    byPlugin.set(p.plugin, [...(byPlugin.get(p.plugin) ?? []), p.name]);
  }
  const errors: string[] = [];
  for (const [plugin, names] of byPlugin) {
    if (names.length < 2) continue;
    errors.push(`config: ${names.map((n) => `[${n}]`).join(', ')} are all ${plugin} collectors, but only one may run: ${COLLECTOR_SPECS[plugin]!.onlyOne}; keep one (or set enabled = false on the others)`);
  }
  return errors.length > 0 ? errors.join('; ') : null;
}
