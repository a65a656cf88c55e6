// The controller's Prometheus metrics (docs/architecture.md "Metrics";
// docs/controller.md), declared once per registry (src/metrics/per-registry.ts).
// `peripety controller` serves its own registry with prom-client's default
// process metrics on it. Labels are bounded: kind, result, reason and action
// are fixed sets. The per-node token requests are counted by
// src/controller/agent-tokens.ts.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { perRegistry } from '../metrics/per-registry.ts';
import { PUSH_REFUSED_REASONS } from './endpoint.ts';

/** What the gauges read at scrape time (the controller sets them). */
interface GaugeReaders {
  depth: () => number;
  configured: () => number;
  leading: () => boolean;
}

const controllerMetrics = perRegistry((registry: Registry) => {
  const registers = [registry];
  const read: GaugeReaders = { depth: () => 0, configured: () => 0, leading: () => false };
  const m = {
    read,
    reconciles: new Counter({ name: 'peripety_controller_reconciles_total', help: 'Reconciles by kind (node, sep, sbe) and result.', labelNames: ['kind', 'result'], registers }),
    duration: new Histogram({
      name: 'peripety_controller_reconcile_duration_seconds', help: 'Reconcile duration by kind and result.', labelNames: ['kind', 'result'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers,
    }),
    pushes: new Counter({ name: 'peripety_controller_pushes_total', help: 'Configuration pushes to agents that succeeded.', registers }),
    pushFailures: new Counter({ name: 'peripety_controller_push_failures_total', help: 'Configuration pushes to agents that failed (refused or unreachable).', registers }),
    pushRefused: new Counter({
      name: 'peripety_controller_push_refused_total',
      help: 'Configuration pushes and commands not sent because the agent Lease\'s endpoint is not on its Node\'s own address, by reason (no_node, invalid_endpoint, no_node_address, foreign_address); a configuration push is counted again only when the Lease, the configuration or 5 minutes pass.',
      labelNames: ['reason'], registers,
    }),
    statusWrites: new Counter({ name: 'peripety_controller_status_writes_total', help: 'Status writes to StorageEventPlugins and StorageBackends.', registers }),
    commands: new Counter({
      name: 'peripety_controller_commands_total',
      help: 'One-off commands from the peripety.io/command annotation, by action (start, stop, restart, reload, flush; unknown when invalid) and result (succeeded, failed, invalid, interrupted).',
      labelNames: ['action', 'result'], registers,
    }),
    queueDepth: new Gauge({ name: 'peripety_controller_queue_depth', help: 'Keys waiting or being reconciled.', registers, collect() { this.set(read.depth()); } }),
    agentsConfigured: new Gauge({ name: 'peripety_controller_agents_configured', help: 'Agents whose Lease shows the configuration rendered for their node.', registers, collect() { this.set(read.configured()); } }),
    leader: new Gauge({ name: 'peripety_controller_leader', help: '1 while this replica is the leader.', registers, collect() { this.set(read.leading() ? 1 : 0); } }),
  };
  // every reason from the start: a dashboard sees 0, not no series, until the first refusal
  for (const reason of PUSH_REFUSED_REASONS) m.pushRefused.inc({ reason }, 0);
  collectDefaultMetrics({ register: registry });
  return m;
});

/**
 * The controller's metric set. The gauges read the given functions at scrape
 * time; the registry is the controller's own unless one is given (a second
 * instance on one registry shares the metrics and reads its own functions).
 */
export class ControllerMetrics {
  readonly registry: Registry;
  readonly reconciles: Counter<'kind' | 'result'>;
  readonly duration: Histogram<'kind' | 'result'>;
  readonly pushes: Counter;
  readonly pushFailures: Counter;
  readonly pushRefused: Counter<'reason'>;
  readonly statusWrites: Counter;
  readonly commands: Counter<'action' | 'result'>;
  readonly queueDepth: Gauge;
  readonly agentsConfigured: Gauge;
  readonly leader: Gauge;

  constructor(depth: () => number, configured: () => number, leading: () => boolean, registry: Registry = new Registry()) {
    const m = controllerMetrics(registry);
    m.read.depth = depth;
    m.read.configured = configured;
    m.read.leading = leading;
    this.registry = registry;
    this.reconciles = m.reconciles;
    this.duration = m.duration;
    this.pushes = m.pushes;
    this.pushFailures = m.pushFailures;
    this.pushRefused = m.pushRefused;
    this.statusWrites = m.statusWrites;
    this.commands = m.commands;
    this.queueDepth = m.queueDepth;
    this.agentsConfigured = m.agentsConfigured;
    this.leader = m.leader;
  }
}
