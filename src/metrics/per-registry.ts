// Metrics created once per registry, and the one way this project declares
// metrics (docs/architecture.md "Metrics").
//
// Why once per registry: prom-client refuses a second metric of the same name
// in one registry, and the agent keeps its registry across configuration
// reloads: a reload builds new collectors, receivers, senders and storage
// managers while the old ones still drain, on the same registry. So each
// module creates its set of metrics on first use and shares it.
//
// The rule, for every module that owns metrics:
// - declare them in ONE module-level factory,
//     const fooMetrics = perRegistry((registry) => {
//       const registers = [registry];
//       return { sent: new Counter({ name: 'peripety_…_total', help: '…', labelNames: [...], registers }), … };
//     });
//   so name, help, type, label names and buckets of the module's metrics
//   stand in one place (users' alerts and the chart's dashboard depend on
//   them: never rename or re-type one);
// - components call `fooMetrics(registry)` with the registry they were given,
//   never `new Counter(...)` in a constructor, never a lookup by name
//   (`registry.getSingleMetric`);
// - label values known in advance are created at 0 inside the factory (a
//   rate over a series works before its first step);
// - state the metrics read at scrape time (tallies the hot path bumps with a
//   plain `n++`, the live objects a gauge reads in `collect()`) is created in
//   the factory beside the metric and returned with it, so every component on
//   one registry shares it;
// - a class that adds behaviour (AgentMetrics, StorageMetrics, DeviceErrors,
//   ControllerMetrics) is a view over its module's set: constructing it twice
//   on one registry shares the metrics instead of throwing.
// Each metric name is declared in exactly one module.
import type { Registry } from 'prom-client';

/**
 * `create` made once per registry: the returned function gives the metrics
 * `create(registry, ...args)` built on the first call for that registry, and
 * the same object on every later call (the arguments of the first call win:
 * e.g. the device cap of peripety_device_errors_total). A registry that is
 * dropped takes its metrics with it (WeakMap).
 */
export function perRegistry<M, A extends unknown[] = []>(create: (registry: Registry, ...args: A) => M): (registry: Registry, ...args: A) => M {
  const cache = new WeakMap<Registry, M>();
  return (registry, ...args) => {
    let m = cache.get(registry);
    if (m === undefined) {
      m = create(registry, ...args);
      cache.set(registry, m);
    }
    return m;
  };
}
