// The acknowledgement of one kernel record: the one word the pipeline uses
// for "done with it" (docs/architecture.md "Acknowledgement"). It follows
// the record from the collector through the bus to every receiver and
// storage backend: whoever holds something made from the record retains the
// ack, and releases it once that is acknowledged by the holder's own rule
// (written to the pipe, committed, aggregated in memory… the table in
// docs/architecture.md) or dropped and counted. When the last holder
// released, the record is fully processed and the collector may move its
// saved read position past it (docs/kmsg.md).
export interface Ack {
  /** One more holder. */
  retain(): void;
  /** A holder is done with the record: acknowledged, or dropped and counted. */
  release(): void;
  /**
   * Release, reporting that this holder gave the record's event up although
   * it must not lose it (a storage backend that keeps events, disk full):
   * the saved read position then stays before the record, so the next start
   * reads it again while the kernel still holds it. Holders that may drop
   * events (the receivers but the storage manager, the memory backend) only
   * ever release.
   */
  lost(): void;
}

/** For records nobody tracks (udev uevents, offline parsing, `peripety receive`): every call does nothing. */
export const NO_ACK: Ack = { retain() {}, release() {}, lost() {} };
