// The SCSI midlayer and sd (drivers/scsi: scsi_logging.c, scsi_lib.c,
// scsi_error.c, sd.c) and libata (drivers/ata/libata-eh.c, libata-core.c),
// whose `ataN` messages are system `scsi` too.
//
// SCSI formats. dev_printk() on the scsi_device gives `<driver> H:C:T:L: `;
// sd_printk()/scmd_printk()/scsi_logging add `[<disk>] ` and, for a command
// (≥ 4.0), `tag#<n> `:
//   `sd 2:0:0:0: [sdb] tag#0 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s` (≥ 5.4 cmd_age)
//   `sd 2:0:0:0: [sdb] FAILED Result: hostbyte=DID_BAD_TARGET driverbyte=DRIVER_OK` (4.x)
//   `sd 2:0:0:0: [sdb] Unhandled error code` / `Unhandled sense code`, then
//   `sd 2:0:0:0: [sdb]  Result: hostbyte=DID_OK driverbyte=DRIVER_SENSE` (≤ 3.x, two spaces)
//   `sd 2:0:0:0: [sdb] Read Capacity(16) failed: Result: hostbyte=0x00 driverbyte=0x08` (sd_print_result)
//   `sd 2:0:0:0: [sdb] tag#0 Sense Key : Medium Error [current] ` (trailing space; `[descriptor] ` may follow;
//     ≤ 3.x `[sdb]  Sense Key : …` with two spaces; without CONFIG_SCSI_CONSTANTS `Sense Key : 0x3 [current] `)
//   `sd 2:0:0:0: [sdb] tag#0 Add. Sense: Unrecovered read error - auto reallocate failed`
//     (an unknown code: `ASC=0x11 ASCQ=0x4 `, `<<vendor>>ASC=0x80 ASCQ=0x1 `)
//   `sd 2:0:0:0: [sdb] tag#0 CDB: Read(10) 28 00 00 00 08 00 00 00 08 00` (≤ 3.x `CDB: Read(10): 28 00 …`;
//     CDBs longer than 16 bytes: `CDB: Variable length` then `CDB[00]: …` lines)
//   `sd 2:0:0:0: rejecting I/O to offline device` · `… rejecting I/O to dead device`
//   `sd 2:0:0:0: Device offlined - not ready after error recovery`
//   `sd 2:0:0:0: [sdb] Medium access timeout failure. Offlining disk!`
//   `sd 3:0:0:0: timing out command, waited 180s` (≥ 4.x with `[sdb] tag#N `)
//   `sd 0:0:0:0: [sda] Attached SCSI disk` · `Attached SCSI removable disk` · `sr 1:0:0:0: Attached scsi CD-ROM sr0`
//   `sd 0:0:0:0: [sda] READ CAPACITY failed` (2.6.19–3.x, `READ CAPACITY(16) failed`; its `[sda]  Result: …` line follows)
//   `sd 0:0:0:0: [sda] Synchronizing SCSI cache` · `[sdb] Spinning up disk...` (dots and `ready` appended)
//   `sd 2:0:0:0: [sdb] tag#0 Unaligned partial completion (resid=512, sector_sz=4096)`
// 2.6.1x–2.6.2x (RHEL 5) forms: `sd 0:0:0:0: SCSI error: return code = 0x08000002` (the
// result word: driver, host, message and status bytes), then from __scsi_print_sense()
// `sda: Current: sense key: Medium Error` (`<<DEFERRED>>`, ` [descriptor]`; without
// CONFIG_SCSI_CONSTANTS `sense key=0x3`) and the indented `    Additional sense: …` or
// `    ASC=0x42 ASCQ=0x0`, which name no device; `sd 0:0:0:0: Attached scsi disk sda`;
// `sd 0:0:0:0: Device not ready: <6>: Current: sense key: Not Ready` (the sense header inline);
// `sd 0:0:0:0: scsi: Device offlined - not ready after error recovery` (2.6.18). 2.5–2.6.1x sd.c
// printed the disk name alone: `Attached scsi [removable ]disk sda at scsi1, channel 0, id 6, lun 0`
// (sr: `Attached scsi CD-ROM sr0 at scsi0, …`), `sda : READ CAPACITY failed.` (its `sda : status=0,
// message=00, host=1, driver=00` line carries no event). Older (2.6.9,
// RHEL 4) lines print the address in words: `SCSI error : <0 0 0 0> return code = 0x8000002`,
// `scsi: Device offlined - not ready after error recovery: host 0 channel 0 id 0 lun 0`.
// 2.6.3x–3.x scsi_io_completion() says why it failed a command before the result: `[sdb] Unhandled
// sense code`, `Unhandled error code`, `Device not ready`, `Media Changed`, `Discard failure`,
// `Host Data Integrity Failure`, `Target Data Integrity Failure` (error: the I/O failed).
// In 3.x kernels whose printk split a message at each printk() without KERN_CONT, the
// `Sense Key : …`, `Add. Sense: …` and `ASC=…` parts arrive as records of their own after a
// bare `sd 0:0:2:0: [sdc]` record. A sense part without its device prefix is its own event
// without a device: it cannot say which command it belongs to.
// A failed command prints its result, sense key, additional sense and CDB in
// that order. The failure findings are held under `scsi:H:C:T:L[:tagN]`; each
// next one of the same command replaces (and so emits) the one before, and the
// `CDB:` line is context for whichever is held (a lone CDB line is no event).
//
// libata formats (`ataN:` a port/link, `ataN.DD:` a device; PMP links print
// as `ataN.PP:` too):
//   `ata1.00: exception Emask 0x0 SAct 0x0 SErr 0x0 action 0x0` (` frozen`, ` t4` may follow)
//   `ata1.00: irq_stat 0x40000008` · `ata1: SError: { PHYRdyChg CommWake }`
//   `ata1.00: failed command: READ FPDMA QUEUED`
//   `ata1.00: cmd 60/08:00:00:08:00/00:00:00:00:00/40 tag 0 ncq dma 4096 in` and, in the same
//     printk after an embedded newline (one /dev/kmsg record, two dmesg lines),
//     `         res 41/40:00:00:08:00/00:00:00:00:00/40 Emask 0x409 (media error) <F>`
//   `ata1.00: status: { DRDY ERR }` · `ata1.00: error: { UNC }`
//   `ata1.00: configured for UDMA/133` · `ata1: EH complete`
//   `ata1: SATA link down (SStatus 0 SControl 300)` · `ata1: SATA link up 6.0 Gbps (SStatus 133 SControl 300)`
//   `ata1: hard resetting link` · `ata1: soft resetting link` · `ata1: COMRESET failed (errno=-16)`
//   `ata1: reset failed (errno=-5), retrying in 8 secs` · `ata1: reset failed, giving up`
//   `ata1.00: revalidation failed (errno=-5)` · `ata1.00: disable device` (≤ 6.1 `disabled`)
//   `ata1: device not ready (errno=-16), forcing hardreset` · `ata1: SRST failed (errno=-16)` (2.6.2x)
//   `ata1: hard resetting port` · `ata1: soft resetting port` (2.6.19-2.6.21)
//   ≤ 2.6.17 (before the new EH): `ata1: command 0x35 timeout, stat 0x51 host_stat 0x60`,
//   `ata2: no sense translation for op=0x2a cmd=0x3d status: 0x51` (`… for status: 0x51`), then
//   `ata2: status=0x51 { DriveReady SeekComplete Error }`, `ata2: error=0x04 { DriveStatusError }`,
//   `ata1: translated ATA stat/err 0x51/04 to SCSI SK/ASC/ASCQ 0xb/00/00`
// One ATA_ERROR per exception: the exception line is held under `ata:ataN`
// (the port: the link-level SError and EH lines and the device-level lines of
// one error handler run share it) and the lines after it are context. The
// `failed command:`, `error:` and `revalidation failed` lines carry an orphan
// ATA_ERROR for when the exception line was lost. A failed reset (SRST, COMRESET,
// softreset/hardreset, `reset failed`) is ATA_RESET_FAILED, a disabled device
// ATA_DEVICE_DISABLED.
import type { Severity } from '../events/schema.ts';
import { suppressedFinding, trimLineEnd } from './common.ts';
import type { ClassifiedRecord, Context, DeviceRef, Finding, Parser, ParseResult } from '../contracts/parser.ts';

