// The contract between the StorageManager and its backends (docs/storage.md "Backends"),
// shared by the built-in backends and ES-module backends loaded from
// PluginSearchPath. A built-in backend is a BackendPlugin (the registry shape
// of every component, src/contracts/plugin.ts); a module backend's default
// export (or named export `backend`) is a BackendFactory, the documented
// module contract, which the manager adapts to a BackendPlugin.
import type { z } from 'zod';
import type { PluginSpec } from '../contracts/plugin.ts';
import { StorageEvent } from '../events/schema.ts';
import type { CompiledFilter } from '../filter/types.ts';
import type { Logger } from '../log/logger.ts';

/** findEvents arguments (elos): times in Unix microseconds; 0 = unbounded. */
export interface EventQuery {
  /** null: every event */
  filter: CompiledFilter | null;
  /** inclusive upper bound on the event time (µs), 0 = none */
  newest: number;
  /** exclusive lower bound on the event time (µs), 0 = none */
  oldest: number;
  /** at most this many events, 0 = unbounded */
  limit: number;
}

export interface QueryResult {
  /** newest first */
  events: StorageEvent[];
  /** true when `limit` cut the result */
  isTruncated: boolean;
}

export interface BackendHealth {
  ok: boolean;
  /** why not, for status and logs (no secrets) */
  detail?: string;
}

export interface Backend {
  readonly name: string;
  /** Open files, connect, create tables. Rejects with a clear message when it cannot. */
  start(): Promise<void>;
  /**
   * Store a batch, in order. Resolves only when the batch is durable as far
   * as this backend promises (that resolution is the acknowledgement: the
   * agent then lets the kernel read position move past those records).
   * Rejects when nothing of the batch was stored (the manager spools and
   * retries the whole batch, so persisting must be idempotent by
   * (event_id, event_type): a replayed event is stored once).
   */
  persist(events: readonly StorageEvent[]): Promise<void>;
  findEvents(query: EventQuery): Promise<QueryResult>;
  /** Flush and close; safe to call twice and after a failed start. */
  shutdown(): Promise<void>;
  health(): BackendHealth;
}

/** One key of a Kubernetes Secret in the agent's own namespace. */
export interface SecretRef {
  name: string;
  key: string;
}

/** A Secret's value, or why it could not be read (never containing the value). */
export type SecretResult = { ok: true; value: string } | { ok: false; error: string };

/**
 * Reads one key of a Secret in the agent's namespace with the agent's own
 * credentials (Kubernetes mode; src/k8s/secrets.ts). The error says what is
 * missing or which permission the agent lacks.
 */
export type SecretResolver = (ref: SecretRef) => Promise<SecretResult>;

export interface BackendContext {
  log: Logger;
  /** the agent's state directory (default locations of files live under it) */
  stateDir: string;
  /**
   * Kubernetes mode: every file a backend opens must resolve inside this
   * directory (the state directory), because the configuration comes from
   * cluster users (StorageBackend objects), not from the node's admin
   */
  confineTo?: string;
  /** the node name, for `%host%` in paths */
  hostname: string;
  env: NodeJS.ProcessEnv;
  /** Kubernetes mode only: reads Secrets (postgres ConnectionSecret); absent in standalone mode */
  secret?: SecretResolver;
}

/** A built-in backend in the registry: name, description, options (its `Config`) and build. */
export interface BackendPlugin<C = unknown> extends PluginSpec<C, BackendContext, Backend> {
  /** as BackendFactory.durable */
  readonly durable?: boolean;
}

/** What a module backend exports (docs/storage.md, "Module backends"). */
export interface BackendFactory<C = unknown> {
  /** what `File` names: `memory`, `jsonl`, `sqlite`, `postgres`, or the module's own name */
  readonly file: string;
  /** validates `Config`; its errors are reported with the backend's name */
  readonly configSchema: z.ZodType<C>;
  create(name: string, config: C, ctx: BackendContext): Backend;
  /**
   * Whether the backend keeps events across a restart (default true). Events
   * such a backend has to drop (disk full and the spool too, its queue full,
   * stopped with events in memory) hold the saved kernel read position
   * before their records, so the next start reads them again; a backend
   * that forgets everything at a restart anyway (memory) says false.
   */
  readonly durable?: boolean;
}

/** The stable identity of a stored event: a raw record's id is shared by the synthetic events made from it. */
export function eventKey(ev: StorageEvent): string {
  return `${ev.event_id}/${ev.event_type}`;
}

/** One stored line as an event, or null when it is not one (a write cut short, another file). The spool's lines are the same. */
export function parseEventLine(text: string): StorageEvent | null {
  if (text.length === 0) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  const r = StorageEvent.safeParse(v);
  return r.success ? r.data : null;
}
