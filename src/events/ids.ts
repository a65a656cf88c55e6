// Event ids (EVENTS.md §1): name-based UUID v5 for kmsg records, so that a
// record read again after a crash gets the same id and consumers can drop the
// duplicate; random v4 for sources without a sequence number.
import { createHash, randomUUID } from 'node:crypto';

/** The namespace of peripety's kmsg record ids (a fixed random UUID). */
const KMSG_NAMESPACE = Buffer.from('6f1c2b7e4a3d4e0b9c5f8a1d2e3b4c5d', 'hex');

function format(b: Buffer): string {
  const h = b.toString('hex', 0, 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** UUID v5 (RFC 9562 §5.5) of `name` in the peripety kmsg namespace. */
export function uuidV5(name: string): string {
  const hash = createHash('sha1').update(KMSG_NAMESPACE).update(name).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  return format(hash);
}

/** The id of kernel record `seq` of boot `bootId`. */
export function kmsgEventId(bootId: string, seq: number): string {
  return uuidV5(`${bootId}/${seq}`);
}

export function randomEventId(): string {
  return randomUUID();
}
