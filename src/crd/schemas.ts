// The custom resources the controller watches (docs/architecture.md "Custom resources", docs/controller.md):
// StorageEventPlugin and StorageBackend, group peripety.io, v1alpha1,
// cluster-scoped. These zod schemas are the one source of truth for their
// `spec` and `status`: the controller validates with them (src/crd/validate.ts)
// and hack/gen-crds.ts turns them into the CRDs' OpenAPI schemas
// (src/generate/structural.ts), so `kubectl explain` and the API server say what
// the code enforces.
//
// Three layers check a resource, and each constraint lives in the first one
// that can express it:
// - the API server (from the generated OpenAPI): types, enums, required
//   fields, lengths, counts, patterns, list uniqueness, unknown fields;
// - these schemas' refinements (not expressible in OpenAPI, so only the
//   controller sees them): label key part lengths, operator/values rules;
// - validate.ts: what depends on other fields or on the registries (the
//   plugin exists for its type, `config` against that plugin's or backend's
//   option schema, filters compiled).
//
// Every field has a description: it is what `kubectl explain` prints.
// Every string, list and map is bounded, so the API server refuses absurd
// objects before the controller spends anything on them.
import { z } from 'zod';
import { PLUGIN_TYPES, FILTER_SYSTEMS } from '../config/schema.ts';
import { MAX_FILTERS_PER_BACKEND, MAX_FILTER_LENGTH, RUN_MODES } from '../storage/config.ts';
import { REPORTED_FILTER_CHARS } from '../storage/filters.ts';

export const GROUP = 'peripety.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** A list without repeats: x-kubernetes-list-type set on the API server (meta), the same check here. */
function setOf<T extends z.ZodType>(item: T) {
  return z.array(item).superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((v, i) => {
      const key = JSON.stringify(v);
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: [i], message: `${key} is listed twice` });
      seen.add(key);
    });
  });
}

// ---------------------------------------------------------------------------
// Names and labels (Kubernetes' own rules, apimachinery validation)

/**
 * A resource's name becomes a TOML section name (plugins) or an elos backend
 * name (the spool directory, a metric label): both refuse `.`, and both stop
 * at 63 characters. A Kubernetes name is lower case; together that is an RFC
 * 1123 label.
 */
export const RESOURCE_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_RESOURCE_NAME = 63;

/** The agent's plugin implementation names (src/config/schema.ts CommonSection.plugin). */
const PLUGIN_NAME_RE = /^[a-z][a-z0-9_-]{0,62}$/;

const DNS1123_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME_RE = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
/** a qualified name: `[prefix/]name`; part lengths are checked in code (a regex would be unreadable) */
const QUALIFIED_NAME_RE = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const MAX_LABEL_PREFIX = 253;
const MAX_LABEL_NAME = 63;
const MAX_LABEL_KEY = MAX_LABEL_PREFIX + 1 + MAX_LABEL_NAME;
const MAX_LABEL_VALUE = 63;
const MAX_MATCH_LABELS = 32;
const MAX_MATCH_EXPRESSIONS = 32;
const MAX_SELECTOR_VALUES = 64;

/** Why a label key is invalid, or null: Kubernetes' IsQualifiedName, worded for a person. */
function labelKeyProblem(key: string): string | null {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : null;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== null) {
    if (prefix.length === 0) return 'the prefix before "/" must not be empty';
    if (prefix.length > MAX_LABEL_PREFIX) return `the prefix before "/" must be at most ${MAX_LABEL_PREFIX} characters`;
    if (!DNS1123_SUBDOMAIN_RE.test(prefix)) return 'the prefix before "/" must be a DNS subdomain (lower case letters, digits, "-" and ".", e.g. "example.com")';
  }
  if (name.length === 0) return 'the name must not be empty';
  if (name.length > MAX_LABEL_NAME) return `the name (after any "prefix/") must be at most ${MAX_LABEL_NAME} characters`;
  if (!LABEL_NAME_RE.test(name)) {
    return 'must be letters, digits, "-", "_" or ".", starting and ending with a letter or digit, with an optional DNS-subdomain prefix and "/" (e.g. "storage" or "example.com/storage")';
  }
  return null;
}

