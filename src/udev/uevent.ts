// The two wire formats of NETLINK_KOBJECT_UEVENT datagrams, parsed without
// I/O and without throwing: the bytes come from a socket, and anything may be
// in them.
//
// Kernel (group 1), lib/kobject_uevent.c:
//   "ACTION@DEVPATH\0" then "KEY=VALUE\0" for every variable, ACTION,
//   DEVPATH, SUBSYSTEM and SEQNUM among them.
// udevd (group 2), the libudev monitor format:
//   offset  0  "libudev\0"
//           8  magic 0xfeedcafe, network byte order
//          12  header_size      (sender's byte order: the host's)
//          16  properties_off   (host order)
//          20  properties_len   (host order)
//          24  filter_subsystem_hash, 28 filter_devtype_hash,
//          32  filter_tag_bloom_hi, 36 filter_tag_bloom_lo (network order)
//   then "KEY=VALUE\0" properties at properties_off, properties_len bytes.
import os from 'node:os';

type UeventSource = 'kernel' | 'udev';

export interface Uevent {
  action: string;
  devpath: string;
  subsystem: string;
  /** decimal SEQNUM as the kernel wrote it; "" when a udev message has none */
  seqnum: string;
  /** every property, ACTION/DEVPATH/SUBSYSTEM/SEQNUM included; a repeated key keeps its last value */
  props: Record<string, string>;
  source: UeventSource;
}

interface LibudevHeader {
  magic: number;
  headerSize: number;
  propertiesOff: number;
  propertiesLen: number;
  subsystemHash: number;
  devtypeHash: number;
  tagBloomHi: number;
  tagBloomLo: number;
}

type UeventRejection =
  | 'empty'
  | 'too_large'
  | 'bad_header'
  | 'bad_magic'
  | 'bad_offsets'
  | 'bad_property'
  | 'too_many_properties'
  | 'property_too_long'
  | 'missing_property'
  | 'header_mismatch'
  | 'bad_seqnum';

export type ParseResult =
  | { ok: true; uevent: Uevent; header?: LibudevHeader }
  | { ok: false; reason: UeventRejection; detail: string };

/** Bounds: far above what kernels and udevd send (tens of properties, a few KiB). */
export const LIMITS = {
  /** a datagram; the kernel caps its own at 2 KiB of variables, udevd at a few KiB */
  maxMessage: 64 * 1024,
  maxProperties: 512,
  maxKeyBytes: 128,
  maxValueBytes: 16 * 1024,
} as const;

export const UDEV_MAGIC = 0xfeedcafe;
const LIBUDEV_PREFIX = 'libudev\0';
/** sizeof(struct udev_monitor_netlink_header) */
const LIBUDEV_HEADER_SIZE = 40;

/** Property keys are environment variable names; `.` leads udev's private ones. */
const KEY = /^[A-Za-z0-9_.][A-Za-z0-9_.:+-]*$/;
const SEQNUM = /^(0|[1-9][0-9]{0,19})$/;
const PREFIX = Buffer.from(LIBUDEV_PREFIX, 'latin1');

const HOST_LE = os.endianness() === 'LE';

interface ParseOptions {
  /** byte order of the libudev header's size fields: the sender's, i.e. this host's (default) */
  littleEndian?: boolean;
}

function reject(reason: UeventRejection, detail: string): ParseResult {
  return { ok: false, reason, detail };
}

/** Parse one datagram of either format; never throws. */
export function parseUevent(buf: Uint8Array, opts: ParseOptions = {}): ParseResult {
  try {
    if (!(buf instanceof Uint8Array) || buf.length === 0) return reject('empty', 'no bytes');
    if (buf.length > LIMITS.maxMessage) return reject('too_large', `${buf.length} bytes`);
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
    if (b.length >= PREFIX.length && b.subarray(0, PREFIX.length).equals(PREFIX)) return parseLibudev(b, opts.littleEndian ?? HOST_LE);
    return parseKernel(b);
  } catch (err) {
    // a bug, not input: still never throw to the reader loop
    return reject('bad_header', `parser error: ${(err as Error).message}`);
  }
}

function parseKernel(b: Buffer): ParseResult {
  const nul = b.indexOf(0);
  const headerEnd = nul < 0 ? b.length : nul;
  const at = b.indexOf(0x40 /* @ */);
  if (at <= 0 || at >= headerEnd - 1) return reject('bad_header', 'no ACTION@DEVPATH header');
  const action = b.toString('utf8', 0, at);
  const devpath = b.toString('utf8', at + 1, headerEnd);
  if (!isWord(action)) return reject('bad_header', 'the header action is not a word');
  if (devpath[0] !== '/') return reject('bad_header', 'the header devpath is not absolute');
  if (nul < 0) return reject('missing_property', 'no properties after the header');
  const props = parseProperties(b, nul + 1, b.length);
  if (typeof props === 'string') return reject(propReason(props), props);
  const r = finish(props, 'kernel', true);
  if (!r.ok) return r;
  if (r.uevent.action !== action || r.uevent.devpath !== devpath) return reject('header_mismatch', 'the header and ACTION/DEVPATH disagree');
  return r;
}

