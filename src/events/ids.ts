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

// The views of the scratch buffer's first `len` bytes, made once per length:
// a subarray per event was a Buffer object allocated per event.
const views: Buffer[] = [];

// The UUID text is written into its own small buffer and read out once: one
// flat string per id instead of the hex digest, five slices of it and the
// joins between them (a fifth of the synthesizer's allocations).
const uuidText = Buffer.alloc(36);
uuidText[8] = uuidText[13] = uuidText[18] = uuidText[23] = 45; // '-'
/** where the hex digits of byte i go in the UUID text */
const UUID_POS = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const HEX_DIGIT = Buffer.from(HEX, 'latin1');

function digestToUuid(len: number): string {
  // the digest's bytes as the char codes of a latin1 string (no Buffer object per call)
  const d = hash('sha1', views[len] ??= scratch.subarray(0, len), 'binary');
  for (let i = 0; i < 16; i++) {
    let b = d.charCodeAt(i);
    // version 5 in the high nibble of byte 6; variant 10xx in the high bits of byte 8
    if (i === 6) b = (b & 0x0f) | 0x50;
    else if (i === 8) b = (b & 0x3f) | 0x80;
    const o = UUID_POS[i]!;
    uuidText[o] = HEX_DIGIT[b >> 4]!;
    uuidText[o + 1] = HEX_DIGIT[b & 15]!;
  }
  return uuidText.toString('latin1', 0, 36);
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