const MAX_LEN = 2048;

// ---------------------------------------------------------------- SCSI ----

interface ScsiHead {
  hctl: string;
  /** the disk name in `[sdb]` */
  name?: string;
  /** the request tag in `tag#N` */
  tag?: string;
  /** the message after the prefix */
  rest: string;
}

const DISK_NAME = /^[A-Za-z0-9_.!+-]{1,32}$/;
/** a block device's kernel name, as the 2.6 forms print it after the text */
const KERNEL_NAME = /^[a-z][a-z0-9_!-]{0,31}$/;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** `<driver> H:C:T:L: [<disk>] tag#<n> ` → its parts; null for anything else. */
function scsiHead(m: string): ScsiHead | null {
  const sp = m.indexOf(' ');
  if (sp <= 0 || sp > 16) return null;
  let i = sp + 1;
  const start = i;
  for (let part = 0; part < 4; part++) {
    const d0 = i;
    while (i - d0 < 10 && isDigit(m.charCodeAt(i))) i++;
    if (i === d0) return null;
    if (part < 3) {
      if (m.charCodeAt(i) !== 58 /* : */) return null;
      i++;
    }
  }
  if (m.charCodeAt(i) !== 58 /* : */) return null;
  const hctl = m.slice(start, i);
  i++;
  if (i < m.length && m.charCodeAt(i) !== 32) return null;
  i++;
  const head: ScsiHead = { hctl, rest: '' };
  if (m.charCodeAt(i) === 91 /* [ */) {
    const close = m.indexOf(']', i + 1);
    if (close < 0 || close - i > 33) return null;
    const name = m.slice(i + 1, close);
    if (!DISK_NAME.test(name)) return null;
    head.name = name;
    i = close + 1;
    if (i < m.length && m.charCodeAt(i) !== 32) return null;
    i++;
  }
  if (m.startsWith('tag#', i)) {
    const d0 = i + 4;
    let j = d0;
    while (j - d0 < 10 && isDigit(m.charCodeAt(j))) j++;
    if (j > d0 && (j >= m.length || m.charCodeAt(j) === 32)) {
      head.tag = m.slice(d0, j);
      i = j + 1;
    }
  }
  while (m.charCodeAt(i) === 32) i++;
  head.rest = i < m.length ? m.slice(i) : '';
  return head;
}

function scsiDev(h: ScsiHead): DeviceRef {
  return h.name !== undefined ? { printed: h.name, name: h.name, hctl: h.hctl } : { printed: h.hctl, hctl: h.hctl };
}

/** The hold key of a command's failure findings, and of its `CDB:` context. */
function scsiKey(h: ScsiHead): string {
  return h.tag !== undefined ? `scsi:${h.hctl}:tag${h.tag}` : `scsi:${h.hctl}`;
}

function scsiExt(h: ScsiHead): Record<string, string> {
  const ext: Record<string, string> = { hctl: h.hctl };
  if (h.tag !== undefined) ext.tag = h.tag;
  return ext;
}

/**
 * A finding of the line's device. `h` is null for a sense line printed without
 * the `H:C:T:L:` prefix: then the device is `dev` (the disk an old sense line
 * names) or none (` on {dev}` left out of the sentence), and it is not held: no
 * later line can name its command.
 */
function scsiFinding(h: ScsiHead | null, type: Finding['type'], msg: string, ext: Record<string, string>, severity?: Severity, hold = false, dev?: DeviceRef): Finding {
  if (h === null) {
    const f: Finding = dev ? { type, device: dev, msg, ext } : { type, device: null, msg: msg.replace(' on {dev}', ''), ext };
    if (severity) f.severity = severity;
    return f;
  }
  const f: Finding = { type, device: scsiDev(h), msg, ext: withScsiExt(h, ext) };
  if (severity) f.severity = severity;
  if (hold) f.hold = scsiKey(h);
  return f;
}

/**
 * `{ ...scsiExt(h), ...ext }` without the intermediate object and the two
 * spreads (every SCSI finding, and a SCSI storm is nothing else): the same
 * keys in the same order, a key of both keeping its first place and the value
 * of `ext`. The keys are the parsers' own names.
 */
function withScsiExt(h: ScsiHead, ext: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { hctl: h.hctl };
  if (h.tag !== undefined) out.tag = h.tag;
  for (const k in ext) if (Object.hasOwn(ext, k)) out[k] = ext[k]!;
  return out;
}

const SENSE_KEYS = [
  'No Sense', 'Recovered Error', 'Not Ready', 'Medium Error', 'Hardware Error', 'Illegal Request',
  'Unit Attention', 'Data Protect', 'Blank Check', 'Vendor Specific', 'Copy Aborted', 'Aborted Command',
  'Equal', 'Volume Overflow', 'Miscompare', 'Completed',
];
const SENSE_KEY_TEXT = /^(?:[A-Z][A-Za-z ]{1,30}|0x[0-9a-fA-F]{1,2})$/;
const QUALIFIER = /^[a-z ]{1,20}$/;