const labelKey = z
  .string()
  .min(1)
  .max(MAX_LABEL_KEY)
  .regex(QUALIFIED_NAME_RE, 'must be a label key: [prefix/]name, e.g. "storage" or "example.com/storage"')
  .superRefine((k, ctx) => {
    const p = labelKeyProblem(k);
    // the regex above already explained a syntax error; only length rules are left here
    if (p !== null && QUALIFIED_NAME_RE.test(k)) ctx.addIssue({ code: 'custom', message: p });
  });

const labelValue = z
  .string()
  .max(MAX_LABEL_VALUE)
  .regex(LABEL_VALUE_RE, 'must be a label value: empty, or letters, digits, "-", "_" or ".", starting and ending with a letter or digit');

const SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

const LabelSelectorRequirement = z
  .strictObject({
    key: labelKey.describe('The label key the requirement applies to, e.g. "storage" or "topology.kubernetes.io/zone".'),
    operator: z
      .enum(SELECTOR_OPERATORS)
      .describe('How the key relates to the values: In and NotIn need at least one value; Exists and DoesNotExist take none.'),
    values: z
      .array(labelValue)
      .max(MAX_SELECTOR_VALUES)
      .optional()
      .describe('Label values for In and NotIn (at least one); must be empty or absent for Exists and DoesNotExist.'),
  })
  .superRefine((r, ctx) => {
    const n = r.values?.length ?? 0;
    if ((r.operator === 'In' || r.operator === 'NotIn') && n === 0) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${r.operator} needs at least one value (to match any value of the key, use operator Exists)` });
    }
    if ((r.operator === 'Exists' || r.operator === 'DoesNotExist') && n > 0) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${r.operator} takes no values (remove "values", or use operator ${r.operator === 'Exists' ? 'In' : 'NotIn'})` });
    }
  })
  .describe('One requirement on a node label.');

export const LabelSelector = z
  .strictObject({
    matchLabels: z
      .record(labelKey, labelValue)
      .refine((m) => Object.keys(m).length <= MAX_MATCH_LABELS, { message: `at most ${MAX_MATCH_LABELS} labels` })
      .optional()
      .meta({
        description: 'Labels a node must have, with exactly these values. ANDed with matchExpressions.',
        maxProperties: MAX_MATCH_LABELS,
      }),
    matchExpressions: z
      .array(LabelSelectorRequirement)
      .max(MAX_MATCH_EXPRESSIONS)
      .optional()
      .describe('Requirements on node labels, all of which must hold. ANDed with matchLabels.'),
  })
  .describe('Which nodes get this (a Kubernetes label selector on Node labels). Absent or empty: every node.');
export type LabelSelector = z.infer<typeof LabelSelector>;

// ---------------------------------------------------------------------------
// Status, shared

export const CONDITION_ACCEPTED = 'Accepted';
export const CONDITION_READY = 'Ready';
const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;
const MAX_CONDITIONS = 8;
export const MAX_CONDITION_MESSAGE = 32768;
export const MAX_FAILURES = 20;
export const MAX_FAILURE_MESSAGE = 1024;
const MAX_NODE_NAME = 253;

