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
// - One state per registry (src/metrics/per-registry.ts): a reload builds a
//   new receiver on the same registry and keeps the counts and the device
//   slots.
// The receiver that feeds it from the bus is src/receivers/device-errors.ts.
import { Counter, type Registry } from 'prom-client';
import { perRegistry } from './per-registry.ts';
import type { StorageEvent } from '../events/schema.ts';

export const DEFAULT_DEVICE_CAP = 256;
export const OTHER_DEVICE = 'other';

interface Tally {
  device: string;
  system: string;
  n: number;
}

/** The device-error metrics of a registry and the state they fold at scrape time, declared once (src/metrics/per-registry.ts). */
const deviceErrorMetrics = perRegistry((registry: Registry, cap: number) => {
  const registers = [registry];
  /** device → system → tally */
  const tallies = new Map<string, Map<string, Tally>>();
  const cappedTally = { n: 0 };
  return {
    cap,
    tallies,
    cappedTally,
    /** distinct devices with their own label */
    devices: { n: 0 },
    counter: new Counter({
      name: 'peripety_device_errors_total',
      help: `Storage events of severity error per device (at most ${cap} devices; beyond that device="other")`,
      labelNames: ['device', 'system'],
      registers,
      collect() {
        for (const bySystem of tallies.values()) {
          for (const t of bySystem.values()) {
            if (t.n > 0) this.labels(t.device, t.system).inc(t.n);
            t.n = 0;
          }
        }
      },
    }),
    capped: new Counter({
      name: 'peripety_device_errors_capped_total',
      help: 'Device error events counted under device="other" because the device cap was reached',
      registers,
      collect() {
        if (cappedTally.n > 0) this.inc(cappedTally.n);
        cappedTally.n = 0;
      },
    }),
  };
});

/** Counting device errors into a registry's set; two instances on one registry share counts and device slots (the cap of the first wins). */
export class DeviceErrors {
  readonly cap: number;
  readonly counter: Counter<'device' | 'system'>;
  readonly capped: Counter;
  private readonly m: ReturnType<typeof deviceErrorMetrics>;

  constructor(registry: Registry, cap = DEFAULT_DEVICE_CAP) {
    this.m = deviceErrorMetrics(registry, cap);
    this.cap = this.m.cap;
    this.counter = this.m.counter;
    this.capped = this.m.capped;
  }

  /** Distinct devices with their own label. */
  get deviceCount(): number {
    return this.m.devices.n;
  }

  /** Count one event (no-op unless severity error and a device is named). */
  observe(ev: StorageEvent): void {
    if (ev.severity !== 'error') return;
    const dev = ev.dev_name || ev.dev_wwid;
    if (!dev) return;
    const tallies = this.m.tallies;
    let bySystem = tallies.get(dev);
    if (!bySystem) {
      if (this.m.devices.n >= this.cap) {
        this.m.cappedTally.n++;
        bySystem = tallies.get(OTHER_DEVICE);
        if (!bySystem) {
          bySystem = new Map();
          tallies.set(OTHER_DEVICE, bySystem);
        }
        this.bump(bySystem, OTHER_DEVICE, ev.system);
        return;
      }
      bySystem = new Map();
      tallies.set(dev, bySystem);
      this.m.devices.n++;
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

/** The DeviceErrors of a registry (created on first use; the cap of the first call wins). */
export const deviceErrors = perRegistry((registry: Registry, cap: number = DEFAULT_DEVICE_CAP) => new DeviceErrors(registry, cap));