function senseKey(h: ScsiHead | null, s: string, quals0?: string[], dev?: DeviceRef): Finding | null {
  const br = s.indexOf(' [');
  const key = (br >= 0 ? s.slice(0, br) : s).trimEnd();
  if (!SENSE_KEY_TEXT.test(key)) return null;
  let code = SENSE_KEYS.indexOf(key);
  if (key.startsWith('0x')) code = parseInt(key.slice(2), 16);
  const ext: Record<string, string> = { sense_key: code >= 0 && code < 16 ? SENSE_KEYS[code]! : key };
  if (code >= 0) ext.sense_key_code = `0x${code.toString(16)}`;
  // `[current] `, `[deferred] `, `[descriptor] ` (at most a few)
  let i = br;
  const quals: string[] = quals0 ?? [];
  while (i >= 0 && quals.length < 4) {
    const close = s.indexOf(']', i + 2);
    if (close < 0) break;
    const q = s.slice(i + 2, close);
    if (!QUALIFIER.test(q)) break;
    quals.push(q);
    i = s.indexOf(' [', close);
  }
  for (const q of quals) {
    if (q === 'descriptor') ext.sense_format = 'descriptor';
    else ext.sense_qualifier = q;
  }
  const shown = ext.sense_qualifier ? `${ext.sense_key} [${ext.sense_qualifier}]` : ext.sense_key!;
  if (code === 3) return scsiFinding(h, 'SCSI_MEDIUM_ERROR', `SCSI medium error on {dev}: ${shown}`, ext, 'error', true, dev);
  if (code === 4) return scsiFinding(h, 'SCSI_HARDWARE_ERROR', `SCSI hardware error on {dev}: ${shown}`, ext, 'error', true, dev);
  const severity: Severity | undefined = code === 7 || code === 11 ? 'warn' : undefined;
  return scsiFinding(h, 'SCSI_SENSE_KEY', `SCSI sense key on {dev}: ${shown}`, ext, severity, true, dev);
}

/** Additional sense codes of media and device faults: the line is an error whatever its level. */
const FAULT_ASC_TEXT = /^(?:Unrecovered read error|Write error|Read retries exhausted|Error too long to correct|L-EC uncorrectable error|Internal target failure|Logical unit failure|Id CRC or ECC error|Record not found|Mechanical positioning error|Random positioning error|Data sync(?:hronization)? mark error|Peripheral device write fault|Logical unit communication failure)/;
const FAULT_ASC = new Set([0x03, 0x0c, 0x11, 0x14, 0x15, 0x16, 0x44]);
// no end anchor: 2.6.1x prints `<<vendor>> ASC=0x80 ASCQ=0x1ASC=0x80 ASCQ=0x1` for a vendor ASC
const RAW_ASC = /^(?:<<vendor>> ?)?ASC=0x([0-9a-fA-F]{1,2}) (?:<<vendor>> ?)?ASCQ=0x([0-9a-fA-F]{1,2}?)(?=ASC=|[^0-9a-fA-F]|$)/;

function addSenseText(h: ScsiHead | null, text: string): ParseResult {
  if (text === '' || text.length > 200) return null;
  const ext: Record<string, string> = { asc_text: text };
  // ASC/ASCQ 0/0 says nothing beyond the sense key: detail of the held failure, no event of its own
  if (text === 'No additional sense information') return h === null ? null : { context: scsiKey(h), ext };
  let severity: Severity | undefined;
  if (FAULT_ASC_TEXT.test(text)) severity = 'error';
  else if (text.startsWith('Failure prediction threshold exceeded')) severity = 'warn';
  return scsiFinding(h, 'SCSI_ADDITIONAL_SENSE_CODE', `Additional sense on {dev}: ${text}`, ext, severity, true);
}

function addSenseRaw(h: ScsiHead | null, s: string): Finding | null {
  const r = RAW_ASC.exec(s);
  if (!r) return null;
  const asc = parseInt(r[1]!, 16);
  const ext: Record<string, string> = { asc: `0x${r[1]!.toLowerCase()}`, ascq: `0x${r[2]!.toLowerCase()}` };
  if (s.indexOf('<<vendor>>') >= 0) ext.vendor = 'true';
  let severity: Severity | undefined;
  if (FAULT_ASC.has(asc)) severity = 'error';
  else if (asc === 0x5d) severity = 'warn';
  return scsiFinding(h, 'SCSI_ADDITIONAL_SENSE_CODE', `Additional sense on {dev}: ASC=${ext.asc} ASCQ=${ext.ascq}`, ext, severity, true);
}

const HEX_BYTE = /^[0-9a-fA-F]{2}$/;

/** `CDB: Read(10) 28 00 …` (≤ 3.x `Read(10): 28 00 …`) or `CDB[00]: …`: context of the held failure. */
function cdb(h: ScsiHead, rest: string): Context | null {
  const colon = rest.indexOf(': ');
  if (colon < 0) return null;
  let text = rest.slice(colon + 2).trim();
  if (text === '') return null;
  if (text.length > 512) text = text.slice(0, 512);
  const ext: Record<string, string> = { cdb: text };
  if (rest.charCodeAt(3) === 58 /* : */) {
    // the hex dump is the trailing run of two-digit tokens; the name is before it
    const toks = text.split(' ');
    let j = toks.length;
    while (j > 0 && HEX_BYTE.test(toks[j - 1]!)) j--;
    while (j < toks.length && toks[j] === '') j++;
    if (j < toks.length) ext.cdb_opcode = `0x${toks[j]!.toLowerCase()}`;
    let name = toks.slice(0, j).join(' ').trim();
    if (name.endsWith(':')) name = name.slice(0, -1);
    if (name !== '') ext.cdb_name = name;
  }
  return { context: scsiKey(h), ext };
}

const RESULT_TAIL = /^hostbyte=([\w-]{1,32}) driverbyte=([\w-]{1,32})(?: cmd_age=(\d{1,10})s)?/;
const DISPOSITION = /^(?:[A-Z][A-Z_]{1,31}|UNKNOWN\(0x[0-9a-fA-F]{1,8}\))$/;
const NOT_FAILED = new Set(['SUCCESS', 'NEEDS_RETRY', 'ADD_TO_MLQUEUE', 'QUEUED']);

function hostOk(hostbyte: string): boolean {
  return hostbyte === 'DID_OK' || hostbyte === '0x00' || hostbyte === '0x0';
}

