// What the controller checks on a StorageEventPlugin or StorageBackend beyond
// what the API server already refused (src/crd/schemas.ts says which layer
// checks what). Pure: a resource in, problems out, each with the field path
// and a sentence a person can act on. The controller puts them in the
// Accepted condition (and, for filters, in status.filterErrors) and applies
// only accepted specs.
//
// The spec schema is checked again here, not only by the API server: a CRD
// installed from an older release, or an object from a file (tests, `prpt`),
// has not been through the current schema.
import type { z } from 'zod';
import { PLUGIN_TYPES, type PluginType } from '../config/schema.ts';
import { lookupPluginSchema, pluginNames } from '../config/plugins.ts';
import { checkFilterBudget } from '../filter/budget.ts';
import { compileFilter } from '../filter/compile.ts';
import { BACKEND_PLUGINS } from '../storage/backends/options.ts';
import { pluginNamed } from '../contracts/plugin.ts';
import { PluginFilterLoader } from '../storage/filters.ts';
import {
  type FilterError, MAX_CONDITION_MESSAGE, MAX_RESOURCE_NAME, RESOURCE_NAME_RE, StorageBackendSpec, StorageEventPluginSpec,
} from './schemas.ts';

interface Problem {
  /** where, as a field path from the resource's root: `spec.config.format`, `spec.nodeSelector.matchExpressions[0].values` */
  path: string;
  /** what is wrong and what would be right */
  message: string;
}

interface PluginValidation {
  /** no problems: the controller may apply the spec */
  ok: boolean;
  problems: Problem[];
  /** worth saying, not blocking */
  warnings: Problem[];
  /** the spec with defaults applied, when the spec itself is well-formed (even if other checks failed) */
  spec: StorageEventPluginSpec | null;
}

interface BackendValidation {
  /** no problems: the controller may apply the spec (filter errors do not block: those filters are skipped, as the agent does) */
  ok: boolean;
  problems: Problem[];
  warnings: Problem[];
  /** filters that do not compile, for status.filterErrors */
  filterErrors: FilterError[];
  spec: StorageBackendSpec | null;
  /** spec.config with keys as the backend's schema spells them (camelCase → PascalCase): the elos Config to render */
  config: Record<string, unknown> | null;
}

/** Which plugins exist: by default the agent's registries (the controller and the agent ship together). */
interface PluginRegistry {
  names(type: PluginType): readonly string[];
  options(type: PluginType, plugin: string): z.ZodType | undefined;
}

const AGENT_PLUGINS: PluginRegistry = {
  names: (type) => pluginNames(type),
  options: (type, plugin) => lookupPluginSchema(type, plugin),
};

/** Which backends exist (built-ins; module files are resolved on the node). */
interface BackendRegistry {
  names(): readonly string[];
  configSchema(backend: string): z.ZodType | undefined;
}

const AGENT_BACKENDS: BackendRegistry = {
  names: () => Object.keys(BACKEND_PLUGINS),
  configSchema: (file) => pluginNamed(BACKEND_PLUGINS, file)?.options,
};

/** The module extensions the agent's StorageManager loads (src/storage/manager.ts). */
const MODULE_EXT = /\.(?:m?js|m?ts)$/;
/** Beyond this many, a list of problems is summarized: the first ones are what to fix first. */
const MAX_PROBLEMS = 20;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `spec.nodeSelector.matchExpressions[0].key` from a zod path. */
function fieldPath(base: string, path: readonly PropertyKey[]): string {
  let out = base;
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      out += /^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(s) ? (out ? `.${s}` : s) : `[${JSON.stringify(s)}]`;
    }
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const seg of path) {
    if (Array.isArray(v) && typeof seg === 'number') v = v[seg];
    else if (isObj(v) && typeof seg === 'string' && Object.hasOwn(v, seg)) v = v[seg];
    else return undefined;
  }
  return v;
}

