// TOML text → validated AgentConfig, or one error naming the section, the key
// and the reason. Pure: the plugin option schemas are passed in.
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { type AgentConfig, COMMON_KEYS, CommonSection, MainSection, type PluginSection, type PluginType } from './schema.ts';

export type ConfigResult = { ok: true; config: AgentConfig } | { ok: false; error: string };

/** Options schema of an implementation, or undefined when there is no such plugin. */
export type PluginSchemaLookup = (type: PluginType, plugin: string) => z.ZodType<Record<string, unknown>> | undefined;

const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_SECTIONS = 256;

function describeIssue(section: string, issue: z.core.$ZodIssue): string {
  const key = issue.path.length > 0 ? issue.path.map(String).join('.') : '';
  let reason = issue.message;
  if (issue.code === 'unrecognized_keys') {
    return `config: [${section}] ${issue.keys.map((k) => `"${k}"`).join(', ')}: unknown key${issue.keys.length > 1 ? 's' : ''}`;
  }
  if (issue.code === 'invalid_value' && 'values' in issue) {
    reason = `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return `config: [${section}]${key ? ` ${key}` : ''}: ${reason}`;
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

export function loadConfig(text: string, lookup: PluginSchemaLookup): ConfigResult {
  if (text.length > MAX_CONFIG_BYTES) return { ok: false, error: `config: file larger than ${MAX_CONFIG_BYTES} bytes` };
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) {
      return { ok: false, error: `config: TOML syntax error at line ${err.line}, column ${err.column}: ${err.message.split('\n')[0]}` };
    }
    return { ok: false, error: `config: ${(err as Error).message}` };
  }
  const warnings: string[] = [];
  const mainRaw = doc.main ?? {};
  if (!isTable(mainRaw)) return { ok: false, error: 'config: [main] must be a table' };
  const main = MainSection.safeParse(mainRaw);
  if (!main.success) return { ok: false, error: describeIssue('main', main.error.issues[0]!) };

  const names = Object.keys(doc).filter((k) => k !== 'main');
  if (names.length > MAX_SECTIONS) return { ok: false, error: `config: more than ${MAX_SECTIONS} plugin sections` };
  const plugins: PluginSection[] = [];
  for (const name of names) {
    const raw = doc[name];
    if (!isTable(raw)) return { ok: false, error: `config: "${name}" must be a section ([${name}]), not a plain key` };
    if (!/^[A-Za-z0-9_-]{1,63}$/.test(name)) return { ok: false, error: `config: [${name}]: section names are letters, digits, - and _ (at most 63)` };
    const common = CommonSection.safeParse(raw);
    if (!common.success) {
      const issue = common.error.issues[0]!;
      if (issue.path[0] === 'type' && raw.type === undefined) {
        return { ok: false, error: `config: [${name}] type: missing (collector, parser or receiver)` };
      }
      return { ok: false, error: describeIssue(name, issue) };
    }
    const c = common.data;
    if (c.filer_system !== undefined || c.filer_type !== undefined) {
      warnings.push(`config: [${name}] uses the seed's misspelled filer_system/filer_type; write filter_system/filter_type`);
    }
    const fs = c.filter_system ?? c.filer_system;
    const ft = c.filter_type ?? c.filer_type;
    if (c.type !== 'parser' && (fs !== undefined || ft !== undefined)) {
      return { ok: false, error: `config: [${name}] filter_system/filter_type: only parsers take filters (this is a ${c.type})` };
    }
    const plugin = c.plugin ?? name;
    const schema = lookup(c.type, plugin);
    if (!schema) {
      return { ok: false, error: `config: [${name}] plugin: no ${c.type} plugin named "${plugin}"${c.plugin === undefined ? ' (plugin defaults to the section name; set plugin = "…")' : ''}` };
    }
    const rest: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) if (!COMMON_KEYS.has(k)) rest[k] = v;
    const opts = schema.safeParse(rest);
    if (!opts.success) return { ok: false, error: describeIssue(name, opts.error.issues[0]!) };
    plugins.push({
      name,
      type: c.type,
      plugin,
      enabled: c.enabled,
      filterSystems: fs === undefined ? null : Array.isArray(fs) ? fs : [fs],
      filterType: ft ?? 'raw',
      options: opts.data,
    });
  }
  const config: AgentConfig = { main: main.data, plugins, warnings };
  return { ok: true, config };
}