/** Any `… Result: hostbyte=X driverbyte=Y` line. */
function result(h: ScsiHead, rest: string, at: number): ParseResult {
  const t = RESULT_TAIL.exec(rest.slice(at + 8));
  if (!t) return null;
  const ext: Record<string, string> = { hostbyte: t[1]!, driverbyte: t[2]! };
  if (t[3] !== undefined) ext.cmd_age_s = t[3];
  const bytes = `hostbyte=${t[1]!} driverbyte=${t[2]!}`;
  const head = rest.slice(0, at).trimEnd();
  if (head === '') {
    // ≤ 3.x: the result line after `Unhandled error code`: context, or the failure itself when that was lost
    const orphan = scsiFinding(h, 'SCSI_CMD_FAILED', `SCSI command failed on {dev}: ${bytes}`, ext,
      hostOk(t[1]!) ? 'warn' : 'error', true);
    return { context: scsiKey(h), ext, orphan };
  }
  if (head.endsWith(' failed:')) {
    // sd_print_result(): `Read Capacity(16) failed: Result: …`
    const command = head.slice(0, -8);
    if (command.length > 64) return null;
    ext.command = command;
    // printed at KERN_INFO; a host byte other than DID_OK (the disk gone, a transport error) is an error
    return scsiFinding(h, 'SCSI_CMD_FAILED', `SCSI ${command} failed on {dev}: ${bytes}`, ext, hostOk(t[1]!) ? undefined : 'error', true);
  }
  // `[<msg>: ]<disposition> Result:` (scsi_print_result)
  const colon = head.lastIndexOf(': ');
  const disposition = colon >= 0 ? head.slice(colon + 2) : head;
  if (!DISPOSITION.test(disposition) || NOT_FAILED.has(disposition)) return null;
  ext.disposition = disposition;
  return scsiFinding(h, 'SCSI_CMD_FAILED', `SCSI command failed on {dev}: ${bytes}`, ext,
    hostOk(t[1]!) ? 'warn' : 'error', true);
}

const RESULT_WORD = /^[0-9a-fA-F]{1,8}$/;

/**
 * 2.6.1x–2.6.2x scsi_io_completion(): `SCSI error: return code = 0x08000002`, the
 * result word (driver, host, message, status byte from the top). The command
 * failed back to the block layer.
 */
function returnCode(h: ScsiHead, hex: string): Finding | null {
  hex = hex.trimEnd();
  if (!RESULT_WORD.test(hex)) return null;
  const v = parseInt(hex, 16);
  const byte = (n: number): string => `0x${((v >>> n) & 0xff).toString(16).padStart(2, '0')}`;
  const ext: Record<string, string> = { result: `0x${hex.padStart(8, '0').toLowerCase()}`, driverbyte: byte(24), hostbyte: byte(16), msgbyte: byte(8), status: byte(0) };
  return scsiFinding(h, 'SCSI_CMD_FAILED', `SCSI command failed on {dev}: return code ${ext.result!}`, ext, 'error', true);
}

function offlined(h: ScsiHead, rest: string): Finding {
  return scsiFinding(h, 'SCSI_DEVICE_OFFLINE', 'SCSI device {dev} was taken offline: not ready after error recovery',
    { state: 'offline', reason: rest.slice(0, 120) });
}

const TIMING_OUT = /^timing out command, waited (\d{1,10})s/;
const UNALIGNED = /^Unaligned partial completion \(resid=(\d{1,10}), sector_sz=(\d{1,10})\)/;
const CD_ATTACHED = /^Attached scsi CD-ROM ([A-Za-z0-9_]{1,32})$/;
const READ_CAPACITY = /^READ CAPACITY(\(16\))? failed\.?$/;
/** 2.5–2.6.1x sd_attach()/sd_probe(), sr: the address in words after the disk's name */
const OLD_ATTACHED = /^Attached scsi (disk|removable disk|CD-ROM) ([a-z][a-z0-9_]{0,31}) at scsi(\d{1,10}), channel (\d{1,10}), id (\d{1,10}), lun (\d{1,10})$/;

/** `Attached scsi removable disk sda at scsi1, channel 0, id 6, lun 0` (2.5–2.6.1x), not sg's or st's attach lines */
function oldAttached(m: string): Finding | null {
  const a = OLD_ATTACHED.exec(m);
  if (!a) return null;
  const name = a[2]!;
  const hctl = `${a[3]!}:${a[4]!}:${a[5]!}:${a[6]!}`;
  const kind = a[1]!;
  const ext: Record<string, string> = { hctl };
  if (kind !== 'disk') ext.removable = 'true';
  if (kind === 'CD-ROM') ext.kind = 'cdrom';
  return {
    type: 'SCSI_DISK_ATTACHED',
    device: { printed: name, name, hctl },
    msg: kind === 'CD-ROM' ? 'SCSI CD-ROM {dev} attached' : kind === 'disk' ? 'SCSI disk {dev} attached' : 'SCSI removable disk {dev} attached',
    ext,
  };
}

/** 2.5–2.6.1x sd_read_capacity(): `sda : READ CAPACITY failed.` (`READ CAPACITY(16)`) */
function oldReadCapacity(m: string): Finding | null {
  const at = m.indexOf(' : READ CAPACITY');
  if (at <= 0 || at > 32) return null;
  const name = m.slice(0, at);
  const r = READ_CAPACITY.exec(m.slice(at + 3));
  if (!r || !KERNEL_NAME.test(name)) return null;
  const command = r[1] !== undefined ? 'READ CAPACITY(16)' : 'READ CAPACITY';
  return { type: 'SCSI_CMD_FAILED', device: { printed: name, name }, msg: `SCSI ${command} failed on {dev}`, ext: { command } };
}

/** A sense part printed without the device prefix: `Sense Key : …`, `Add. Sense: …`, indented `Additional sense: …`, `ASC=…`. */
function senseFragment(m: string): ParseResult {
  let i = 0;
  while (i < 16 && (m.charCodeAt(i) === 32 || m.charCodeAt(i) === 9)) i++;
  switch (m.charCodeAt(i)) {
    case 83: // S
      if (m.startsWith('Sense Key : ', i)) return senseKey(null, m.slice(i + 12));
      return i === 0 && m.startsWith('SCSI error : <') ? legacyAddressed(m, 13, ' return code = 0x') : null;
    case 115: // s
      if (i === 0 && m.startsWith('scsi: Device offlined')) return legacyAddressed(m, m.indexOf(': host ') + 2, '');
      break;
    case 65: { // A
      let text: string;
      if (m.startsWith('Add. Sense: ', i)) text = m.slice(i + 12).trim();
      else if (m.startsWith('Additional sense: ', i)) text = m.slice(i + 18).trim();
      else if (m.startsWith('ASC=0x', i)) return addSenseRaw(null, m.slice(i));
      else return i === 0 && m.startsWith('Attached scsi ') ? oldAttached(m) : null;
      return text.startsWith('ASC=') || text.startsWith('<<') ? addSenseRaw(null, text) : addSenseText(null, text);
    }
    case 60: // <
      return m.startsWith('<<vendor>>', i) ? addSenseRaw(null, m.slice(i)) : null;
  }
  return i === 0 ? (oldSenseKey(m) ?? oldReadCapacity(m)) : null;
}

