// The backends a plugin entry can name in `File` without a module path
// (docs/storage.md "Backends"): the agent's half of their registry. The pure
// half (name, description, `Config` schema) is options.ts's BACKEND_PLUGINS;
// each backend spreads it and adds `build`. The manager parses `Config` with
// `options` and hands the result to `build`.
import type { BackendPlugin } from '../types.ts';
import { jsonlBackend } from './jsonl.ts';
import { memoryBackend } from './memory.ts';
import { postgresBackend } from './postgres.ts';
import { sqliteBackend } from './sqlite.ts';
import type { BuiltinBackendName } from './options.ts';

export const BACKEND_SPECS: Readonly<Record<string, BackendPlugin>> = Object.freeze({
  memory: memoryBackend,
  jsonl: jsonlBackend,
  sqlite: sqliteBackend,
  postgres: postgresBackend,
  // the same names as options.ts's BACKEND_PLUGINS (what the CRD code checks against)
} satisfies Record<BuiltinBackendName, BackendPlugin>);
