// The backends a plugin entry can name in `File` without a module path
// (docs/storage.md "Backends"). Each factory validates its own `Config`: the manager
// parses with `configSchema` and hands the result to `create`.
import type { BackendFactory } from '../types.ts';
import { jsonlBackend } from './jsonl.ts';
import { memoryBackend } from './memory.ts';
import { postgresBackend } from './postgres.ts';
import { sqliteBackend } from './sqlite.ts';
import type { BuiltinBackendName } from './options.ts';

/** The backend a node stores into when its configuration names none. */
export const DEFAULT_BACKEND_FILE = 'sqlite';

export const BUILTIN_BACKENDS: Readonly<Record<string, BackendFactory>> = Object.freeze({
  memory: memoryBackend,
  jsonl: jsonlBackend,
  sqlite: sqliteBackend,
  postgres: postgresBackend,
  // the same names as options.ts's BUILTIN_BACKEND_CONFIGS (what the CRD code checks against)
} satisfies Record<BuiltinBackendName, BackendFactory>);

/** The built-in factory a `File` value names, if any (own keys only: `File: "toString"` is not a backend). */
export function builtinBackend(file: string): BackendFactory | undefined {
  return Object.hasOwn(BUILTIN_BACKENDS, file) ? BUILTIN_BACKENDS[file] : undefined;
}
