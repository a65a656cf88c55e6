// peripety_device_errors_total{device,system} (docs/architecture.md
// "Components", metrics; docs/receivers.md "Device errors metric"): storage events of severity `error` per device, with a cap on
// distinct devices so a host with thousands of paths (or a flapping device
// naming scheme) cannot blow up the series count.
//
// Decisions:
// - Only severity `error` counts: `warn` events (path flaps, retries) are in
//   peripety_events_total{severity="warn"}; this series answers "which
//   device is failing".
// - The device label is dev_name, else dev_wwid; events with neither are not
//   device errors and are not counted here.
// - The first `cap` distinct devices (default 256) get their own label; later
//   ones are counted under device="other", and
//   peripety_device_errors_capped_total counts those events. Devices seen
//   keep their slot for the life of the process (no churn of series).
// - The hot path is a Map lookup and `n++` on a tally; prom-client's labelled
//   inc() (which hashes labels) runs only at scrape time.
// - One state per registry: a reload builds a new receiver on the same
//   registry and keeps the counts and the device slots.
// The receiver that feeds it from the bus is src/receivers/device-errors.ts.
import { Counter, type Registry } from 'prom-client';
import type { StorageEvent } from '../events/schema.ts';

export const DEFAULT_DEVICE_CAP = 256;
export const OTHER_DEVICE = 'other';

interface Tally {
  device: string;
  system: string;
  n: number;
}

export class DeviceErrors {
  readonly cap: number;
  readonly counter: Counter<'device' | 'system'>;
  readonly capped: Counter;
  /** device → system → tally */
  private readonly tallies = new Map<string, Map<string, Tally>>();
  private devices = 0;
  private readonly cappedTally = { n: 0 };

  constructor(registry: Registry, cap = DEFAULT_DEVICE_CAP) {
    this.cap = cap;
    const tallies = this.tallies;
    const cappedTally = this.cappedTally;
    this.counter = new Counter({
      name: 'peripety_device_errors_total',
      help: `Storage events of severity error per device (at most ${cap} devices; beyond that device="other")`,
      labelNames: ['device', 'system'],
      registers: [registry],
      collect() {
        for (const bySystem of tallies.values()) {
          for (const t of bySystem.values()) {
            if (t.n > 0) this.labels(t.device, t.system).inc(t.n);
            t.n = 0;
          }
        }
      },
    });
    this.capped = new Counter({
      name: 'peripety_device_errors_capped_total',
      help: 'Device error events counted under device="other" because the device cap was reached',
      registers: [registry],
      collect() {
        if (cappedTally.n > 0) this.inc(cappedTally.n);
        cappedTally.n = 0;
      },
    });
  }

  /** Distinct devices with their own label. */
  get deviceCount(): number {
    return this.devices;
  }

  /** Count one event (no-op unless severity error and a device is named). */
  observe(ev: StorageEvent): void {
    if (ev.severity !== 'error') return;
    const dev = ev.dev_name || ev.dev_wwid;
    if (!dev) return;
    let bySystem = this.tallies.get(dev);
    if (!bySystem) {
      if (this.devices >= this.cap) {
        this.cappedTally.n++;
        bySystem = this.tallies.get(OTHER_DEVICE);
        if (!bySystem) {
          bySystem = new Map();
          this.tallies.set(OTHER_DEVICE, bySystem);
        }
        this.bump(bySystem, OTHER_DEVICE, ev.system);
        return;
      }
      bySystem = new Map();
      this.tallies.set(dev, bySystem);
      this.devices++;
    }
    this.bump(bySystem, dev, ev.system);
  }

  private bump(bySystem: Map<string, Tally>, device: string, system: string): void {
    let t = bySystem.get(system);
    if (!t) {
      t = { device, system, n: 0 };
      bySystem.set(system, t);
    }
    t.n++;
  }
}

const byRegistry = new WeakMap<Registry, DeviceErrors>();

/** The DeviceErrors of a registry (created on first use; the cap of the first call wins). */
export function deviceErrors(registry: Registry, cap = DEFAULT_DEVICE_CAP): DeviceErrors {
  let d = byRegistry.get(registry);
  if (!d) {
    d = new DeviceErrors(registry, cap);
    byRegistry.set(registry, d);
  }
  return d;
}
