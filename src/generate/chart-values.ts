// The values of the Helm chart charts/peripety: one zod schema that is the
// source of truth for what `helm install --set/-f` may say. hack/gen-chart.ts
// turns it into charts/peripety/values.schema.json (so Helm refuses a bad
// value before anything reaches the cluster), values.yaml (the defaults, with
// these descriptions as comments) and the values table of the chart README.
//
// Every object is strict (a misspelt key is an error, not silently ignored),
// every string that ends up in an object name, a label, a flag or a TOML file
// has a pattern, and every number a range. The descriptions are written for
// the person installing the chart: they say what a value does on the node or
// in the cluster, not how the template uses it.
import { z } from 'zod';
import { PARSER_NAMES } from '../parsers/options.ts';

// --- shared pieces ----------------------------------------------------------

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// Label keys and values as the API server checks them (an optional DNS
// prefix, a name of at most 63 characters); Helm refuses them before the API
// server would refuse the whole release halfway through.
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
// A Kubernetes resource quantity (the API server's own pattern).
const QUANTITY = /^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/;
// A Prometheus duration (as the prometheus-operator CRDs check it).
const DURATION = /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/;
const IPV4 = /^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;
// 224.0.0.0/4: the seed's multicast group must be an IPv4 multicast address.
const IPV4_MULTICAST = /^(22[4-9]|23[0-9])\.((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){2}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;
const ABS_PATH = /^\/[^\0]*$/;

const d = (description: string) => ({ description });

const labels = (what: string) =>
  z.record(z.string().regex(LABEL_KEY), z.string().regex(LABEL_VALUE)).meta(d(what));
const annotations = (what: string) =>
  z.record(z.string().regex(LABEL_KEY), z.string().max(262_144)).meta(d(what));
const port = z.int().min(1).max(65_535);

const Quantity = z.union([z.number().positive(), z.string().regex(QUANTITY)]);
const ResourceList = z.record(
  z.string().regex(/^(cpu|memory|ephemeral-storage|hugepages-[0-9A-Za-z]+|[a-z0-9.-]+\/[A-Za-z0-9._-]+)$/),
  Quantity,
);
const Resources = (what: string) =>
  z.strictObject({ requests: ResourceList.optional(), limits: ResourceList.optional() }).meta(d(what));

const Toleration = z.strictObject({
  key: z.string().max(316).optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().max(63).optional(),
  effect: z.enum(['', 'NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.int().optional(),
});
// The affinity rules themselves are the API server's business (they are long
// and versioned); the chart checks only that no other key is there.
const Affinity = (what: string) =>
  z.strictObject({
    nodeAffinity: z.record(z.string(), z.unknown()).optional(),
    podAffinity: z.record(z.string(), z.unknown()).optional(),
    podAntiAffinity: z.record(z.string(), z.unknown()).optional(),
  }).meta(d(what));
const NodeSelector = (what: string) => z.record(z.string().regex(LABEL_KEY), z.string().regex(LABEL_VALUE)).meta(d(what));
const PriorityClass = z.union([z.literal(''), z.string().max(253).regex(DNS_SUBDOMAIN)]);
const LOG_LEVEL = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

const ServiceAccount = (who: string) =>
  z.strictObject({
    name: z.union([z.literal(''), z.string().max(253).regex(DNS_SUBDOMAIN)]).default('')
      .meta(d(`Name of the ${who} ServiceAccount the chart creates; "" means <release fullname>-${who}.`)),
    annotations: annotations(`Annotations on the ${who} ServiceAccount.`).default({}),
  });

const ScrapeConfig = (kind: string, what: string) =>
  z.strictObject({
    enabled: z.boolean().default(false).meta(d(`Create a ${kind} (monitoring.coreos.com/v1; needs the Prometheus Operator's CRDs) for ${what}.`)),
    interval: z.string().regex(DURATION).default('30s').meta(d('Scrape interval (a Prometheus duration such as 30s or 1m).')),
    labels: labels(`Extra labels on the ${kind}, e.g. the release label your Prometheus selects monitors by.`).default({}),
  });

// --- the values ---------------------------------------------------------------

export const ChartValues = z.strictObject({
  nameOverride: z.union([z.literal(''), z.string().max(40).regex(DNS_LABEL)]).default('')
    .meta(d('Replaces the chart name ("peripety") in object names and in the app.kubernetes.io/name label.')),
  fullnameOverride: z.union([z.literal(''), z.string().max(40).regex(DNS_LABEL)]).default('')
    .meta(d('The prefix of every object name (default: the release name, with "-peripety" added unless the release name contains it).')),
  commonLabels: labels('Extra labels on every object the chart creates.').default({}),

  image: z.strictObject({
    repository: z.string().max(255).regex(/^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:[0-9]+)?(\/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$/)
      .default('ghcr.io/peripety/peripety')
      .meta(d('The one image with both entry points: `peripety agent` (DaemonSet) and `peripety controller` (Deployment).')),
    tag: z.union([z.literal(''), z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/)]).default('')
      .meta(d('Image tag; "" means the chart\'s appVersion.')),
    digest: z.union([z.literal(''), z.string().regex(/^sha256:[0-9a-f]{64}$/)]).default('')
      .meta(d('Pin the image by digest (sha256:…); when set it is used instead of the tag.')),
    pullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent').meta(d('Kubernetes imagePullPolicy of both workloads.')),
  }).prefault({}),
  imagePullSecrets: z.array(z.strictObject({ name: z.string().max(253).regex(DNS_SUBDOMAIN) })).default([])
    .meta(d('Secrets for pulling the image from a private registry, as [{name: my-secret}].')),

  controller: z.strictObject({
    replicas: z.int().min(1).max(10).default(2)
      .meta(d('Controller replicas. One leads (Lease peripety-controller in the release namespace); the others keep their caches warm and take over within about 15 s when it goes away (2 s on a graceful stop).')),
    logLevel: LOG_LEVEL.default('info').meta(d('Controller log level (JSON lines on stderr).')),
    metricsPort: port.default(9478).meta(d('Port of the controller\'s /metrics and /healthz (on all pod addresses; the metrics Service points at it).')),
    agentTokenExpirationSeconds: z.int().min(600).max(86_400).default(600)
      .meta(d('Lifetime of the tokens the controller requests (TokenRequest for its own ServiceAccount) and presents to the agents, one per node (audience peripety-agent:<node>, accepted by that node\'s agent only); each is requested again at 80% of its lifetime.')),
    resources: Resources('Controller container requests and limits.').default({ requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } }),
    podDisruptionBudget: z.strictObject({
      enabled: z.boolean().default(true).meta(d('Create a PodDisruptionBudget (minAvailable 1) so a node drain never takes every replica at once; only when replicas > 1.')),
    }).prefault({}),
    nodeSelector: NodeSelector('Node labels the controller pods must match.').default({}),
    tolerations: z.array(Toleration).max(64).default([]).meta(d('Tolerations of the controller pods.')),
    affinity: Affinity('Affinity of the controller pods; {} means a preferred anti-affinity that spreads the replicas over nodes.').default({}),
    priorityClassName: PriorityClass.default('').meta(d('PriorityClass of the controller pods ("" = none).')),
    podAnnotations: annotations('Extra annotations on the controller pods.').default({}),
    podLabels: labels('Extra labels on the controller pods.').default({}),
    serviceAccount: ServiceAccount('controller').prefault({}),
  }).prefault({}),

  agent: z.strictObject({
    logLevel: LOG_LEVEL.default('info').meta(d('Agent log level ([main] log_level).')),
    port: port.default(9477)
      .meta(d('Port of the agent\'s HTTP API on the node\'s own address (status.hostIP; hostNetwork): the control API the controller pushes to (authenticated with TokenReview), the token-protected /v1/events, and the open /metrics, /healthz and /readyz. Must be free on every node.')),
    hostStateDir: z.string().max(4096).regex(ABS_PATH).default('/var/lib/peripety')
      .meta(d('Directory on the node for the agent\'s state (kmsg read position, last applied configuration, sqlite database, spools); created when missing. It is mounted at /var/lib/peripety in the pod.')),
    eventsNamespace: z.enum(['default', 'kube-system']).default('default')
      .meta(d('Namespace of the Kubernetes Events the k8s-events receiver writes (Events about a Node must live in default or kube-system); the agent may create and patch Events only there.')),
    kmsgDeviceResource: z.union([z.literal(''), z.string().max(253).regex(/^[a-z0-9.-]+\/[A-Za-z0-9._-]+$/)]).default('')
      .meta(d('"" (default): the agent container is privileged, the only way a pod can open /dev/kmsg on a stock container runtime (its device cgroup admits no other host device). Set to the extended resource a device plugin offers /dev/kmsg as (e.g. smarter-devices/kmsg) to run the agent unprivileged with only CAP_SYSLOG.')),
    journald: z.strictObject({
      enabled: z.boolean().default(false).meta(d('Mount the node\'s /run/systemd/journal (read-only) so a journald receiver (a StorageEventPlugin of type receiver, plugin journald) writes to the node\'s journal. Sending to journald\'s socket needs no write access to the filesystem; off by default because the default resources use no journald receiver.')),
    }).prefault({}).meta(d('The node\'s journal for the journald receiver.')),
    netAdmin: z.boolean().default(false)
      .meta(d('Unprivileged mode only (kmsgDeviceResource set): also grant CAP_NET_ADMIN, which lets the udev collector raise its uevent receive buffer above net.core.rmem_max (for uevent bursts such as hundreds of SAN paths at once). Privileged mode has every capability anyway.')),
    multicast: z.strictObject({
      enabled: z.boolean().default(true).meta(d('Broadcast every event as a UDP datagram (the seed\'s receivers, `prpt monitor` on the node).')),
      bindIP: z.string().regex(IPV4).default('127.0.0.1').meta(d('Local address datagrams are sent from; 127.0.0.1 keeps them on the node.')),
      group: z.string().regex(IPV4_MULTICAST).default('239.0.0.1').meta(d('Multicast group (224.0.0.0/4).')),
      port: port.default(6000).meta(d('Multicast UDP port.')),
    }).prefault({}),
    secretNames: z.array(z.string().max(253).regex(DNS_SUBDOMAIN)).max(64).default([])
      .meta(d('Secrets in the release namespace the agents may read (get, by name only), e.g. the ConnectionSecret of a postgres StorageBackend. [] grants no Secret access at all.')),
    // Measured with bench/agent-storm.bench.ts (docs/performance.md "Memory"): idle ≈93 MiB
    // after 30 s, 144–161 MiB at the peak of a 10k lines/s storm (≈208 MiB with
    // PERIPETY_NODE_FLAGS="--max-semi-space-size=8"), back to ≈104 MiB 30 s after it.
    resources: Resources('Agent container requests and limits (measured: idle ≈93 MiB; a 10k lines/s storm peaks at 144–161 MiB and is given back within 30 s; docs/performance.md "Memory").').default({ requests: { cpu: '50m', memory: '112Mi' }, limits: { memory: '256Mi' } }),
    tolerations: z.array(Toleration).max(64).default([{ operator: 'Exists' }])
      .meta(d('Tolerations of the agent pods. The default tolerates every taint, so every node (control plane, tainted storage nodes, nodes being drained) reports its storage events.')),
    nodeSelector: NodeSelector('Node labels the agent pods must match ({} = every Linux node).').default({}),
    affinity: Affinity('Affinity of the agent pods.').default({}),
    priorityClassName: PriorityClass.default('')
      .meta(d('PriorityClass of the agent pods ("" = none); system-node-critical keeps the agent on a node under memory pressure, where storage trouble is likely.')),
    maxUnavailable: z.union([z.int().min(1), z.string().regex(/^([1-9][0-9]?|100)%$/)]).default(1)
      .meta(d('Rolling update: how many nodes (or what percentage) may be without a ready agent at once.')),
    terminationGracePeriodSeconds: z.int().min(1).max(3600).default(30)
      .meta(d('Time the agent has after SIGTERM to drain every receiver and backend queue.')),
    podAnnotations: annotations('Extra annotations on the agent pods.').default({}),
    podLabels: labels('Extra labels on the agent pods.').default({}),
    serviceAccount: ServiceAccount('agent').prefault({}),
  }).prefault({}),

  defaultResources: z.strictObject({
    enabled: z.boolean().default(true)
      .meta(d('Create the default StorageEventPlugins and StorageBackend below (kmsg and udev collectors, parsers, k8s-events receiver, local sqlite). Without them the agents run nothing until you create your own.')),
    kmsg: z.strictObject({
      start: z.enum(['resume', 'end', 'beginning']).default('resume')
        .meta(d('Where the kmsg collector starts: after the saved position (resume; the whole ring after a reboot), at the end, or at the oldest record.')),
      acceptUserFacility: z.boolean().default(false)
        .meta(d('Also accept lines user space writes to /dev/kmsg (tests and demos that inject kernel-looking lines); leave false in production: anyone on the node could forge storage events.')),
    }).prefault({}),
    udev: z.strictObject({
      enabled: z.boolean().default(true).meta(d('The udev collector: block devices added, removed and changed (netlink uevents).')),
    }).prefault({}),
    parsers: z.array(z.enum(PARSER_NAMES as [string, ...string[]])).max(PARSER_NAMES.length).default([...PARSER_NAMES])
      .meta(d(`Parsers to create, one StorageEventPlugin each (named after the parser); any of ${PARSER_NAMES.join(', ')}.`)),
    k8sEvents: z.strictObject({
      enabled: z.boolean().default(true).meta(d('The k8s-events receiver: storage events become Kubernetes Events on their Node.')),
      minSeverity: z.enum(['info', 'warn', 'error']).default('warn').meta(d('Events below this severity do not become Kubernetes Events.')),
      rate: z.number().positive().max(1000).default(1).meta(d('API writes per second per node (token bucket); what it holds back is summarized, not lost.')),
      burst: z.int().min(1).max(10_000).default(10).meta(d('Token bucket size.')),
    }).prefault({}),
    sqlite: z.strictObject({
      enabled: z.boolean().default(true).meta(d('A StorageBackend "local": every event in <hostStateDir>/events.db on each node, queryable with `prpt query`.')),
      maxAgeDays: z.int().min(1).max(36_500).default(30).meta(d('Days events are kept.')),
      filters: z.array(z.string().min(1).max(4096)).min(1).max(64).default(['1 1 EQ'])
        .meta(d('elos RPN filters; an event is stored when any matches ("1 1 EQ" matches every event; docs/filter-language.md).')),
    }).prefault({}),
  }).prefault({}),

  monitoring: z.strictObject({
    serviceMonitor: ScrapeConfig('ServiceMonitor', 'the controller\'s metrics Service').prefault({}),
    podMonitor: ScrapeConfig('PodMonitor', 'the agents (their API port on each node)').prefault({}),
    prometheusRule: z.strictObject({
      enabled: z.boolean().default(false)
        .meta(d('Create a PrometheusRule (needs the Prometheus Operator\'s CRDs): alerts on disk failures, degraded arrays, read-only filesystems and event storms.')),
      labels: labels('Extra labels on the PrometheusRule, e.g. the label your Prometheus selects rules by.').default({}),
      runbookBaseUrl: z.string().max(2048).regex(/^https?:\/\/\S+$/).default('https://github.com/peripety/peripety/blob/main/docs/runbooks.md')
        .meta(d('Base of every alert\'s runbook_url annotation (the alert\'s anchor is appended).')),
    }).prefault({}),
  }).prefault({}),

  dashboard: z.strictObject({
    enabled: z.boolean().default(false).meta(d('Create a ConfigMap with the Grafana dashboard, for the Grafana sidecar that loads dashboards from labelled ConfigMaps.')),
    labels: labels('Labels on the dashboard ConfigMap; the default is what the Grafana sidecar looks for.').default({ grafana_dashboard: '1' }),
    namespace: z.union([z.literal(''), z.string().regex(DNS_LABEL)]).default('')
      .meta(d('Namespace of the dashboard ConfigMap ("" = the release namespace); set it to where the Grafana sidecar looks.')),
  }).prefault({}),

  // Helm adds `global` to the values of every chart; nothing reads it here.
  global: z.record(z.string(), z.unknown()).optional().meta(d('Helm\'s global values (not used by this chart).')),
});
export type ChartValues = z.output<typeof ChartValues>;

/** The defaults: what values.yaml holds. */
export function defaultValues(): ChartValues {
  return ChartValues.parse({});
}

/** JSON Schema for Helm (charts/peripety/values.schema.json). */
export function valuesJsonSchema(): Record<string, unknown> {
  return forHelm(z.toJSONSchema(ChartValues, { io: 'output', target: 'draft-2020-12' })) as Record<string, unknown>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Two rewrites that change no verdict, only Helm's messages:
 * - a map whose keys have a pattern (zod: `propertyNames`) becomes
 *   `patternProperties` + `additionalProperties: false`, so a bad key is
 *   reported as "at '/commonLabels': additional properties 'bad key' not
 *   allowed" (Helm's validator reports a failed propertyNames at a wrong
 *   location);
 * - zod's implicit integer bounds (±2^53-1) are dropped: noise in the file.
 */
function forHelm(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(forHelm);
  if (!isObject(node)) return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if ((k === 'minimum' || k === 'maximum') && typeof v === 'number' && Math.abs(v) === Number.MAX_SAFE_INTEGER) continue;
    out[k] = forHelm(v);
  }
  const names = out.propertyNames;
  if (isObject(names) && typeof names.pattern === 'string' && isObject(out.additionalProperties)) {
    delete out.propertyNames;
    out.patternProperties = { [names.pattern]: out.additionalProperties };
    out.additionalProperties = false;
  }
  return out;
}
