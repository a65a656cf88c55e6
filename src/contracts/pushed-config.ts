// The configuration the controller pushes to an agent: the body of
// PUT /v1/config (docs/agent-api.md "PUT /v1/config"). One schema for both
// sides: the controller builds the body through it (src/controller/agent-client.ts)
// and the agent's API parses it with it (src/api/server.ts), so the two cannot
// drift apart. The shape only: what the toml and storage say is validated by
// the agent when it applies them.
import { z } from 'zod';

const GENERATION = 'generation: must be a whole number ≥ 1';
const HASH = 'hash: must be a string of 1 to 256 characters';
const TOML = 'toml: must be a string (the plugin sections)';
const STORAGE = 'storage: must be an object (the elos EventLogging structure)';
const NOT_AN_OBJECT = 'the body must be a JSON object {generation, hash, toml, storage}';

export const PushedConfig = z.strictObject({
  /** above every generation the agent applied before; an older one is refused (409) */
  generation: z.int({ error: GENERATION }).min(1, { error: GENERATION }),
  /** sha256 of toml + storage (src/controller/render.ts): the agent shows it in its Lease once applied */
  hash: z.string({ error: HASH }).min(1, { error: HASH }).max(256, { error: HASH }),
  /** plugin sections only: the agent prepends its own local [main] */
  toml: z.string({ error: TOML }),
  /** the elos EventLogging structure */
  // passed through as it is (not copied key by key): the agent's storage parser reads it
  storage: z.custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), { error: STORAGE }),
}, { error: NOT_AN_OBJECT });
export type PushedConfig = z.infer<typeof PushedConfig>;

/** the fields in the order their problems are reported (the first one is) */
const FIELDS = ['generation', 'hash', 'toml', 'storage'];

/** Parse a PUT /v1/config body; a problem is one line naming the field (unknown fields first). */
export function parsePushedConfig(body: unknown): { ok: true; push: PushedConfig } | { ok: false; error: string } {
  // an array is an object to JS but not the JSON object asked for
  if (Array.isArray(body)) return { ok: false, error: NOT_AN_OBJECT };
  const r = PushedConfig.safeParse(body);
  if (r.success) return { ok: true, push: r.data };
  const unknown = r.error.issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys : []));
  if (unknown.length > 0) return { ok: false, error: `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 50))).join(', ')}` };
  const rank = (path: readonly PropertyKey[]): number => (path.length === 0 ? -1 : FIELDS.indexOf(String(path[0])));
  const first = [...r.error.issues].sort((a, b) => rank(a.path) - rank(b.path))[0];
  return { ok: false, error: first?.message ?? NOT_AN_OBJECT };
}

/** The JSON body of a push, checked against the schema the agent parses it with. */
export function pushedConfigBody(push: PushedConfig): string {
  return JSON.stringify(PushedConfig.parse(push));
}
