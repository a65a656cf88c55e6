// An Ack for tests that hand one hold to a receiver, a storage manager or a
// backend worker: `settled` runs each time the hold ends, with true when it
// ended as lost (Ack.lost). Receivers and the storage path never retain the
// ack they were given, so retain does nothing.
import type { Ack } from '../../src/contracts/ack.ts';

export function onAck(settled: (lost: boolean) => void): Ack {
  return { retain() {}, release: () => settled(false), lost: () => settled(true) };
}