const LEGACY_ADDRESS = /^(?:<(\d{1,10}) (\d{1,10}) (\d{1,10}) (\d{1,10})>|host (\d{1,10}) channel (\d{1,10}) id (\d{1,10}) lun (\d{1,10}))/;

/**
 * ≤ 2.6.17 lines that print the SCSI address in words, without a device prefix:
 * `SCSI error : <0 0 0 0> return code = 0x8000002` (2.6.9, RHEL 4) and
 * `scsi: Device offlined - not ready after error recovery: host 0 channel 0 id 0 lun 0`.
 */
function legacyAddressed(m: string, at: number, after: string): Finding | null {
  if (at < 2) return null;
  const a = LEGACY_ADDRESS.exec(m.slice(at, at + 60));
  if (!a) return null;
  const o = a[1] !== undefined ? 1 : 5;
  const hctl = `${a[o]!}:${a[o + 1]!}:${a[o + 2]!}:${a[o + 3]!}`;
  const h: ScsiHead = { hctl, rest: '' };
  if (after === '') return offlined(h, m.slice(6, at - 2));
  const end = at + a[0].length;
  return m.startsWith(after, end) ? returnCode(h, m.slice(end + after.length)) : null;
}

/** Names __scsi_print_sense() printed when the request had no disk: the driver's class, not a device. */
const DEVCLASS = new Set(['sd', 'sr', 'st', 'sg', 'osst', 'scsi']);

/**
 * 2.6.1x–2.6.2x scsi_print_sense_hdr(): `sda: Current: sense key: Medium Error`,
 * `sda: <<DEFERRED>> [descriptor]: sense key: …`, `sda: Current: sense key=0xb`.
 */
function oldSenseKey(m: string): Finding | null {
  const colon = m.indexOf(': ');
  if (colon <= 0 || colon > 32) return null;
  const t = oldSenseTail(m, colon + 2);
  if (t === null) return null;
  const name = m.slice(0, colon);
  if (!KERNEL_NAME.test(name)) return null;
  return senseKey(null, t.key, t.quals, DEVCLASS.has(name) ? undefined : { printed: name, name });
}

/** `Current[ [descriptor]]: sense key: <key>` (or `<<DEFERRED>>`, `sense key=0x3`) from `i` on. */
function oldSenseTail(m: string, i: number): { key: string; quals: string[] } | null {
  const quals: string[] = [];
  if (m.startsWith('Current', i)) {
    quals.push('current');
    i += 7;
  } else if (m.startsWith('<<DEFERRED>>', i)) {
    quals.push('deferred');
    i += 12;
  } else return null;
  if (m.startsWith(' [descriptor]', i)) {
    quals.push('descriptor');
    i += 13;
  }
  let key: string;
  if (m.startsWith(': sense key: ', i)) key = m.slice(i + 13).trim();
  else if (m.startsWith(': sense key=0x', i)) key = m.slice(i + 12).trim();
  else return null;
  return { key, quals };
}

/**
 * 3.x scsi_io_completion() names why it failed a command before its result and
 * sense lines: `Unhandled sense code`, `Unhandled error code`, `Device not ready`, …
 */
const FAIL_DESCRIPTIONS = ['Unhandled sense code', 'Unhandled error code', 'Device not ready', 'Media Changed', 'Host Data Integrity Failure',
  'Target Data Integrity Failure', 'Discard failure'];

function failDescription(h: ScsiHead, rest: string): ParseResult {
  for (const detail of FAIL_DESCRIPTIONS) {
    if (!rest.startsWith(detail)) continue;
    if (rest.length === detail.length) {
      // the command is failed back to the block layer (a removable medium's change: a warning)
      return scsiFinding(h, 'SCSI_CMD_FAILED', `SCSI command failed on {dev}: ${detail.toLowerCase()}`, { detail }, detail === 'Media Changed' ? 'warn' : 'error', true);
    }
    if (detail !== 'Device not ready' || !rest.startsWith(': ', 16)) return null;
    // 2.6.1x: `Device not ready: <6>: Current: sense key: Not Ready` (the sense header's level printed inline)
    let i = 18;
    if (rest.startsWith('<', i)) {
      const close = rest.indexOf('>', i);
      if (close < 0 || close > i + 3) return null;
      i = close + 1;
    }
    if (!rest.startsWith(': ', i)) return null;
    const t = oldSenseTail(rest, i + 2);
    const f = t && senseKey(h, t.key, t.quals);
    if (f) f.ext.detail = detail;
    return f;
  }
  return null;
}

