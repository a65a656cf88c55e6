// Which plugins a configuration section may name, with each one's
// description and options: the pure half of the plugin registry
// (src/contracts/plugin.ts), gathered from the components' options.ts
// modules, so that the configuration loader, the CRD code and the controller
// check sections without loading a collector, a receiver or a native addon.
// The agent's registry (src/agent/plugins.ts) adds `build` under the same
// names; the compiler holds the two to the same set.
import { pluginNamed, type PluginInfo, type Registry } from '../contracts/plugin.ts';
import { KMSG_PLUGIN } from '../kmsg/options.ts';
import { PARSER_PLUGINS } from '../parsers/options.ts';
import { K8S_EVENTS_PLUGIN } from '../receivers/k8s-events/options.ts';
import { JOURNALD_PLUGIN, STDOUT_PLUGIN, WEBHOOK_PLUGIN } from '../receivers/options.ts';
import { UDEV_PLUGIN } from '../udev/options.ts';
import type { PluginSchemaLookup } from './load.ts';
import type { PluginType } from './schema.ts';

export const COLLECTOR_PLUGINS = { kmsg: KMSG_PLUGIN, udev: UDEV_PLUGIN } as const;
export type CollectorName = keyof typeof COLLECTOR_PLUGINS;

export const RECEIVER_PLUGINS = { stdout: STDOUT_PLUGIN, journald: JOURNALD_PLUGIN, webhook: WEBHOOK_PLUGIN, 'k8s-events': K8S_EVENTS_PLUGIN } as const;
export type ReceiverName = keyof typeof RECEIVER_PLUGINS;

/** Every plugin a section may name, by the section's type. */
export const PLUGINS: Readonly<Record<PluginType, Registry<PluginInfo<Record<string, unknown>>>>> = {
  collector: COLLECTOR_PLUGINS,
  parser: PARSER_PLUGINS,
  receiver: RECEIVER_PLUGINS,
};

/** The names a section of this type may give in `plugin`. */
export function pluginNames(type: PluginType): readonly string[] {
  return Object.keys(PLUGINS[type]);
}

export const lookupPluginSchema: PluginSchemaLookup = (type, plugin) => pluginNamed(PLUGINS[type], plugin)?.options;
