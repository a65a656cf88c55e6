// What the pipeline needs of a receiver (the bus's receivers, the storage
// manager, the control API's event stream): a non-blocking hand-over.
import type { StorageEvent } from '../events/schema.ts';
import type { Ack } from './ack.ts';

export interface ReceiverSink {
  readonly name: string;
  /**
   * Take the event, with one hold on its record's `ack` that the caller
   * retained for this receiver: release it once when the event is
   * acknowledged by this receiver's rule (docs/architecture.md
   * "Acknowledgement") or dropped and counted (`lost()` instead: given up by
   * a holder that must not lose it, see Ack.lost). False: dropped now (queue
   * full); the receiver does not touch `ack` and the caller releases the hold.
   */
  deliver(ev: StorageEvent, ack: Ack): boolean;
}
