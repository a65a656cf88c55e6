// `peripety list-plugins`: what a configuration may name, from the pure half
// of the registries (names, descriptions), so listing loads no implementation.
import { PLUGINS } from '../config/plugins.ts';
import { BACKEND_PLUGINS } from '../storage/backends/options.ts';
import type { PluginInfo } from '../contracts/plugin.ts';

function section(title: string, plugins: readonly PluginInfo[]): string {
  const width = Math.max(...plugins.map((p) => p.name.length));
  return `${title}\n${plugins.map((p) => `  ${p.name.padEnd(width)}  ${p.description}\n`).join('')}`;
}

/** Every plugin by kind, one line each: name and description. */
export function listPlugins(): string {
  return [
    section('collectors (type = "collector"):', Object.values(PLUGINS.collector)),
    section('parsers (type = "parser"; they take no options):', Object.values(PLUGINS.parser)),
    section('receivers (type = "receiver"):', Object.values(PLUGINS.receiver)),
    section('storage backends (File in the storage configuration; or a module file under PluginSearchPath):', Object.values(BACKEND_PLUGINS)),
  ].join('\n');
}
