// The built-in receiver behind peripety_device_errors_total: the counting
// itself (and its decisions) is src/metrics/device-errors.ts.
import type { StorageEvent } from '../events/schema.ts';
import { DEFAULT_DEVICE_CAP, type DeviceErrors, deviceErrors } from '../metrics/device-errors.ts';
import { QueuedReceiver, type ReceiverDeps } from './queued.ts';

/**
 * A built-in receiver that feeds DeviceErrors: the bus delivers to receivers
 * only, so the metric rides on a QueuedReceiver whose write is a loop of
 * Map lookups (never blocks, never fails). Acknowledged: counted in the
 * metric.
 */
export class DeviceErrorsReceiver extends QueuedReceiver {
  private readonly errors: DeviceErrors;

  constructor(name: string, capacity: number, deps: ReceiverDeps, cap = DEFAULT_DEVICE_CAP) {
    super(name, capacity, deps, 4096);
    this.errors = deviceErrors(deps.metrics.registry, cap);
  }

  protected write(batch: StorageEvent[]): Promise<void> {
    for (const ev of batch) this.errors.observe(ev);
    return Promise.resolve();
  }
}
