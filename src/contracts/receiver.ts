// What the pipeline needs of a receiver (the bus's receivers, the storage
// manager, the control API's event stream): a non-blocking hand-over.
import type { StorageEvent } from '../events/schema.ts';

export interface ReceiverSink {
  readonly name: string;
  /**
   * Take the event; call `done` when it is written or given up (`lost`: given
   * up by a holder that must not lose it, see Ticket.lost). False: dropped now
   * (queue full), `done` will not be called.
   */
  deliver(ev: StorageEvent, done: (lost?: boolean) => void): boolean;
}
