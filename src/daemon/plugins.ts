// The plugin registry: every implementation a configuration section may name,
// with the schema of its options. Parsers take no options of their own.
import { z } from 'zod';
import type { PluginSchemaLookup } from '../config/load.ts';
import { KmsgOptions } from '../kmsg/collector.ts';
import { PARSERS } from '../parsers/index.ts';
import { StdoutOptions } from '../receivers/stdout.ts';

type OptionsSchema = z.ZodType<Record<string, unknown>>;

export const COLLECTOR_PLUGINS: Record<string, OptionsSchema> = { kmsg: KmsgOptions };
export const RECEIVER_PLUGINS: Record<string, OptionsSchema> = { stdout: StdoutOptions };
const NO_OPTIONS: OptionsSchema = z.strictObject({});

export const lookupPluginSchema: PluginSchemaLookup = (type, plugin) => {
  switch (type) {
    case 'collector':
      return Object.hasOwn(COLLECTOR_PLUGINS, plugin) ? COLLECTOR_PLUGINS[plugin] : undefined;
    case 'receiver':
      return Object.hasOwn(RECEIVER_PLUGINS, plugin) ? RECEIVER_PLUGINS[plugin] : undefined;
    case 'parser':
      return Object.hasOwn(PARSERS, plugin) ? NO_OPTIONS : undefined;
  }
};