function scsiLine(m: string): ParseResult {
  const h = scsiHead(m);
  if (!h) return senseFragment(m);
  const rest = h.rest;
  switch (rest.charCodeAt(0)) {
    case 83: // S
      if (rest.startsWith('Sense Key : ')) return senseKey(h, rest.slice(12));
      if (rest.startsWith('SCSI error: return code = 0x')) return returnCode(h, rest.slice(28));
      if (rest.startsWith('Synchronizing SCSI cache')) {
        return scsiFinding(h, 'SCSI_DISK_DETACHING', 'SCSI disk {dev} is being detached or stopped (synchronizing its cache)', {});
      }
      if (rest.startsWith('Spinning up disk')) {
        const ext: Record<string, string> = {};
        if (rest.endsWith('ready')) ext.result = 'ready';
        else if (rest.endsWith('not responding...')) ext.result = 'not responding';
        return scsiFinding(h, 'SCSI_SPINNING_UP_DISK', 'SCSI disk {dev} is spinning up', ext, ext.result === 'not responding' ? 'warn' : undefined);
      }
      break;
    case 65: // A
      if (rest.startsWith('Add. Sense: ')) {
        const text = rest.slice(12).trim();
        return text.startsWith('ASC=') || text.startsWith('<<') ? addSenseRaw(h, text) : addSenseText(h, text);
      }
      if (rest.startsWith('ASC=0x')) return addSenseRaw(h, rest.trim());
      if (rest === 'Attached SCSI disk' || rest === 'Attached SCSI removable disk') {
        const removable = rest.length > 18;
        return scsiFinding(h, 'SCSI_DISK_ATTACHED', removable ? 'SCSI removable disk {dev} attached' : 'SCSI disk {dev} attached',
          removable ? { removable: 'true' } : {});
      }
      if (rest.startsWith('Attached scsi disk ') || rest.startsWith('Attached scsi removable disk ')) {
        // 2.6.1x sd_probe(): `Attached scsi [removable ]disk sda`
        const removable = rest.charCodeAt(14) === 114 /* r */;
        const name = rest.slice(removable ? 29 : 19).trim();
        if (!KERNEL_NAME.test(name)) return null;
        return {
          type: 'SCSI_DISK_ATTACHED',
          device: { printed: name, name, hctl: h.hctl },
          msg: removable ? 'SCSI removable disk {dev} attached' : 'SCSI disk {dev} attached',
          ext: removable ? { ...scsiExt(h), removable: 'true' } : scsiExt(h),
        };
      }
      if (rest.startsWith('Attached scsi CD-ROM ')) {
        const cd = CD_ATTACHED.exec(rest);
        if (!cd) return null;
        return {
          type: 'SCSI_DISK_ATTACHED',
          device: { printed: cd[1]!, name: cd[1]!, hctl: h.hctl },
          msg: 'SCSI CD-ROM {dev} attached',
          ext: { ...scsiExt(h), removable: 'true', kind: 'cdrom' },
        };
      }
      break;
    case 60: // <
      if (rest.startsWith('<<vendor>>')) return addSenseRaw(h, rest.trim());
      break;
    case 82: { // R (`Read Capacity(16) failed: Result: …` is read below)
      const r = rest.startsWith('READ CAPACITY') ? READ_CAPACITY.exec(rest) : null;
      if (r) {
        // the `[sda]  Result: …` and sense lines that follow join it
        const command = r[1] !== undefined ? 'READ CAPACITY(16)' : 'READ CAPACITY';
        return scsiFinding(h, 'SCSI_CMD_FAILED', `SCSI ${command} failed on {dev}`, { command }, undefined, true);
      }
      break;
    }
    case 67: // C
      if (rest.startsWith('CDB: ') || rest.startsWith('CDB[')) return cdb(h, rest);
      break;
    case 85: // U
      if (rest.startsWith('Unhandled ')) return failDescription(h, rest);
      if (rest.startsWith('Unaligned partial completion')) {
        const u = UNALIGNED.exec(rest);
        if (!u) return null;
        return scsiFinding(h, 'SCSI_UNALIGNED_PARTIAL_COMPLETION',
          `A command on {dev} completed partially, not on a sector boundary (resid ${u[1]!}, sector size ${u[2]!})`,
          { resid: u[1]!, sector_size: u[2]! });
      }
      break;
    case 115: // s
      // 2.6.18 scsi_eh_offline_sdevs(): `sd 0:0:0:0: scsi: Device offlined - not ready after error recovery`
      if (rest.startsWith('scsi: Device offlined')) return offlined(h, rest.slice(6));
      break;
    case 114: // r
      if (rest.startsWith('rejecting I/O to offline device')) {
        return scsiFinding(h, 'SCSI_DEVICE_OFFLINE', 'SCSI device {dev} is offline: I/O rejected', { state: 'offline', reason: 'rejecting I/O to offline device' });
      }
      if (rest.startsWith('rejecting I/O to dead device')) {
        return scsiFinding(h, 'SCSI_DEVICE_OFFLINE', 'SCSI device {dev} is gone: I/O rejected', { state: 'dead', reason: 'rejecting I/O to dead device' });
      }
      break;
    case 68: // D
      if (rest.startsWith('Device offlined')) return offlined(h, rest);
      if (rest.startsWith('Device not ready') || rest.startsWith('Discard failure')) return failDescription(h, rest);
      break;
    case 72: // H
    case 84: // T
      if (rest.endsWith(' Data Integrity Failure')) return failDescription(h, rest);
      break;
    case 77: // M
      if (rest.startsWith('Media Changed')) return failDescription(h, rest);
      if (rest.startsWith('Medium access timeout failure')) {
        return scsiFinding(h, 'SCSI_DEVICE_OFFLINE', 'SCSI disk {dev} was taken offline after medium access timeouts',
          { state: 'offline', reason: 'medium access timeout failure' });
      }
      break;
    case 116: { // t
      const t = TIMING_OUT.exec(rest);
      if (t) return scsiFinding(h, 'SCSI_TIMEOUT', `SCSI command on {dev} timed out after ${t[1]!}s`, { waited_s: t[1]! });
      break;
    }
  }
  const at = rest.indexOf('Result: hostbyte=');
  if (at >= 0 && at < 160) return result(h, rest, at);
  return null;
}

// -------------------------------------------------------------- libata ----

interface AtaHead {
  /** `ata1` */
  port: string;
  /** `ata1.00` or `ata1` as printed */
  printed: string;
  rest: string;
}

/** `ataN: ` or `ataN.DD: ` → its parts. */
function ataHead(m: string): AtaHead | null {
  let i = 3;
  while (i - 3 < 6 && isDigit(m.charCodeAt(i))) i++;
  if (i === 3) return null;
  const port = m.slice(0, i);
  if (m.charCodeAt(i) === 46 /* . */) {
    const d0 = ++i;
    while (i - d0 < 3 && isDigit(m.charCodeAt(i))) i++;
    if (i === d0) return null;
  }
  if (m.charCodeAt(i) !== 58 || m.charCodeAt(i + 1) !== 32) return null;
  const printed = m.slice(0, i);
  i += 2;
  while (m.charCodeAt(i) === 32) i++;
  return { port, printed, rest: m.slice(i) };
}

function ataKey(h: AtaHead): string {
  return `ata:${h.port}`;
}

function ataDev(h: AtaHead): DeviceRef {
  return { printed: h.printed };
}

function ataFinding(h: AtaHead, type: Finding['type'], msg: string, ext: Record<string, string>, severity?: Severity): Finding {
  const f: Finding = { type, device: ataDev(h), msg, ext: { ata_port: h.port, ...ext } };
  if (severity) f.severity = severity;
  return f;
}

