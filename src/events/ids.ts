// Event ids (docs/events.md §1): name-based UUID v5 for kmsg records, so that a
// record read again after a crash gets the same id and consumers can drop the
// duplicate; random v4 for sources without a sequence number.
import { hash, randomUUID } from 'node:crypto';

/** The namespace of peripety's kmsg record ids (a fixed random UUID). */
const KMSG_NAMESPACE = Buffer.from('6f1c2b7e4a3d4e0b9c5f8a1d2e3b4c5d', 'hex');

// One scratch buffer: the namespace stays in its first 16 bytes, the name is
// written after it. crypto.hash() is one-shot: no Hash object per event (the
// benchmark spent 14% of its time in createHash/update/digest).
const MAX_NAME = 1024;
const scratch = Buffer.alloc(16 + MAX_NAME * 3);
KMSG_NAMESPACE.copy(scratch, 0);
const HEX = '0123456789abcdef';

/** UUID v5 (RFC 9562 §5.5) of `name` in the peripety kmsg namespace. */
export function uuidV5(name: string): string {
  prefixOf = null; // the scratch bytes after the namespace are no longer a boot id prefix
  const n = scratch.write(name.length > MAX_NAME ? name.slice(0, MAX_NAME) : name, 16, 'utf8');
  return digestToUuid(16 + n);
}

function digestToUuid(len: number): string {
  const h = hash('sha1', scratch.subarray(0, len), 'hex');
  // version 5 in the high nibble of byte 6; variant 10xx in the high bits of byte 8
  const variant = HEX[(parseInt(h[16]!, 16) & 0x3) | 0x8]!;
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** the boot id whose `<boot id>/` is in the scratch buffer after the namespace, and its length */
let prefixOf: string | null = null;
let prefixLen = 0;

/** The id of kernel record `seq` of boot `bootId`: uuidV5(`${bootId}/${seq}`), without re-encoding the boot id each time. */
export function kmsgEventId(bootId: string, seq: number): string {
  if (bootId !== prefixOf) {
    if (bootId.length > 128) return uuidV5(`${bootId}/${seq}`);
    prefixLen = scratch.write(`${bootId}/`, 16, 'utf8');
    prefixOf = bootId;
  }
  const n = scratch.write(String(seq), 16 + prefixLen, 'latin1');
  return digestToUuid(16 + prefixLen + n);
}

export function randomEventId(): string {
  return randomUUID();
}