const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 80)}…` : s;
};

/** Fields people write by mistake, and what they meant. */
type Hints = Readonly<Record<string, string>>;
const PLUGIN_HINTS: Hints = {
  filterSystem: 'filter.systems', filterSystems: 'filter.systems', filter_system: 'filter.systems', systems: 'filter.systems',
  filterType: 'filter.types', filter_type: 'filter.types', types: 'filter.types',
  enabled: 'state (Running or Stopped)', options: 'config', selector: 'nodeSelector', name: 'metadata.name',
};
const BACKEND_HINTS: Hints = {
  filter: 'filters', Filter: 'filters', File: 'backend', file: 'backend', Run: 'run', Config: 'config',
  connectionSecret: 'config.ConnectionSecret', ConnectionSecret: 'config.ConnectionSecret', selector: 'nodeSelector', name: 'metadata.name',
};

/** One zod issue as problems (an unknown-keys issue names each key). `root` is the value the issue paths start from. */
function issueProblems(issue: z.core.$ZodIssue, base: string, root: unknown, hints: Hints): Problem[] {
  const at = fieldPath(base, issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => ({
        path: fieldPath(at, [k]),
        message: `unknown field${Object.hasOwn(hints, k) ? `; did you mean ${hints[k]}?` : ''}`,
      }));
    case 'invalid_type':
      if (valueAt(root, issue.path) === undefined) return [{ path: at, message: 'required' }];
      return [{ path: at, message: `must be ${issue.expected === 'record' ? 'an object' : `of type ${issue.expected}`} (got ${show(valueAt(root, issue.path))})` }];
    case 'invalid_value':
      return [{ path: at, message: `must be one of ${issue.values.map(show).join(', ')} (got ${show(valueAt(root, issue.path))})` }];
    case 'invalid_key':
      return [{ path: at, message: issue.issues[0]?.message ?? issue.message }];
    case 'invalid_element':
      return [{ path: at, message: issue.issues[0]?.message ?? issue.message }];
    default:
      return [{ path: at, message: issue.message }];
  }
}

function zodProblems(error: z.ZodError, base: string, root: unknown, hints: Hints = {}): Problem[] {
  return error.issues.flatMap((i) => issueProblems(i, base, root, hints));
}

function nameProblems(obj: Obj): Problem[] {
  const md = obj.metadata;
  const name = isObj(md) ? md.name : undefined;
  if (typeof name !== 'string' || name.length === 0) return [{ path: 'metadata.name', message: 'required' }];
  if (name.length > MAX_RESOURCE_NAME) {
    return [{ path: 'metadata.name', message: `at most ${MAX_RESOURCE_NAME} characters (it becomes the name on every node); this one has ${name.length}` }];
  }
  if (!RESOURCE_NAME_RE.test(name)) {
    return [{ path: 'metadata.name', message: 'must be lower case letters, digits and "-", starting and ending with a letter or digit ("." is not allowed: it becomes the name on every node)' }];
  }
  return [];
}

function specOf(obj: unknown): { obj: Obj | null; spec: unknown; problems: Problem[] } {
  if (!isObj(obj)) return { obj: null, spec: undefined, problems: [{ path: '', message: 'a resource must be an object' }] };
  const problems = nameProblems(obj);
  if (obj.spec === undefined) problems.push({ path: 'spec', message: 'required' });
  else if (!isObj(obj.spec)) problems.push({ path: 'spec', message: `must be an object (got ${show(obj.spec)})` });
  return { obj, spec: obj.spec, problems };
}

const an = (t: string) => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);

/** Validate a StorageEventPlugin (the whole object as the API server returns it). */
export function validateStorageEventPlugin(resource: unknown, registry: PluginRegistry = AGENT_PLUGINS): PluginValidation {
  const { spec: rawSpec, problems } = specOf(resource);
  const warnings: Problem[] = [];
  if (!isObj(rawSpec)) return { ok: false, problems, warnings, spec: null };

  const parsed = StorageEventPluginSpec.safeParse(rawSpec);
  if (!parsed.success) {
    problems.push(...zodProblems(parsed.error, 'spec', rawSpec, PLUGIN_HINTS));
    // the plugin and its config can still be checked when type and plugin are readable
  }
  const spec = parsed.success ? parsed.data : null;
  const type = spec?.type ?? (PLUGIN_TYPES as readonly unknown[]).find((t) => t === rawSpec.type) as PluginType | undefined;
  const plugin = spec?.plugin ?? (typeof rawSpec.plugin === 'string' ? rawSpec.plugin : undefined);

  if (type !== undefined && plugin !== undefined && !problems.some((p) => p.path === 'spec.plugin')) {
    const options = registry.options(type, plugin);
    if (options === undefined) {
      const elsewhere = PLUGIN_TYPES.filter((t) => t !== type && registry.options(t, plugin) !== undefined);
      const known = registry.names(type);
      problems.push({
        path: 'spec.plugin',
        message: `no ${type} plugin named ${show(plugin)}`
          + (elsewhere.length > 0 ? ` (${plugin} is ${an(elsewhere[0]!)}; set type: ${elsewhere[0]})` : '')
          + `; ${type}s: ${known.length > 0 ? known.join(', ') : 'none'}`,
      });
    } else {
      const config = rawSpec.config ?? {};
      if (isObj(config)) {
        const r = options.safeParse(config);
        if (!r.success) problems.push(...zodProblems(r.error, 'spec.config', config));
      }
    }
  }
  if (type !== undefined && type !== 'parser' && rawSpec.filter !== undefined) {
    problems.push({ path: 'spec.filter', message: `only parsers take a filter (this is ${an(type)}): remove it` });
  }
  return { ok: problems.length === 0, problems, warnings, spec };
}

/**
 * A backend's config with its top-level keys spelled as the backend's schema
 * spells them: `maxAgeDays` → `MaxAgeDays` (a StorageBackend is
 * often written in camelCase, the elos Config in PascalCase; both work:
 * docs/architecture.md "Custom resources", docs/storage.md).
 */
export function normalizeBackendConfig(config: Readonly<Record<string, unknown>>): { config: Record<string, unknown>; problems: Problem[] } {
  const out: Record<string, unknown> = {};
  const from = new Map<string, string>();
  const problems: Problem[] = [];
  // Sorted, as the API server stores map keys: the report names the same key
  // whether the object came from the server or straight from a file.
  for (const k of Object.keys(config).sort()) {
    const v = config[k];
    const key = /^[a-z]/.test(k) ? k[0]!.toUpperCase() + k.slice(1) : k;
    const earlier = from.get(key);
    if (earlier !== undefined) {
      problems.push({ path: fieldPath('spec.config', [k]), message: `the same setting as ${show(earlier)} (${key}); keep one` });
      continue;
    }
    from.set(key, k);
    out[key] = v;
  }
  return { config: out, problems };
}

/** Map a zod path in the normalized config back to the key the user wrote. */
function userPath(path: readonly PropertyKey[], original: Readonly<Record<string, unknown>>): PropertyKey[] {
  if (path.length === 0 || typeof path[0] !== 'string') return [...path];
  const key = path[0];
  const written = Object.keys(original).find((k) => k === key || (/^[a-z]/.test(k) && k[0]!.toUpperCase() + k.slice(1) === key));
  return [written ?? key, ...path.slice(1)];
}

/** Validate a StorageBackend (the whole object as the API server returns it). */
export function validateStorageBackend(resource: unknown, registry: BackendRegistry = AGENT_BACKENDS): BackendValidation {
  const { obj, spec: rawSpec, problems } = specOf(resource);
  const warnings: Problem[] = [];
  const filterErrors: FilterError[] = [];
  const fail = (): BackendValidation => ({ ok: false, problems, warnings, filterErrors, spec: null, config: null });
  if (obj === null || !isObj(rawSpec)) return fail();

  const parsed = StorageBackendSpec.safeParse(rawSpec);
  if (!parsed.success) problems.push(...zodProblems(parsed.error, 'spec', rawSpec, BACKEND_HINTS));
  const spec = parsed.success ? parsed.data : null;

  // backend and config
  let config: Record<string, unknown> | null = null;
  const backend = typeof rawSpec.backend === 'string' ? rawSpec.backend : undefined;
  const rawConfig = rawSpec.config ?? {};
  if (isObj(rawConfig)) {
    const n = normalizeBackendConfig(rawConfig);
    problems.push(...n.problems);
    config = n.config;
  }
  if (backend !== undefined && !problems.some((p) => p.path === 'spec.backend')) {
    const schema = registry.configSchema(backend);
    if (schema !== undefined) {
      if (config !== null) {
        const r = schema.safeParse(config);
        if (!r.success) {
          for (const issue of r.error.issues) {
            problems.push(...issueProblems({ ...issue, path: userPath(issue.path, rawConfig as Obj) } as z.core.$ZodIssue, 'spec.config', rawConfig, {}));
          }
        }
      }
    } else if (!MODULE_EXT.test(backend) && !backend.includes('/')) {
      problems.push({
        path: 'spec.backend',
        message: `no built-in backend named ${show(backend)} (built-in: ${registry.names().join(', ')}); a module backend is a .js, .mjs, .ts or .mts file under the agent's PluginSearchPath`,
      });
    } else if (backend.startsWith('/')) {
      problems.push({ path: 'spec.backend', message: 'a module backend is named relative to the agent\'s PluginSearchPath, not by an absolute path' });
    } else if (backend.split(/[\\/]/).includes('..')) {
      problems.push({ path: 'spec.backend', message: `${show(backend)} escapes the agent's PluginSearchPath (".."): name the module relative to it` });
    } else if (!MODULE_EXT.test(backend)) {
      problems.push({ path: 'spec.backend', message: `${show(backend)} is not an ES module file (.js, .mjs, .ts, .mts)` });
    } else {
      warnings.push({ path: 'spec.config', message: `module backend ${show(backend)}: its config is checked on each node when the module loads` });
    }
  }
  if (config !== null && typeof config.ConnectionString === 'string') {
    warnings.push({
      path: 'spec.config.ConnectionString',
      message: 'a connection string in a StorageBackend is readable by everyone who can read the resource; put it in a Secret and name it with ConnectionSecret',
    });
  }

  // filters: compiled exactly as the agent's PluginFilterLoader does
  const filters = rawSpec.filters;
  if (filters === undefined || Array.isArray(filters)) {
    const name = isObj(obj.metadata) && typeof obj.metadata.name === 'string' ? obj.metadata.name : '';
    const loaded = new PluginFilterLoader(compileFilter).load(name, filters as unknown[] | undefined);
    if (loaded.ok) {
      for (const p of loaded.problems) {
        filterErrors.push({ index: p.index, filter: p.filter, position: p.position, token: p.token, message: p.message.slice(0, 1024) });
      }
      // this backend alone over the per-configuration budget: no node could ever take it
      // (costed from the filters just compiled, not compiled again)
      const compiled = new Map(loaded.filters.map((f) => [f.source, f]));
      const over = checkFilterBudget(
        [{ name, run: typeof rawSpec.run === 'string' ? rawSpec.run : 'always', filters: loaded.filters.map((f) => f.source) }],
        (s) => ({ ok: true, filter: compiled.get(s)! }),
      );
      if (over !== null) problems.push({ path: 'spec.filters', message: over });
      if (loaded.filters.length === 0) {
        const why = filters === undefined || filters.length === 0 ? 'no filters' : 'no filter that compiles';
        warnings.push({ path: 'spec.filters', message: `${why}: this backend stores no events (to store every event, add the filter "1 1 EQ")` });
      }
    }
    // !loaded.ok: too many filters or not a list; the schema problems above already say so
  }
  return { ok: problems.length === 0, problems, warnings, filterErrors, spec, config };
}

/** A filter error as one sentence (the Accepted condition's message lists them). */
export function describeFilterError(e: FilterError): string {
  const at = e.position >= 0 ? ` at position ${e.position}${e.token ? ` (token ${show(e.token)})` : ''}` : '';
  return `spec.filters[${e.index}] ${show(e.filter)}${at}: ${e.message}`;
}

/** Problems as one condition message: the first MAX_PROBLEMS, "; "-separated, within the condition's size limit. */
export function problemsMessage(problems: readonly Problem[]): string {
  const shown = problems.slice(0, MAX_PROBLEMS).map((p) => (p.path ? `${p.path}: ${p.message}` : p.message));
  const more = problems.length > MAX_PROBLEMS ? ` (and ${problems.length - MAX_PROBLEMS} more)` : '';
  const text = shown.join('; ') + more;
  return text.length <= MAX_CONDITION_MESSAGE ? text : `${text.slice(0, MAX_CONDITION_MESSAGE - 1)}…`;
}