function ataContext(h: AtaHead, ext: Record<string, string>, orphan = false): Context {
  const ctx: Context = { context: ataKey(h), ext };
  if (orphan) {
    const f = ataFinding(h, 'ATA_ERROR', 'ATA error on {dev}', { ...ext });
    f.hold = ataKey(h);
    ctx.orphan = f;
  }
  return ctx;
}

const EXCEPTION = /^exception Emask (0x[0-9a-fA-F]{1,8}) SAct (0x[0-9a-fA-F]{1,16}) SErr (0x[0-9a-fA-F]{1,8}) action (0x[0-9a-fA-F]{1,8})( frozen)?(?: t(\d{1,3}))?/;
const BRACES = /^\{ ?([^{}]{0,200}?) ?\}$/;
const CMD_LINE = /^cmd ([0-9a-f]{2}\/[0-9a-f:/]{10,60}) tag (\d{1,3})(?: (.{1,80}))?$/;
const RES_LINE = /^res ([0-9a-f]{2}\/[0-9a-f:/]{10,60}) Emask (0x[0-9a-fA-F]{1,8}) \(([^()]{0,80})\)( <F>)?/;
const LINK_DOWN = /^SATA link down(?: \(SStatus ([0-9a-fA-F]{1,8}) SControl ([0-9a-fA-F]{1,8})\))?/;
const LINK_UP = /^SATA link up ([\d.]{1,6} Gbps)(?: \(SStatus ([0-9a-fA-F]{1,8}) SControl ([0-9a-fA-F]{1,8})\))?/;
const NO_SENSE_TRANSLATION = /^(?:op=(0x[0-9a-fA-F]{1,2}) cmd=(0x[0-9a-fA-F]{1,2}) )?status: (0x[0-9a-fA-F]{1,2})/;
const CMD_TIMEOUT = /^command (0x[0-9a-fA-F]{1,2}) timeout(?:, stat (0x[0-9a-fA-F]{1,2}) host_stat (0x[0-9a-fA-F]{1,2}))?/;
const ERRNO = /\(errno=(-?\d{1,6})\)/;

function braces(s: string): string | null {
  const b = BRACES.exec(s.trim());
  return b ? b[1]!.trim() : null;
}

/**
 * `cmd … tag N …` with, after embedded newlines, an ATAPI `cdb …` line and
 * `res … Emask 0x… (…)`.
 */
function ataCmd(h: AtaHead, rest: string): Context | null {
  const lines = rest.indexOf('\n') >= 0 ? rest.split('\n', 4) : [rest];
  const c = CMD_LINE.exec(lines[0]!.trim());
  if (!c) return null;
  const ext: Record<string, string> = { cmd: c[1]!, cmd_tag: c[2]! };
  if (c[3] !== undefined) ext.cmd_proto = c[3].trim();
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!.trim();
    if (l.startsWith('res ')) Object.assign(ext, resExt(l) ?? {});
    else if (l.startsWith('cdb ')) ext.cdb = l.slice(4, 120).trim();
  }
  return ataContext(h, ext);
}

function resExt(s: string): Record<string, string> | null {
  const r = RES_LINE.exec(s);
  if (!r) return null;
  const ext: Record<string, string> = { res: r[1]!, err_mask: r[2]!, err_desc: r[3]! };
  if (r[4] !== undefined) ext.ncq_failed = 'true';
  return ext;
}

