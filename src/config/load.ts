// TOML text → validated AgentConfig, or every error of the file (each naming the section, the key
// and the reason). Pure: the plugin option schemas are passed in.
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { type AgentConfig, COMMON_KEYS, CommonSection, MainSection, type PluginSection, type PluginType } from './schema.ts';

type ConfigResult = { ok: true; config: AgentConfig } | { ok: false; error: string };

/** Options schema of an implementation, or undefined when there is no such plugin. */
export type PluginSchemaLookup = (type: PluginType, plugin: string) => z.ZodType<Record<string, unknown>> | undefined;

const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_SECTIONS = 256;

/** zod's type names as a configuration author knows them. */
const TYPE_WORDS: Record<string, string> = {
  number: 'a number', int: 'a whole number', boolean: 'true or false', string: 'a string', array: 'a list', object: 'a table',
  record: 'a table', bigint: 'a number', date: 'a date',
};

/** What the value was, from zod's message ("… received string"). */
function received(issue: z.core.$ZodIssue): string {
  const m = /received (\w+)/.exec(issue.message);
  if (!m) return '';
  const t = m[1]!;
  return ` (got ${t === 'undefined' ? 'nothing' : /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`})`;
}

/** One alternative of a union, as "one of …" / "a list" (null when it says nothing useful). */
function describeAlternative(issues: readonly z.core.$ZodIssue[]): string | null {
  const first = issues[0];
  if (!first) return null;
  if (first.code === 'invalid_value' && 'values' in first) return `one of ${first.values.map((v) => JSON.stringify(v)).join(', ')}`;
  if (first.code === 'invalid_type') return TYPE_WORDS[first.expected] ?? first.expected;
  return null;
}

/**
 * The reason of one zod issue in words a configuration author can act on:
 * enums list their values, type errors name the expected type and what was
 * given, unions list every alternative (zod's own text is "Invalid input").
 */
function describeReason(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  if (issue.code === 'invalid_type') {
    if (/received undefined/.test(issue.message)) return 'missing';
    return `must be ${TYPE_WORDS[issue.expected] ?? issue.expected}${received(issue)}`;
  }
  if (issue.code === 'invalid_union') {
    const alts = issue.errors.map(describeAlternative).filter((a): a is string => a !== null);
    if (alts.length > 0) {
      const got = issue.errors.flat().find((i) => i.code === 'invalid_type');
      // "one of "a", "b"" followed by "a list": say the list is of those values
      const words = alts.map((a, i) => (i > 0 && a === 'a list' && alts[0]!.startsWith('one of') ? 'a list of them' : a));
      return `must be ${words.join(' or ')}${got ? received(got) : ''}`;
    }
  }
  return issue.message;
}

function describeIssue(section: string, issue: z.core.$ZodIssue): string {
  const key = issue.path.length > 0 ? issue.path.map(String).join('.') : '';
  if (issue.code === 'unrecognized_keys') {
    return `config: [${section}] ${issue.keys.map((k) => `"${k}"`).join(', ')}: unknown key${issue.keys.length > 1 ? 's' : ''}`;
  }
  return `config: [${section}]${key ? ` ${key}` : ''}: ${describeReason(issue)}`;
}

/** At most this many errors are listed; the rest are counted. */
const MAX_ERRORS = 20;

/** One error text for several: every mistake of a file at once, so one edit fixes them all. */
function joinErrors(errors: readonly string[]): string {
  if (errors.length === 1) return errors[0]!;
  const shown = errors.slice(0, MAX_ERRORS).join('; ');
  return `${errors.length} errors: ${shown}${errors.length > MAX_ERRORS ? ` (and ${errors.length - MAX_ERRORS} more)` : ''}`;
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/**
 * Parse and validate a TOML plugin configuration. `lookup` gives each
 * plugin's options schema; `knownNames`, when given, lists the plugins of a type
 * for the "no such plugin" error (src/config/plugins.ts has both).
 */
export function loadConfig(text: string, lookup: PluginSchemaLookup, knownNames?: (type: PluginType) => readonly string[]): ConfigResult {
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
  const errors: string[] = [];
  const mainRaw = doc.main ?? {};
  let main: MainSection | null = null;
  if (!isTable(mainRaw)) errors.push('config: [main] must be a table');
  else {
    const m = MainSection.safeParse(mainRaw);
    if (m.success) main = m.data;
    else for (const issue of m.error.issues) errors.push(describeIssue('main', issue));
  }

  const names = Object.keys(doc).filter((k) => k !== 'main');
  if (names.length > MAX_SECTIONS) return { ok: false, error: `config: more than ${MAX_SECTIONS} plugin sections` };
  const plugins: PluginSection[] = [];
  for (const name of names) {
    const raw = doc[name];
    if (!isTable(raw)) {
      errors.push(`config: "${name}" must be a section ([${name}]), not a plain key`);
      continue;
    }
    if (!/^[A-Za-z0-9_-]{1,63}$/.test(name)) {
      errors.push(`config: [${name}]: section names are letters, digits, - and _ (at most 63)`);
      continue;
    }
    const common = CommonSection.safeParse(raw);
    if (!common.success) {
      for (const issue of common.error.issues) {
        if (issue.path[0] === 'type' && raw.type === undefined) errors.push(`config: [${name}] type: missing (collector, parser or receiver)`);
        else errors.push(describeIssue(name, issue));
      }
      continue;
    }
    const c = common.data;
    if (c.filer_system !== undefined || c.filer_type !== undefined) {
      warnings.push(`config: [${name}] uses the seed's misspelled filer_system/filer_type; write filter_system/filter_type`);
    }
    const fs = c.filter_system ?? c.filer_system;
    const ft = c.filter_type ?? c.filer_type;
    if (c.type !== 'parser' && (fs !== undefined || ft !== undefined)) {
      errors.push(`config: [${name}] filter_system/filter_type: only parsers take filters (this is a ${c.type})`);
      continue;
    }
    const plugin = c.plugin ?? name;
    const schema = lookup(c.type, plugin);
    if (!schema) {
      const known = knownNames?.(c.type);
      errors.push(`config: [${name}] plugin: no ${c.type} plugin named "${plugin}"${c.plugin === undefined ? ' (plugin defaults to the section name; set plugin = "…")' : ''}`
        + (known === undefined ? '' : `; ${c.type}s: ${known.join(', ') || 'none'}`));
      continue;
    }
    const rest: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) if (!COMMON_KEYS.has(k)) rest[k] = v;
    const opts = schema.safeParse(rest);
    if (!opts.success) {
      for (const issue of opts.error.issues) errors.push(describeIssue(name, issue));
      continue;
    }
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
  if (errors.length > 0 || main === null) return { ok: false, error: joinErrors(errors) };
  const config: AgentConfig = { main, plugins, warnings };
  return { ok: true, config };
}
