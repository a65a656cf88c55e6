// Per-node rendering (docs/controller.md "How it works"): the
// plugins and backends that select a node become that node's agent TOML
// plugin sections and its elos storage structure. Pure and deterministic:
// the same inputs give byte-identical output and the same hash, so the
// controller can tell whether an agent is up to date.
import { createHash } from 'node:crypto';
import { stringify as stringifyToml } from 'smol-toml';
import { agentFilterType, type StorageBackendSpec, type StorageEventPluginSpec } from '../crd/schemas.ts';
import { normalizeBackendConfig } from '../crd/validate.ts';
import type { StorageConfigDocument } from '../storage/config.ts';
import { matchesSelector } from './selector.ts';

export interface NodeInfo {
  name: string;
  labels: Readonly<Record<string, string>>;
}

export interface Named<S> {
  name: string;
  spec: S;
}

export interface RenderedNode {
  /** plugin sections of the agent TOML (the agent keeps its own [main]) */
  toml: string;
  /** the elos EventLogging structure */
  storage: StorageConfigDocument;
  /** names of the plugins and backends that selected this node */
  plugins: string[];
  backends: string[];
  /** sha256 of toml + storage: equal hashes mean equal configurations */
  hash: string;
}

function pluginSection(spec: StorageEventPluginSpec): Record<string, unknown> {
  const section: Record<string, unknown> = { ...(spec.config ?? {}) };
  section.type = spec.type;
  section.plugin = spec.plugin;
  section.enabled = spec.state !== 'Stopped';
  if (spec.type === 'parser' && spec.filter) {
    if (spec.filter.systems) section.filter_system = [...spec.filter.systems];
    section.filter_type = agentFilterType(spec.filter.types);
  }
  return section;
}

function sortedKeys(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o).sort()) {
    const v = o[k];
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) ? sortedKeys(v as Record<string, unknown>) : v;
  }
  return out;
}

export function renderNode(node: NodeInfo, plugins: readonly Named<StorageEventPluginSpec>[], backends: readonly Named<StorageBackendSpec>[]): RenderedNode {
  const selectedPlugins = plugins.filter((p) => matchesSelector(node.labels, p.spec.nodeSelector)).sort((a, b) => a.name.localeCompare(b.name));
  const selectedBackends = backends.filter((b) => matchesSelector(node.labels, b.spec.nodeSelector)).sort((a, b) => a.name.localeCompare(b.name));
  const doc: Record<string, unknown> = {};
  for (const p of selectedPlugins) doc[p.name] = sortedKeys(pluginSection(p.spec));
  const toml = selectedPlugins.length > 0 ? `${stringifyToml(doc)}\n` : '';
  const entries: Record<string, unknown> = {};
  for (const b of selectedBackends) {
    // elos Config keys are PascalCase; the CRD also accepts camelCase (maxAgeDays)
    const { config } = normalizeBackendConfig(b.spec.config ?? {});
    entries[b.name] = { File: b.spec.backend, Run: b.spec.run, Filter: [...(b.spec.filters ?? [])], Config: sortedKeys(config) };
  }
  const storage = { root: { elos: { EventLogging: { Plugins: entries } } } } as StorageConfigDocument;
  const hash = createHash('sha256').update(toml).update('\0').update(JSON.stringify(storage)).digest('hex');
  return { toml, storage, plugins: selectedPlugins.map((p) => p.name), backends: selectedBackends.map((b) => b.name), hash };
}