function ataLine(m: string): ParseResult {
  const h = ataHead(m);
  if (!h) return null;
  const rest = h.rest;
  switch (rest.charCodeAt(0)) {
    case 101: // e
      if (rest.startsWith('exception Emask ')) {
        const e = EXCEPTION.exec(rest);
        if (!e) return null;
        const ext: Record<string, string> = { emask: e[1]!, sact: e[2]!, serr: e[3]!, action: e[4]! };
        if (e[5] !== undefined) ext.frozen = 'true';
        if (e[6] !== undefined) ext.eh_tries = e[6];
        const f = ataFinding(h, 'ATA_ERROR', `ATA exception on {dev}: Emask ${e[1]!}, SErr ${e[3]!}, action ${e[4]!}${e[5] ?? ''}`, ext);
        f.hold = ataKey(h);
        return f;
      }
      if (rest.startsWith('error: ')) {
        const v = braces(rest.slice(7));
        return v === null ? null : ataContext(h, { error: v }, true);
      }
      if (rest.startsWith('error=0x')) return ataContext(h, { error: rest.slice(6, 120) });
      return null;
    case 69: // E
      if (rest === 'EH complete') return ataContext(h, { eh: 'complete' });
      return null;
    case 102: // f
      if (rest.startsWith('failed command: ')) {
        const cmd = rest.slice(16).trim();
        if (cmd === '' || cmd.length > 64) return null;
        return ataContext(h, { failed_command: cmd }, true);
      }
      if (rest.startsWith('failed to IDENTIFY ')) {
        return ataContext(h, { identify_error: rest.slice(19).replace(/^\(|\)$/g, '').slice(0, 80) }, true);
      }
      return null;
    case 99: // c
      if (rest.startsWith('cmd ')) return ataCmd(h, rest);
      if (rest.startsWith('command ')) {
        // ≤ 2.6.17 ata_qc_timeout(): `command 0x35 timeout, stat 0x51 host_stat 0x60`
        const t = CMD_TIMEOUT.exec(rest);
        if (!t) return null;
        const ext: Record<string, string> = { ata_command: t[1]!, timeout: 'true' };
        if (t[2] !== undefined) {
          ext.status = t[2];
          ext.host_status = t[3]!;
        }
        const f = ataFinding(h, 'ATA_ERROR', `ATA command ${t[1]!} on {dev} timed out`, ext);
        f.hold = ataKey(h);
        return f;
      }
      if (rest.startsWith('configured for ')) {
        const mode = rest.slice(15).trim();
        return mode === '' || mode.length > 32 ? null : ataContext(h, { configured: mode });
      }
      return null;
    case 114: { // r
      if (rest.startsWith('res ')) {
        const ext = resExt(rest);
        return ext ? ataContext(h, ext) : null;
      }
      if (rest.startsWith('revalidation failed')) {
        const e = ERRNO.exec(rest);
        return ataContext(h, { revalidation_failed: e ? e[1]! : 'true' }, true);
      }
      if (rest.startsWith('reset failed')) {
        const e = ERRNO.exec(rest);
        const ext: Record<string, string> = { reset: 'failed' };
        if (e) ext.errno = e[1]!;
        ext.result = rest.indexOf('giving up') >= 0 ? 'giving up' : 'retrying';
        return ataFinding(h, 'ATA_RESET_FAILED', ext.result === 'giving up' ? 'Reset of ATA link {dev} failed; giving up' : 'Reset of ATA link {dev} failed; retrying', ext);
      }
      return null;
    }
    case 115: // s
      if (rest.startsWith('status: ')) {
        const v = braces(rest.slice(8));
        return v === null ? null : ataContext(h, { status: v });
      }
      // 2.6.19-2.6.21 said `port`
      if (rest.startsWith('soft resetting link') || rest.startsWith('soft resetting port')) return ataFinding(h, 'ATA_LINK_RESET', 'ATA link {dev} is being soft reset', { reset: 'soft' });
      if (rest.startsWith('softreset failed')) {
        return ataFinding(h, 'ATA_RESET_FAILED', 'Soft reset of ATA link {dev} failed', { reset: 'soft', result: rest.slice(17).replace(/^\(|\)$/g, '').slice(0, 80) });
      }
      if (rest.startsWith('status=0x')) return ataContext(h, { status: rest.slice(7, 120) });
      return null;
    case 104: // h
      if (rest.startsWith('hard resetting link') || rest.startsWith('hard resetting port')) return ataFinding(h, 'ATA_LINK_RESET', 'ATA link {dev} is being hard reset', { reset: 'hard' });
      if (rest.startsWith('hardreset failed')) {
        return ataFinding(h, 'ATA_RESET_FAILED', 'Hard reset of ATA link {dev} failed', { reset: 'hard', result: rest.slice(17).replace(/^\(|\)$/g, '').slice(0, 80) });
      }
      return null;
    case 67: // C
      if (rest.startsWith('COMRESET failed')) {
        const e = ERRNO.exec(rest);
        const ext: Record<string, string> = { reset: 'hard', result: 'COMRESET failed' };
        if (e) ext.errno = e[1]!;
        return ataFinding(h, 'ATA_RESET_FAILED', 'COMRESET of ATA link {dev} failed', ext);
      }
      return null;
    case 83: // S
      if (rest.startsWith('SRST failed')) {
        // 2.6.2x ata_bus_softreset()/ahci_softreset()
        const e = ERRNO.exec(rest);
        const ext: Record<string, string> = { reset: 'soft', result: 'SRST failed' };
        if (e) ext.errno = e[1]!;
        return ataFinding(h, 'ATA_RESET_FAILED', 'Soft reset (SRST) of ATA link {dev} failed', ext);
      }
      if (rest.startsWith('SATA link down')) {
        const d = LINK_DOWN.exec(rest);
        const ext: Record<string, string> = {};
        if (d && d[1] !== undefined) {
          ext.sstatus = d[1];
          ext.scontrol = d[2]!;
        }
        return ataFinding(h, 'ATA_LINK_DOWN', 'SATA link {dev} is down', ext);
      }
      if (rest.startsWith('SATA link up ')) {
        const u = LINK_UP.exec(rest);
        if (!u) return null;
        const ext: Record<string, string> = { speed: u[1]! };
        if (u[2] !== undefined) {
          ext.sstatus = u[2];
          ext.scontrol = u[3]!;
        }
        return ataFinding(h, 'ATA_LINK_UP', `SATA link {dev} is up at ${u[1]!}`, ext);
      }
      if (rest.startsWith('SError: ')) {
        const v = braces(rest.slice(8));
        return v === null ? null : ataContext(h, { serror_flags: v });
      }
      return null;
    case 105: // i
      if (rest.startsWith('irq_stat 0x')) return ataContext(h, { desc: rest.slice(0, 120) });
      return null;
    case 66: // B
      if (rest.startsWith('BMDMA stat 0x') || rest.startsWith('BMDMA2 stat 0x')) return ataContext(h, { desc: rest.slice(0, 120) });
      return null;
    case 40: // (  — ≤ 2.6 `(irq_stat 0x…)`
      if (rest.startsWith('(irq_stat 0x') || rest.startsWith('(BMDMA stat 0x')) return ataContext(h, { desc: rest.slice(1, 121).replace(/\)$/, '') });
      return null;
    case 108: // l
      if (rest.startsWith('limiting SATA link speed to ')) return ataContext(h, { limit_link_speed: rest.slice(28, 60).trim() });
      if (rest.startsWith('limiting speed to ')) return ataContext(h, { limit_speed: rest.slice(18, 60).trim() });
      return null;
    case 100: // d
      if (rest === 'disabled' || rest === 'disable device') {
        // ata_dev_disable(): EH gave up on the device; its I/O fails from now on
        return ataFinding(h, 'ATA_DEVICE_DISABLED', 'ATA device {dev} was disabled', { state: 'disabled' });
      }
      if (rest.startsWith('device not ready')) {
        // ata_eh_reset(): the softreset left the device busy, so EH escalates
        const e = ERRNO.exec(rest);
        const ext: Record<string, string> = { reset: 'hard', reason: 'device not ready' };
        if (e) ext.errno = e[1]!;
        return rest.indexOf('forcing hardreset') > 0 ? ataFinding(h, 'ATA_LINK_RESET', 'ATA link {dev} is being hard reset: the device was not ready', ext) : null;
      }
      return null;
    case 110: { // n
      // ≤ 2.6.17 ata_to_sense_error(): `no sense translation for op=0x2a cmd=0x3d status: 0x51` (or `for status: 0x51`)
      if (!rest.startsWith('no sense translation for ')) return null;
      const t = NO_SENSE_TRANSLATION.exec(rest.slice(25));
      if (!t) return null;
      const ext: Record<string, string> = { status: t[3]! };
      if (t[1] !== undefined) ext.cdb_opcode = t[1];
      if (t[2] !== undefined) ext.ata_command = t[2];
      const f = ataFinding(h, 'ATA_ERROR', `ATA error on {dev}: status ${t[3]!} has no SCSI sense translation`, ext);
      f.hold = ataKey(h);
      return f;
    }
    case 116: // t
      if (rest.startsWith('translated ATA stat/err ')) return ataContext(h, { translated: rest.slice(24, 120) });
      return null;
  }
  return null;
}

// ------------------------------------------------------------------------

function parse(rec: ClassifiedRecord): ParseResult {
  let m = rec.message;
  if (m.length < 6 || m.length > MAX_LEN) return null;
  m = trimLineEnd(m);
  if (m.charCodeAt(0) === 97 /* a */ && m.startsWith('ata') && isDigit(m.charCodeAt(3))) return ataLine(m);
  if (m.endsWith(' callbacks suppressed')) return suppressedFinding(m);
  return scsiLine(m);
}

export const parser: Parser = { name: 'scsi', systems: ['scsi'], parse };
