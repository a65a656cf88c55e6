// The table of invalid resources (and the layer that refuses each) shared by
// resources.test.ts; kept apart so other checks (e.g. against a real API
// server's validator) can load it without running the tests.
export type Resource = { apiVersion: string; kind: string; metadata: { name: string }; spec: unknown };
export const sep = (spec: unknown, name = 'test-plugin'): Resource => ({ apiVersion: 'peripety.io/v1alpha1', kind: 'StorageEventPlugin', metadata: { name }, spec });
export const sbe = (spec: unknown, name = 'test-backend'): Resource => ({ apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name }, spec });

export interface Case {
  what: string;
  resource: Resource;
  layer: 'schema' | 'controller';
  /** a fragment of one message, which must start with the field path */
  message: string;
  /** for filter errors: where and what */
  filter?: { index: number; position: number; token: string };
}

export const parser = { type: 'parser', plugin: 'multipath' };
export const long = (n: number, c = 'a') => c.repeat(n);

export const CASES: Case[] = [
  // wrong enum values
  { what: 'an unknown plugin type', resource: sep({ type: 'transformer', plugin: 'scsi' }), layer: 'schema', message: 'spec.type: Unsupported value: "transformer": supported values: "collector", "parser", "receiver"' },
  { what: 'a state other than Running/Stopped', resource: sep({ ...parser, state: 'enabled' }), layer: 'schema', message: 'spec.state: Unsupported value: "enabled": supported values: "Running", "Stopped"' },
  { what: 'a filter type other than raw/synthetic', resource: sep({ ...parser, filter: { types: ['both'] } }), layer: 'schema', message: 'spec.filter.types[0]: Unsupported value: "both"' },
  { what: 'an unknown system in filter.systems', resource: sep({ ...parser, filter: { systems: ['iscsi'] } }), layer: 'schema', message: 'spec.filter.systems[0]: Unsupported value: "iscsi"' },
  { what: 'a selector operator that does not exist', resource: sep({ ...parser, nodeSelector: { matchExpressions: [{ key: 'storage', operator: 'Equals', values: ['san'] }] } }), layer: 'schema', message: 'spec.nodeSelector.matchExpressions[0].operator: Unsupported value: "Equals": supported values: "In", "NotIn", "Exists", "DoesNotExist"' },
  { what: 'a run mode that does not exist', resource: sbe({ backend: 'sqlite', run: 'sometimes' }), layer: 'schema', message: 'spec.run: Unsupported value: "sometimes": supported values: "always", "never", "trigger"' },
  // unknown fields
  { what: 'the TOML key filter_system at spec level', resource: sep({ ...parser, filter_system: 'dm' }), layer: 'schema', message: 'unknown field "spec.filter_system"' },
  { what: 'elos Filter instead of filters', resource: sbe({ backend: 'sqlite', Filter: ['1 1 EQ'] }), layer: 'schema', message: 'unknown field "spec.Filter"' },
  { what: 'an unknown field in the selector', resource: sep({ ...parser, nodeSelector: { matchLabel: { storage: 'san' } } }), layer: 'schema', message: 'unknown field "spec.nodeSelector.matchLabel"' },
  // missing required
  { what: 'no plugin', resource: sep({ type: 'parser' }), layer: 'schema', message: 'spec.plugin: Required value' },
  { what: 'no type', resource: sep({ plugin: 'kmsg' }), layer: 'schema', message: 'spec.type: Required value' },
  { what: 'no backend', resource: sbe({ filters: ['1 1 EQ'] }), layer: 'schema', message: 'spec.backend: Required value' },
  { what: 'no spec at all', resource: { apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'x' } } as Resource, layer: 'schema', message: 'spec: Required value' },
  // wrong types, lengths, counts
  { what: 'filters as one string, not a list', resource: sbe({ backend: 'sqlite', filters: '1 1 EQ' }), layer: 'schema', message: 'spec.filters: Invalid value: "string": spec.filters in body must be of type array' },
  { what: 'too many filters', resource: sbe({ backend: 'sqlite', filters: Array.from({ length: 65 }, (_, i) => `.event.messageCode ${i} EQ`) }), layer: 'schema', message: 'spec.filters: Too many: 65: must have at most 64 items' },
  { what: 'a filter longer than 4096 characters', resource: sbe({ backend: 'sqlite', filters: [`'${long(4100)}' '' STRCMP`] }), layer: 'schema', message: 'spec.filters[0]: Too long: may not be more than 4096' },
  { what: 'a name too long to be a section or backend name', resource: sbe({ backend: 'memory' }, long(64)), layer: 'schema', message: 'metadata.name: Too long: may not be more than 63' },
  { what: 'a name with a dot (not a TOML section name)', resource: sep(parser, 'multipath.san'), layer: 'schema', message: 'metadata.name: Invalid value: "multipath.san": metadata.name in body should match' },
  { what: 'a plugin name too long', resource: sep({ type: 'parser', plugin: long(64) }), layer: 'schema', message: 'spec.plugin: Too long: may not be more than 63' },
  { what: 'a config with too many settings', resource: sep({ type: 'receiver', plugin: 'stdout', config: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])) }), layer: 'schema', message: 'spec.config: Too many: 65: must have at most 64 items' },
  { what: 'a system listed twice', resource: sep({ ...parser, filter: { systems: ['dm', 'dm'] } }), layer: 'schema', message: 'spec.filter.systems[1]: Duplicate value: "dm"' },
  { what: 'an empty systems list', resource: sep({ ...parser, filter: { systems: [] } }), layer: 'schema', message: 'spec.filter.systems: Invalid value: 0: spec.filter.systems in body should have at least 1 items' },
  { what: 'an absolute module path', resource: sbe({ backend: '/usr/lib/evil.mjs' }), layer: 'schema', message: 'spec.backend: Invalid value: "/usr/lib/evil.mjs": spec.backend in body should match' },
  // bad node selectors
  { what: 'an invalid label key in matchExpressions', resource: sep({ ...parser, nodeSelector: { matchExpressions: [{ key: 'storage type', operator: 'Exists' }] } }), layer: 'schema', message: 'spec.nodeSelector.matchExpressions[0].key: Invalid value: "storage type": spec.nodeSelector.matchExpressions[0].key in body should match' },
  { what: 'an invalid label value in matchLabels', resource: sep({ ...parser, nodeSelector: { matchLabels: { storage: 'san!' } } }), layer: 'schema', message: 'spec.nodeSelector.matchLabels.storage: Invalid value: "san!"' },
  { what: 'a label value longer than 63', resource: sep({ ...parser, nodeSelector: { matchLabels: { storage: long(64) } } }), layer: 'schema', message: 'spec.nodeSelector.matchLabels.storage: Too long: may not be more than 63' },
  { what: 'an invalid label key in matchLabels (map keys have no schema)', resource: sep({ ...parser, nodeSelector: { matchLabels: { 'storage type': 'san' } } }), layer: 'controller', message: 'spec.nodeSelector.matchLabels["storage type"]: must be a label key: [prefix/]name' },
  { what: 'a label key whose name part is longer than 63', resource: sep({ ...parser, nodeSelector: { matchExpressions: [{ key: `example.com/${long(64)}`, operator: 'Exists' }] } }), layer: 'controller', message: 'spec.nodeSelector.matchExpressions[0].key: the name (after any "prefix/") must be at most 63 characters' },
  { what: 'In without values', resource: sep({ ...parser, nodeSelector: { matchExpressions: [{ key: 'storage', operator: 'In' }] } }), layer: 'controller', message: 'spec.nodeSelector.matchExpressions[0].values: operator In needs at least one value (to match any value of the key, use operator Exists)' },
  { what: 'NotIn with an empty list', resource: sep({ ...parser, nodeSelector: { matchExpressions: [{ key: 'storage', operator: 'NotIn', values: [] }] } }), layer: 'controller', message: 'spec.nodeSelector.matchExpressions[0].values: operator NotIn needs at least one value' },
  { what: 'Exists with values', resource: sep({ ...parser, nodeSelector: { matchExpressions: [{ key: 'storage', operator: 'Exists', values: ['san'] }] } }), layer: 'controller', message: 'spec.nodeSelector.matchExpressions[0].values: operator Exists takes no values (remove "values", or use operator In)' },
  // plugins and their config
  { what: 'a parser that does not exist', resource: sep({ type: 'parser', plugin: 'iscsi' }), layer: 'controller', message: 'spec.plugin: no parser plugin named "iscsi"; parsers: scsi, nvme, block, multipath, dm, lvm, mdraid, fs' },
  { what: 'a parser declared as a receiver', resource: sep({ type: 'receiver', plugin: 'multipath' }), layer: 'controller', message: 'spec.plugin: no receiver plugin named "multipath" (multipath is a parser; set type: parser)' },
  { what: 'stdout with format xml', resource: sep({ type: 'receiver', plugin: 'stdout', config: { format: 'xml' } }), layer: 'controller', message: 'spec.config.format: must be one of "text", "json" (got "xml")' },
  { what: 'a webhook without a url', resource: sep({ type: 'receiver', plugin: 'webhook', config: { format: 'alertmanager' } }), layer: 'controller', message: 'spec.config.url: required' },
  { what: 'an option a parser does not have', resource: sep({ type: 'parser', plugin: 'scsi', config: { verbose: true } }), layer: 'controller', message: 'spec.config.verbose: unknown field' },
  { what: 'a filter on a receiver', resource: sep({ type: 'receiver', plugin: 'stdout', filter: { systems: ['scsi'] } }), layer: 'controller', message: 'spec.filter: only parsers take a filter (this is a receiver): remove it' },
  // backends and their config
  { what: 'a memory BufferSize of -1', resource: sbe({ backend: 'memory', filters: ['1 1 EQ'], config: { BufferSize: -1 } }), layer: 'controller', message: 'spec.config.BufferSize: BufferSize must be from 1 to' },
  { what: 'a sqlite setting misspelt', resource: sbe({ backend: 'sqlite', filters: ['1 1 EQ'], config: { MaxAgeDay: 30 } }), layer: 'controller', message: 'spec.config.MaxAgeDay: unknown field' },
  { what: 'the same setting in camelCase and PascalCase', resource: sbe({ backend: 'sqlite', filters: ['1 1 EQ'], config: { path: '/a.db', Path: '/b.db' } }), layer: 'controller', message: 'spec.config.path: the same setting as "Path" (Path); keep one' },
  { what: 'two postgres connection sources', resource: sbe({ backend: 'postgres', filters: ['1 1 EQ'], config: { ConnectionSecret: 'pg', ConnectionStringEnv: 'PG_URL' } }), layer: 'controller', message: 'spec.config: give at most one of ConnectionString, ConnectionStringFile, ConnectionStringEnv, ConnectionSecret' },
  { what: 'an invalid Secret name', resource: sbe({ backend: 'postgres', filters: ['1 1 EQ'], config: { ConnectionSecret: 'Peripety_PG' } }), layer: 'controller', message: 'spec.config.ConnectionSecret: must be a Kubernetes Secret name' },
  { what: 'a backend that is not built in and not a module', resource: sbe({ backend: 'cassandra', filters: ['1 1 EQ'] }), layer: 'controller', message: 'spec.backend: no built-in backend named "cassandra" (built-in: memory, jsonl, sqlite, postgres)' },
  { what: 'a module path escaping PluginSearchPath', resource: sbe({ backend: 'vendor/../../etc/evil.mjs', filters: ['1 1 EQ'] }), layer: 'controller', message: 'spec.backend: "vendor/../../etc/evil.mjs" escapes the agent\'s PluginSearchPath' },
  { what: 'a module path that is not a module', resource: sbe({ backend: 'vendor/backend.so', filters: ['1 1 EQ'] }), layer: 'controller', message: 'spec.backend: "vendor/backend.so" is not an ES module file' },
  // filters
  { what: 'a filter with an unknown operator', resource: sbe({ backend: 'sqlite', filters: ['1 1 EQ', '.event.severity 3 LEQ'] }), layer: 'controller', message: 'spec.filters[1] ".event.severity 3 LEQ" at position 18 (token "LEQ"): unknown operator', filter: { index: 1, position: 18, token: 'LEQ' } },
  { what: 'a filter naming an unknown member', resource: sbe({ backend: 'sqlite', filters: ['.event.severty 3 LE'] }), layer: 'controller', message: 'spec.filters[0] ".event.severty 3 LE" at position 0 (token ".event.severty")', filter: { index: 0, position: 0, token: '.event.severty' } },
  { what: 'a filter leaving two values (elos ignores the rest)', resource: sbe({ backend: 'sqlite', filters: ['0 1 EQ 1 1 EQ'] }), layer: 'controller', message: 'spec.filters[0] "0 1 EQ 1 1 EQ" at position 4 (token "EQ"): 2 values remain at the end of the filter', filter: { index: 0, position: 4, token: 'EQ' } },
];

