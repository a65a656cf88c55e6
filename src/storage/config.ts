// The storage configuration (docs/storage.md "Configuration"): the elos structure
// `root.elos.EventLogging`, as a JSON file in standalone mode or as the
// `storage` part of what the controller pushes. These zod schemas are the one
// source of truth for what it may say.
//
// Strictness: `root` and `root.elos` tolerate unknown keys, because a real
// elosd configuration keeps its other sections there (Scanner, ClientInputs,
// LogLevel, …) and must load unchanged. `EventLogging` and each backend entry
// are strict: an unknown key there is almost always a typo (`Filters`,
// `Confg`), and ignoring it would silently give a backend that receives
// nothing or runs with defaults. Filter strings come from cluster users
// (CRDs), so every list and string is bounded here, before anything compiles.
import path from 'node:path';
import { z } from 'zod';
import { checkFilterBudget } from '../filter/budget.ts';
import { findDuplicateKey } from './json-keys.ts';

const MAX_BACKENDS = 64;
export const MAX_FILTERS_PER_BACKEND = 64;
export const MAX_FILTER_LENGTH = 4096;
/** JSON text larger than this is refused before parsing: the limits above make a legitimate one far smaller. */
const MAX_CONFIG_TEXT_BYTES = 4 * 1024 * 1024;

/**
 * DNS-label-like: 1-63 letters, digits, `-` or `_`, starting and ending with a
 * letter or digit. Upper case and `_` are allowed because elos configurations
 * name backends `JsonBackend`, `SQLBackend`. The name becomes a directory name
 * (the spool) and a Prometheus label value, so `/`, `.` and spaces are out.
 */
const BACKEND_NAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/;

export const RUN_MODES = ['always', 'never', 'trigger'] as const;
export type RunMode = (typeof RUN_MODES)[number];

const BackendEntrySchema = z.strictObject({
  /** a built-in backend (`memory`, `jsonl`, `sqlite`, `postgres`) or an ES module path relative to PluginSearchPath */
  File: z.string().min(1).max(255),
  Run: z.enum(RUN_MODES).default('always'),
  /** RPN filter strings; missing or empty: loaded, never receives events */
  Filter: z.array(z.string().max(MAX_FILTER_LENGTH, `a filter is at most ${MAX_FILTER_LENGTH} characters`))
    .max(MAX_FILTERS_PER_BACKEND, `at most ${MAX_FILTERS_PER_BACKEND} filters per backend`)
    .optional(),
  /** backend-specific; validated by the backend's own schema when it loads */
  Config: z.record(z.string(), z.unknown()).default({}),
});

const EventLoggingSchema = z.strictObject({
  /** where module backends live; without it only built-in backends load */
  PluginSearchPath: z.string().min(1).max(4096)
    .refine((s) => path.isAbsolute(s), { message: 'must be an absolute path' })
    .optional(),
  Plugins: z.record(
    z.string().regex(BACKEND_NAME_RE, 'backend names are 1-63 letters, digits, "-" or "_", starting and ending with a letter or digit'),
    BackendEntrySchema,
  ).refine((p) => Object.keys(p).length <= MAX_BACKENDS, { message: `at most ${MAX_BACKENDS} backends` }),
});

const StorageConfigSchema = z.looseObject({
  root: z.looseObject({
    elos: z.looseObject({
      EventLogging: EventLoggingSchema,
    }),
  }),
});
export type StorageConfigDocument = z.input<typeof StorageConfigSchema>;

/** One configured backend, normalized. */
export interface BackendSpec {
  name: string;
  file: string;
  run: RunMode;
  /** null: the `Filter` key is missing (reported like an empty list) */
  filters: readonly string[] | null;
  config: Readonly<Record<string, unknown>>;
}

/** A validated storage configuration: backends in the order of the JSON object's keys. */
export interface StorageConfig {
  pluginSearchPath: string | null;
  backends: readonly BackendSpec[];
}

type StorageConfigResult = { ok: true; config: StorageConfig } | { ok: false; error: string };

/** The embedded default: one local sqlite backend that keeps every event (its path defaults under the state directory). */
export const DEFAULT_STORAGE_CONFIG: StorageConfigDocument = {
  root: {
    elos: {
      EventLogging: {
        Plugins: {
          local: { File: 'sqlite', Run: 'always', Filter: ['1 1 EQ'], Config: {} },
        },
      },
    },
  },
};

/** Configurations that came out of parseStorageConfig (the manager accepts them as they are). */
const validated = new WeakSet<StorageConfig>();

export function isStorageConfig(v: unknown): v is StorageConfig {
  return typeof v === 'object' && v !== null && validated.has(v as StorageConfig);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length > 0 ? issue.path.map(String).join('.') : '(the document)';
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => JSON.stringify(k)).join(', ');
    const hint = issue.keys.includes('Filters') ? ' (the filter list is "Filter")' : '';
    return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}${hint}`;
  }
  if (issue.code === 'invalid_key' && issue.issues.length > 0) return `${where}: ${issue.issues[0]!.message}`;
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) return `${where}: missing`;
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return `${where}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return `${where}: ${issue.message}`;
}

/**
 * Validate a storage configuration: JSON text or an already parsed object.
 * Errors name the JSON path and the reason (at most the first five issues).
 */
export function parseStorageConfig(input: unknown): StorageConfigResult {
  let doc = input;
  if (typeof input === 'string') {
    if (Buffer.byteLength(input) > MAX_CONFIG_TEXT_BYTES) {
      return { ok: false, error: `storage config: larger than ${MAX_CONFIG_TEXT_BYTES} bytes` };
    }
    try {
      doc = JSON.parse(input);
    } catch (err) {
      return { ok: false, error: `storage config: JSON syntax error: ${(err as Error).message}` };
    }
    // JSON.parse keeps the last of two equal keys: a backend named twice would silently lose the first
    const dup = findDuplicateKey(input);
    if (dup !== null) {
      const isBackend = dup.path === 'root.elos.EventLogging.Plugins';
      return {
        ok: false,
        error: `storage config: ${isBackend ? `backend name ${JSON.stringify(dup.key)} is used twice` : `duplicate key ${JSON.stringify(dup.key)}`} in ${dup.path || '(the document)'} (JSON would keep only the last; rename or remove one)`,
      };
    }
  }
  const r = StorageConfigSchema.safeParse(doc);
  if (!r.success) {
    const issues = r.error.issues;
    const shown = issues.slice(0, 5).map(describeIssue).join('; ');
    const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : '';
    return { ok: false, error: `storage config: ${shown}${more}` };
  }
  const el = r.data.root.elos.EventLogging;
  const backends: BackendSpec[] = Object.entries(el.Plugins).map(([name, e]) => Object.freeze({
    name,
    file: e.File,
    run: e.Run,
    filters: e.Filter === undefined ? null : Object.freeze([...e.Filter]),
    config: Object.freeze({ ...e.Config }),
  }));
  // every filter of every backend runs on every event: their sum is bounded too (src/filter/budget.ts)
  const overBudget = checkFilterBudget(backends);
  if (overBudget !== null) return { ok: false, error: `storage config: ${overBudget}` };
  const config: StorageConfig = Object.freeze({ pluginSearchPath: el.PluginSearchPath ?? null, backends: Object.freeze(backends) });
  validated.add(config);
  return { ok: true, config };
}
