// Metrics created once per registry. prom-client refuses a second metric of
// the same name in one registry, and the agent keeps its registry across
// configuration reloads: a reload builds new collectors, receivers, senders
// and storage managers while the old ones still drain, on the same registry.
// So each module creates its set of metrics on first use and shares it.
import type { Registry } from 'prom-client';

/**
 * `create` made once per registry: the returned function gives the metrics
 * `create(registry)` built on the first call for that registry, and the same
 * object on every later call. A registry that is dropped takes its metrics
 * with it (WeakMap).
 */
export function perRegistry<M>(create: (registry: Registry) => M): (registry: Registry) => M {
  const cache = new WeakMap<Registry, M>();
  return (registry) => {
    let m = cache.get(registry);
    if (m === undefined) {
      m = create(registry);
      cache.set(registry, m);
    }
    return m;
  };
}