/** Valid resources besides manifests/examples/. */
export const VALID_INLINE: [string, Resource][] = [
  // docs/architecture.md "Custom resources", as written there (camelCase backend config)
  ['docs/architecture.md StorageEventPlugin', sep({ type: 'parser', plugin: 'multipath', nodeSelector: { matchLabels: { storage: 'san' } }, filter: { systems: ['dm', 'multipath'], types: ['raw'] }, config: {}, state: 'Running' })],
  ['docs/architecture.md StorageBackend', sbe({ backend: 'sqlite', run: 'always', filters: ['.event.severity 3 LE'], nodeSelector: {}, config: { path: '/var/lib/peripety/events.db', maxAgeDays: 30 } })],
  ['a minimal collector', sep({ type: 'collector', plugin: 'kmsg' }, 'kmsg')],
  ['a stopped JSON stdout receiver on labelled nodes', sep({ type: 'receiver', plugin: 'stdout', config: { format: 'json' }, state: 'Stopped', nodeSelector: { matchExpressions: [{ key: 'node-role.kubernetes.io/storage', operator: 'Exists' }, { key: 'topology.kubernetes.io/zone', operator: 'In', values: ['a', 'b'] }] } }, 'debug-stdout')],
  ['a parser for raw and synthetic events of every system', sep({ type: 'parser', plugin: 'fs', filter: { systems: ['*'], types: ['raw', 'synthetic'] } })],
  ['a memory ring started by a lifecycle command', sbe({ backend: 'memory', run: 'trigger', filters: ['.e.messageCode 6000 GE .e.messageCode 7000 LT AND'], config: { BufferSize: 5000 } }, 'recent')],
  ['a jsonl backend for SCSI events', sbe({ backend: 'jsonl', filters: [".event.system 'scsi' STRCMP"], config: { StoragePath: 'events/%host%-%date%-%count%.jsonl', MaxFiles: 10 } }, 'scsi-jsonl')],
];