/** metav1.Condition, with the same limits the Kubernetes API types declare. */
export const Condition = z
  .strictObject({
    type: z
      .string()
      .min(1)
      .max(316)
      .regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/)
      .describe(`The aspect this condition reports: ${CONDITION_ACCEPTED} (the spec is valid) or ${CONDITION_READY} (applied on every selected node).`),
    status: z.enum(CONDITION_STATUSES).describe('Whether the condition holds: True, False or Unknown.'),
    observedGeneration: z
      .int()
      .min(0)
      .optional()
      .describe('The metadata.generation of the spec this condition was computed from.'),
    lastTransitionTime: z.iso.datetime().describe('When the status last changed (RFC 3339, UTC).'),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe('Why, as a CamelCase word a program can match on (e.g. InvalidConfig, Applied).'),
    message: z.string().max(MAX_CONDITION_MESSAGE).describe('Why, for a person: what is wrong and what to change.'),
  })
  .describe('A standard Kubernetes condition.');
export type Condition = z.infer<typeof Condition>;

const nonNegative = (description: string) => z.int().min(0).optional().describe(description);

const nodeFailure = z
  .strictObject({
    node: z.string().min(1).max(MAX_NODE_NAME).describe('The node.'),
    message: z.string().max(MAX_FAILURE_MESSAGE).describe('What went wrong there.'),
  });

// One-off lifecycle commands (annotation peripety.io/command, src/controller/commands.ts)
export const COMMAND_ACTIONS = ['start', 'stop', 'restart', 'reload', 'flush'] as const;
export type CommandAction = (typeof COMMAND_ACTIONS)[number];
const COMMAND_PHASES = ['Running', 'Succeeded', 'Failed', 'Invalid'] as const;
/** the longest annotation value taken; status.command.request holds at most this many characters */
export const MAX_COMMAND_REQUEST = 80;

export const CommandStatus = z
  .strictObject({
    request: z
      .string()
      .max(MAX_COMMAND_REQUEST)
      .describe(`The peripety.io/command annotation value this records (a longer, invalid value cut to ${MAX_COMMAND_REQUEST} characters). The same value is not run again: to repeat a command, annotate ACTION@NONCE with a new nonce (restart@2).`),
    action: z
      .enum(COMMAND_ACTIONS)
      .optional()
      .describe('start, stop, restart (this resource\'s plugin or backend), reload or flush (the whole agent); absent when the request is invalid.'),
    phase: z
      .enum(COMMAND_PHASES)
      .describe('Running (sent to the agents), Succeeded (every targeted agent did it), Failed (some did not, or nothing could run; see message and failures) or Invalid (not a command; nothing ran; message says what to write).'),
    startedAt: z.iso.datetime().optional().describe('When the controller started sending it to the agents (RFC 3339, UTC).'),
    completedAt: z.iso.datetime().optional().describe('When every targeted agent had answered, or when the request was found invalid (RFC 3339, UTC).'),
    nodesTargeted: nonNegative('Selected nodes with a registered agent: the agents the command was sent to.'),
    nodesSucceeded: nonNegative('Agents that did it.'),
    nodesFailed: nonNegative('Agents that refused it or could not be reached (see failures).'),
    failures: z
      .array(nodeFailure.describe('A node where the command failed.'))
      .max(MAX_FAILURES)
      .optional()
      .meta({
        description: `Nodes where the command failed, with the agent's answer (at most ${MAX_FAILURES}; nodesFailed has the full count).`,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['node'],
      }),
    message: z.string().max(MAX_FAILURE_MESSAGE).describe('The outcome, for a person: where it ran, what failed, or what to write instead.'),
  })
  .describe('The last one-off command asked with the annotation peripety.io/command (ACTION or ACTION@NONCE), and how it went.');
export type CommandStatus = z.infer<typeof CommandStatus>;

