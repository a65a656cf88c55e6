// The agent's plugin configuration: the seed's TOML format, extended
// (docs/architecture.md "Components", plugin configuration). These zod schemas are the one
// source of truth for what a configuration file may say.
import { isIP } from 'node:net';
import { z } from 'zod';
import { SYSTEMS } from '../events/schema.ts';
import { isUnderVirtualFs } from '../fsutil/safe-files.ts';
import { LOG_LEVELS } from '../log/logger.ts';
import { DEFAULT_MAX_DATAGRAM, MAX_MAX_DATAGRAM, MIN_MAX_DATAGRAM } from '../multicast/envelope.ts';

const ip = (what: string) => z.string().refine((s) => isIP(s) !== 0, { message: `must be an IP address (${what})` });

/** An IPv4 multicast group, 224.0.0.0/4 (IPv6 multicast needs interface scopes the seed's keys cannot say). */
export function isMulticast(s: string): boolean {
  return isIP(s) === 4 && Math.trunc(Number(s.split('.')[0]) / 16) === 14;
}

/** The seed writes the port as a string ("6000"); accept both (any other type gets the same one message). */
const port = z.unknown().transform((v, ctx) => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    ctx.addIssue({ code: 'custom', message: `must be a port number 1-65535 (got ${JSON.stringify(v)})` });
    return z.NEVER;
  }
  return n;
});

const absPath = z.string().min(1).max(4096).refine((s) => s.startsWith('/'), { message: 'must be an absolute path' });
/** where the agent creates files: never the kernel's /proc or /sys (mkdir there once spun forever) */
const statePath = absPath.refine((s) => !isUnderVirtualFs(s), { message: 'must not be under /proc or /sys (kernel interfaces, not storage)' });

export const MainSection = z.strictObject({
  receiver_bind_ip: ip('the address multicast is sent from').default('127.0.0.1'),
  receiver_multicast_ip: ip('the multicast group').refine(isMulticast, { message: 'must be an IPv4 multicast group address (224.0.0.0/4)' }).default('239.0.0.1'),
  receiver_multicast_port: port.default(6000),
  /** the seed's broadcast of every synthetic event to the group (docs/multicast.md); false turns it off */
  multicast: z.boolean().default(true),
  /** hops a datagram may take: 1 keeps it on the local network */
  multicast_ttl: z.number().int().min(0).max(255).default(1),
  /** also deliver to listeners on this host */
  multicast_loopback: z.boolean().default(true),
  /** local address of the interface datagrams leave by and listeners join on; default receiver_bind_ip */
  multicast_interface: ip('the local address of the multicast interface').optional(),
  /** bytes per datagram, header included; larger events are truncated (the default avoids IP fragmentation) */
  multicast_max_datagram: z.number().int().min(MIN_MAX_DATAGRAM).max(MAX_MAX_DATAGRAM).default(DEFAULT_MAX_DATAGRAM),
  /** shared key for signed datagrams (docs/multicast.md): the agent signs, `peripety receive` accepts only signed ones */
  multicast_key_file: absPath.optional(),
  /** override the node name put in every event (default: $NODE_NAME, else the host name) */
  hostname: z.string().min(1).max(253).optional(),
  sysfs_root: absPath.default('/sys'),
  dev_root: absPath.default('/dev'),
  /** the host's mount table; /proc/1/mountinfo is the host's in a hostPID container */
  mountinfo: absPath.default('/proc/1/mountinfo'),
  boot_id_path: absPath.default('/proc/sys/kernel/random/boot_id'),
  state_dir: statePath.default('/var/lib/peripety'),
  /** how long a SCSI/libata failure waits for its follow-up lines (CDB, failed command) */
  context_window_ms: z.number().int().min(0).max(10_000).default(50),
  /** at most this many events held for context at once */
  max_held: z.number().int().min(1).max(100_000).default(256),
  /** default bounded queue size of every receiver */
  queue_size: z.number().int().min(1).max(10_000_000).default(10_000),
  log_level: z.enum(LOG_LEVELS).default('info'),
  /** the agent's HTTP API (metrics, health, event queries): host:port, or "off" */
  api_listen: z.string().max(300).refine((s) => s === 'off' || (/^(?:\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):\d{1,5}$/.test(s) && Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535), {
    // checked here, not only when binding: a fatal error must come before anything starts
    message: 'must be host:port with a port 0-65535 (IPv6 as [addr]:port) or "off"',
  }).default('127.0.0.1:9477'),
  /** bearer token for /v1/* in standalone mode (created 0600 when missing); default <state_dir>/api-token */
  api_token_file: statePath.optional(),
  /**
   * A reload (SIGHUP, POST /v1/reload) refuses a configuration file without an
   * enabled collector or receiver section, and a storage file without a
   * backend: that is what an empty or cut-off file looks like. true lets
   * such a file apply (docs/lifecycle.md "Reload").
   */
  allow_empty: z.boolean().default(false),
});
export type MainSection = z.infer<typeof MainSection>;

export const PLUGIN_TYPES = ['collector', 'parser', 'receiver'] as const;
export type PluginType = (typeof PLUGIN_TYPES)[number];

/** `dm` selects the whole device-mapper family (the seed routes multipath with `filter_system = "dm"`). */
export const FILTER_SYSTEMS = [...SYSTEMS, '*'] as const;
const filterSystem = z.union([z.enum(FILTER_SYSTEMS), z.array(z.enum(FILTER_SYSTEMS)).min(1)]);
const filterType = z.enum(['raw', 'synthetic', 'both']);

/** Keys every plugin section may have; everything else belongs to the plugin. */
export const CommonSection = z.object({
  type: z.enum(PLUGIN_TYPES),
  plugin: z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'must be a plugin name (lower case letters, digits, - and _)').optional(),
  filter_system: filterSystem.optional(),
  filter_type: filterType.optional(),
  /** the seed's misspellings, accepted with a warning */
  filer_system: filterSystem.optional(),
  filer_type: filterType.optional(),
  enabled: z.boolean().default(true),
});
export const COMMON_KEYS = new Set(Object.keys(CommonSection.shape));

export interface PluginSection {
  /** the TOML section name: the plugin instance */
  name: string;
  type: PluginType;
  /** the implementation */
  plugin: string;
  enabled: boolean;
  /** parsers only: systems routed to it; null = the implementation's default */
  filterSystems: string[] | null;
  /** parsers only */
  filterType: 'raw' | 'synthetic' | 'both';
  /** plugin-specific options, validated by the plugin's own schema */
  options: Record<string, unknown>;
}

export interface AgentConfig {
  main: MainSection;
  plugins: PluginSection[];
  /** non-fatal remarks (e.g. the seed's `filer_*` spellings) */
  warnings: string[];
}
