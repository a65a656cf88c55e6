// Which plugins a configuration section may name, and the schema of each
// one's options: pure (zod and the components' options.ts modules), so that
// the configuration loader, the CRD code and the controller check sections
// without loading a collector, a receiver or a native addon. The agent's
// registry (src/agent/plugins.ts) builds the implementations under the same
// names; the compiler holds the two to the same set.
import { z } from 'zod';
import { KmsgOptions } from '../kmsg/options.ts';
import { PARSER_NAMES } from '../parsers/options.ts';
import { K8sEventsOptions } from '../receivers/k8s-events/options.ts';
import { JournaldOptions, StdoutOptions, WebhookOptions } from '../receivers/options.ts';
import { UdevOptions } from '../udev/options.ts';
import type { PluginSchemaLookup } from './load.ts';
import type { PluginType } from './schema.ts';

export const COLLECTOR_OPTIONS = { kmsg: KmsgOptions, udev: UdevOptions } as const;
export type CollectorName = keyof typeof COLLECTOR_OPTIONS;

export const RECEIVER_OPTIONS = { stdout: StdoutOptions, journald: JournaldOptions, webhook: WebhookOptions, 'k8s-events': K8sEventsOptions } as const;
export type ReceiverName = keyof typeof RECEIVER_OPTIONS;

/** Parsers take only the common keys. */
const NO_OPTIONS = z.strictObject({});

/** The names a section of this type may give in `plugin`. */
export function pluginNames(type: PluginType): readonly string[] {
  switch (type) {
    case 'collector':
      return Object.keys(COLLECTOR_OPTIONS);
    case 'receiver':
      return Object.keys(RECEIVER_OPTIONS);
    case 'parser':
      return PARSER_NAMES;
  }
}

export const lookupPluginSchema: PluginSchemaLookup = (type, plugin) => {
  switch (type) {
    case 'collector':
      return Object.hasOwn(COLLECTOR_OPTIONS, plugin) ? COLLECTOR_OPTIONS[plugin as CollectorName] : undefined;
    case 'receiver':
      return Object.hasOwn(RECEIVER_OPTIONS, plugin) ? RECEIVER_OPTIONS[plugin as ReceiverName] : undefined;
    case 'parser':
      return PARSER_NAMES.includes(plugin) ? NO_OPTIONS : undefined;
  }
};