const statusFields = {
  observedGeneration: nonNegative('The metadata.generation the controller last acted on; older than metadata.generation while a change is being applied.'),
  conditions: z
    .array(Condition)
    .max(MAX_CONDITIONS)
    .optional()
    .meta({
      description: `The latest observations: ${CONDITION_ACCEPTED} (the spec is valid; when False, the message says what to fix) and ${CONDITION_READY} (applied on every selected node).`,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    }),
  nodesSelected: nonNegative('How many nodes nodeSelector selects.'),
  nodesApplied: nonNegative('How many selected nodes run the current generation.'),
  nodesFailed: nonNegative('How many selected nodes refused or could not be reached with the current generation (see failures).'),
  ready: z
    .string()
    .max(32)
    .regex(/^[0-9]+\/[0-9]+$/)
    .optional()
    .describe('nodesApplied/nodesSelected, for the READY column of kubectl get.'),
  failures: z
    .array(nodeFailure.describe('A node where applying failed.'))
    .max(MAX_FAILURES)
    .optional()
    .meta({
      description: `Nodes where applying failed, with the reason (at most ${MAX_FAILURES}; nodesFailed has the full count).`,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['node'],
    }),
  command: CommandStatus.optional(),
};

// ---------------------------------------------------------------------------
// StorageEventPlugin

const PLUGIN_STATES = ['Running', 'Stopped'] as const;
const EVENT_KINDS = ['raw', 'synthetic'] as const;
/** plugin and backend options: plenty for every built-in, bounded for the API server */
const MAX_CONFIG_KEYS = 64;

const config = (description: string) =>
  z
    .record(z.string().max(253), z.unknown())
    .refine((c) => Object.keys(c).length <= MAX_CONFIG_KEYS, { message: `at most ${MAX_CONFIG_KEYS} settings` })
    .optional()
    .meta({ description, maxProperties: MAX_CONFIG_KEYS, 'x-kubernetes-preserve-unknown-fields': true });

const PluginFilter = z
  .strictObject({
    systems: setOf(z.enum(FILTER_SYSTEMS))
      .min(1)
      .max(FILTER_SYSTEMS.length)
      .optional()
      .meta({
        description: `Systems routed to this parser (${FILTER_SYSTEMS.join(', ')}); "dm" selects the whole device-mapper family, "*" every system. Absent: the parser's own systems.`,
        'x-kubernetes-list-type': 'set',
      }),
    types: setOf(z.enum(EVENT_KINDS))
      .min(1)
      .max(EVENT_KINDS.length)
      .optional()
      .meta({
        description: 'Which events reach this parser: raw (kernel records), synthetic (other parsers\' events), or both. Absent: raw.',
        'x-kubernetes-list-type': 'set',
      }),
  })
  .describe('Parsers only: which events the bus routes to this parser.');
type PluginFilter = z.infer<typeof PluginFilter>;

export const StorageEventPluginSpec = z
  .strictObject({
    type: z
      .enum(PLUGIN_TYPES)
      .describe('What the plugin is: collector (reads kernel output: kmsg, udev), parser (turns raw records into storage events) or receiver (delivers events: stdout, journald, webhook, ...).'),
    plugin: z
      .string()
      .min(1)
      .max(63)
      .regex(PLUGIN_NAME_RE, 'must be a plugin implementation name (lower case letters, digits, "-" and "_", starting with a letter)')
      .describe('The implementation, e.g. kmsg (collector), multipath (parser), webhook (receiver); `peripety list-plugins` lists every one with what it does. The controller checks that one of this type exists.'),
    nodeSelector: LabelSelector.optional(),
    filter: PluginFilter.optional(),
    config: config('The plugin\'s own options, as in its section of the agent\'s TOML configuration (e.g. {format: json} for stdout). The controller validates them against the plugin\'s option schema and reports problems in the Accepted condition.'),
    state: z
      .enum(PLUGIN_STATES)
      .default('Running')
      .describe('Running: the plugin runs on every selected node. Stopped: it is configured but not started.'),
  })
  .describe('What to run and where.');
export type StorageEventPluginSpec = z.infer<typeof StorageEventPluginSpec>;

export const StorageEventPluginStatus = z
  .strictObject({ ...statusFields })
  .describe('What the controller observed; written by the controller only.');
export type StorageEventPluginStatus = z.infer<typeof StorageEventPluginStatus>;