function parseLibudev(b: Buffer, le: boolean): ParseResult {
  if (b.length < LIBUDEV_HEADER_SIZE) return reject('bad_header', `${b.length} bytes: shorter than the libudev header`);
  const u32 = (off: number) => (le ? b.readUInt32LE(off) : b.readUInt32BE(off));
  const header: LibudevHeader = {
    magic: b.readUInt32BE(8),
    headerSize: u32(12),
    propertiesOff: u32(16),
    propertiesLen: u32(20),
    subsystemHash: b.readUInt32BE(24),
    devtypeHash: b.readUInt32BE(28),
    tagBloomHi: b.readUInt32BE(32),
    tagBloomLo: b.readUInt32BE(36),
  };
  if (header.magic !== UDEV_MAGIC) return reject('bad_magic', `magic 0x${header.magic.toString(16)}`);
  const { headerSize, propertiesOff: off, propertiesLen: len } = header;
  // A newer udevd may send a longer header; the properties still follow it.
  if (headerSize < LIBUDEV_HEADER_SIZE || headerSize > b.length) return reject('bad_offsets', `header_size ${headerSize}`);
  if (off < headerSize || off > b.length) return reject('bad_offsets', `properties_off ${off}`);
  if (len === 0 || len > b.length - off) return reject('bad_offsets', `properties_len ${len} at ${off} in ${b.length} bytes`);
  const props = parseProperties(b, off, off + len);
  if (typeof props === 'string') return reject(propReason(props), props);
  const r = finish(props, 'udev', false);
  return r.ok ? { ...r, header } : r;
}

type PropError = `${'bad_property' | 'too_many_properties' | 'property_too_long'}: ${string}`;

function propReason(e: PropError): UeventRejection {
  return e.slice(0, e.indexOf(':')) as UeventRejection;
}

/** NUL-separated KEY=VALUE in b[start, end); a final NUL is optional. */
function parseProperties(b: Buffer, start: number, end: number): Map<string, string> | PropError {
  const props = new Map<string, string>();
  let count = 0;
  let pos = start;
  while (pos < end) {
    let stop = b.indexOf(0, pos);
    if (stop < 0 || stop > end) stop = end;
    if (stop === pos) {
      // empty entries only as padding after the last property
      for (let i = pos; i < end; i++) if (b[i] !== 0) return 'bad_property: an empty entry between properties';
      break;
    }
    if (++count > LIMITS.maxProperties) return `too_many_properties: more than ${LIMITS.maxProperties}`;
    const eq = b.indexOf(0x3d /* = */, pos);
    if (eq < 0 || eq >= stop || eq === pos) return `bad_property: entry ${count} is not KEY=VALUE`;
    if (eq - pos > LIMITS.maxKeyBytes) return `property_too_long: key of entry ${count} has ${eq - pos} bytes`;
    if (stop - eq - 1 > LIMITS.maxValueBytes) return `property_too_long: value of entry ${count} has ${stop - eq - 1} bytes`;
    const key = b.toString('latin1', pos, eq);
    if (!KEY.test(key)) return `bad_property: entry ${count} has an invalid key`;
    props.set(key, b.toString('utf8', eq + 1, stop));
    pos = stop + 1;
  }
  return props;
}

function isWord(s: string): boolean {
  return /^[a-z][a-z_]{0,31}$/.test(s);
}

function finish(props: Map<string, string>, source: UeventSource, seqnumRequired: boolean): ParseResult {
  const action = props.get('ACTION');
  const devpath = props.get('DEVPATH');
  const subsystem = props.get('SUBSYSTEM');
  const seqnum = props.get('SEQNUM');
  if (action === undefined || devpath === undefined || subsystem === undefined) {
    return reject('missing_property', `no ${action === undefined ? 'ACTION' : devpath === undefined ? 'DEVPATH' : 'SUBSYSTEM'}`);
  }
  if (seqnum === undefined && seqnumRequired) return reject('missing_property', 'no SEQNUM');
  if (!isWord(action)) return reject('bad_property', 'ACTION is not a word');
  if (devpath[0] !== '/' || devpath.includes('\0')) return reject('bad_property', 'DEVPATH is not absolute');
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(subsystem)) return reject('bad_property', 'SUBSYSTEM is not a name');
  if (seqnum !== undefined && !SEQNUM.test(seqnum)) return reject('bad_seqnum', 'SEQNUM is not a decimal number');
  return {
    ok: true,
    uevent: { action, devpath, subsystem, seqnum: seqnum ?? '', props: Object.fromEntries(props), source },
  };
}

// ---------------------------------------------------------------------------
// Encoders: what the kernel and udevd put on the wire, for tests and for
// playing udevd on a machine without one.

/** The kernel format of `props` (ACTION and DEVPATH must be among them). */
export function encodeKernelUevent(props: Record<string, string>): Buffer {
  const parts = [`${props.ACTION ?? ''}@${props.DEVPATH ?? ''}`, ...Object.entries(props).map(([k, v]) => `${k}=${v}`)];
  return Buffer.from(parts.map((p) => `${p}\0`).join(''), 'utf8');
}

/** The libudev monitor format of `props`, header in this host's byte order unless told. */
export function encodeLibudevUevent(props: Record<string, string>, opts: ParseOptions = {}): Buffer {
  const le = opts.littleEndian ?? HOST_LE;
  const body = Buffer.from(Object.entries(props).map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
  const h = Buffer.alloc(LIBUDEV_HEADER_SIZE);
  PREFIX.copy(h, 0);
  h.writeUInt32BE(UDEV_MAGIC, 8);
  const w = (v: number, off: number) => (le ? h.writeUInt32LE(v, off) : h.writeUInt32BE(v, off));
  w(LIBUDEV_HEADER_SIZE, 12);
  w(LIBUDEV_HEADER_SIZE, 16);
  w(body.length, 20);
  // The filter hashes only serve in-kernel socket filters; nothing here checks them.
  return Buffer.concat([h, body]);
}