/** The agent's filter_type for a spec's filter.types (raw when absent, as the agent defaults). */
export function agentFilterType(types: readonly ('raw' | 'synthetic')[] | undefined): 'raw' | 'synthetic' | 'both' {
  if (types === undefined || types.length === 0) return 'raw';
  const raw = types.includes('raw');
  const synthetic = types.includes('synthetic');
  return raw && synthetic ? 'both' : synthetic ? 'synthetic' : 'raw';
}

// ---------------------------------------------------------------------------
// StorageBackend

/** A built-in name or a module path under the node's PluginSearchPath: no leading "/" (the controller refuses "..") */
const BACKEND_FILE_RE = /^[A-Za-z0-9_.][A-Za-z0-9_./-]*$/;
const MAX_BACKEND_FILE = 255;

export const FilterError = z
  .strictObject({
    index: z.int().min(0).max(MAX_FILTERS_PER_BACKEND - 1).describe('The 0-based index of the filter in spec.filters.'),
    filter: z.string().max(REPORTED_FILTER_CHARS + 1).describe(`The filter (its first ${REPORTED_FILTER_CHARS} characters).`),
    position: z.int().min(-1).max(MAX_FILTER_LENGTH).describe('The 0-based character offset of the offending token (-1: the entry is not a string).'),
    token: z.string().max(REPORTED_FILTER_CHARS + 1).describe('The offending token as written (empty at the end of the filter).'),
    message: z.string().max(1024).describe('What is wrong and, where it helps, what would be right.'),
  })
  .describe('A filter that does not compile; the backend runs with its other filters.');
export type FilterError = z.infer<typeof FilterError>;

export const StorageBackendSpec = z
  .strictObject({
    backend: z
      .string()
      .min(1)
      .max(MAX_BACKEND_FILE)
      .regex(BACKEND_FILE_RE, 'must be a built-in backend (memory, jsonl, sqlite, postgres) or an ES module path relative to the agent\'s PluginSearchPath')
      .describe('Where events go: a built-in backend (memory, jsonl, sqlite, postgres; `peripety list-plugins` says what each does) or an ES module file under the agent\'s PluginSearchPath (e.g. custom/backend.mjs). The elos File.'),
    run: z
      .enum(RUN_MODES)
      .default('always')
      .describe('always: load and start; never: configured but not loaded; trigger: loaded, started by a lifecycle command. The elos Run.'),
    filters: z
      .array(z.string().max(MAX_FILTER_LENGTH))
      .max(MAX_FILTERS_PER_BACKEND)
      .optional()
      .describe(`Filters in the RPN filter language (docs/filter-language.md), tried in order; an event is stored when one matches, e.g. ".event.severity 3 LE". A filter that does not compile is skipped and reported in status.filterErrors. Absent or empty: the backend stores nothing. At most ${MAX_FILTERS_PER_BACKEND}, each at most ${MAX_FILTER_LENGTH} characters. The elos Filter.`),
    nodeSelector: LabelSelector.optional(),
    config: config('The backend\'s own settings (the elos Config), e.g. {Path: /var/lib/peripety/events.db, MaxAgeDays: 30} for sqlite or {ConnectionSecret: peripety-pg} for postgres; keys may also be written in camelCase (path, maxAgeDays). The controller validates them against the backend\'s schema (built-in backends only).'),
  })
  .describe('Where to store events, which ones, and on which nodes.');
export type StorageBackendSpec = z.infer<typeof StorageBackendSpec>;

export const StorageBackendStatus = z
  .strictObject({
    ...statusFields,
    filterErrors: z
      .array(FilterError)
      .max(MAX_FILTERS_PER_BACKEND)
      .optional()
      .meta({
        description: 'Filters that do not compile, each with the position and token of the problem; the backend runs with the others.',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['index'],
      }),
  })
  .describe('What the controller observed; written by the controller only.');
export type StorageBackendStatus = z.infer<typeof StorageBackendStatus>;
