// The block layer and the buffer cache: request errors, buffer I/O errors,
// capacity changes, hung tasks and the rate limiter's "callbacks suppressed".
//
// Kernel formats:
//   request errors (block/blk-core.c; blk_status_to_str() gives the status
//   words "I/O", "critical medium", "critical target", "recoverable transport",
//   "timeout", "critical space allocation", "critical nexus" (renamed
//   "reservation conflict" in 6.5), "protection", "operation not supported",
//   "kernel resource", "device resource", "nonblocking retry", "device
//   offline", "open zones exceeded", "duration limit exceeded", "invalid"…):
//     ≥ 5.16  `I/O error, dev loop0, sector 16384 op 0x0:(READ) flags 0x800 phys_seg 1 prio class 2`
//     5.3-5.15 `blk_update_request: I/O error, dev sdb, sector 2048 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 0`
//     5.0-5.2 `print_req_error: I/O error, dev sdb, sector 2048 flags 80700`
//     4.13-4.20 `print_req_error: I/O error, dev sdb, sector 2048`
//     ≤ 4.12  `blk_update_request: critical medium error, dev sdb, sector 2048`
//     ≤ 3.x   `end_request: I/O error, dev sdb, sector 2048`
//     2.4     `end_request: I/O error, dev 21:05 (hde), sector 159991808` (kdevname(): hex major:minor, then the name)
//     the disk is `?` when the request has none (device null then).
//   fs/buffer.c buffer_io_error():
//     `Buffer I/O error on dev sdb1, logical block 0, async page read`
//     `Buffer I/O error on dev dm-0, logical block 1234, lost async page write`
//     `Buffer I/O error on dev sdb1, logical block 8, lost sync page write`
//     ≤ 3.x `Buffer I/O error on device sdb1, logical block 0`
//     ≤ 3.x end_buffer_async_write()/end_buffer_write_sync(): `lost page write due to I/O error on md2`
//   mm/page_io.c, swap I/O that failed (major:minor of the swap device, then the sector):
//     `Read-error on swap-device (254:1:849792)` · `Write-error on swap-device (253:0:45704)`
//     (6.x swap over a file system, no device: `Read-error on swap-device`, `Write error -5 on dio swapfile (4096)`,
//     ≤ 5.x `Write error on dio swapfile (4096)`)
//   drivers/mmc/core/block.c (drivers/mmc/card/block.c ≤ 4.x), a failed command on a card, named by its disk:
//     `mmcblk0: error -110 sending stop command, original cmd response 0x900, card status 0x900`
//     `mmcblk0: error -84 transferring data, sector 3, nr 5, cmd response 0x900, card status 0x0`
//     `mmcblk1: error -110 sending status command, retrying` · `… aborting` · `mmcblk0: error -110 requesting status`
//     `mmcblk0: timed out sending r/w command, card status 0x400900` · `… response CRC error sending SET_BLOCK_COUNT command, …`
//     `mmcblk0: unknown error -5 sending read/write command, card status 0x900`
//     2.6 `mmcblk0: error -110 sending read/write command, response 0x900, card status 0x900`
//     2.6.2x–3.x the card's R1 status had an error bit after a read/write: `mmcblk0: r/w command failed, status = 0x80000b00`
//   drivers/block/loop.c, the backing file refused a write (or a transfer function failed):
//     `loop: Write error at byte offset 1032134656, length 4096.` · `loop: Transfer error at byte offset 0, length 512.`
//   block/blk-core.c ≤ 4.2 generic_make_request_checks(): `bio too big device sdb1 (128 > 64)` (sectors > the queue's maximum)
//   capacity (block/genhd.c ≥ 5.10, sectors; fs/block_dev.c before, bytes):
//     `loop0: detected capacity change from 0 to 65536`
//   kernel/hung_task.c: `INFO: task jbd2/sdb1-8:345 blocked for more than 120 seconds.`
//     the comm is at most 15 characters (TASK_COMM_LEN 16) and may itself hold
//     `:` (`kworker/u16:2`), so the pid is after the last colon.
//   lib/ratelimit.c: `blk_print_req_error: 14 callbacks suppressed`
//     (classify.ts sends only storage functions here).
import { capacityChangeFinding, suppressedFinding, trimLineEnd } from './common.ts';
import type { ClassifiedRecord, DeviceRef, Finding, Parser, ParseResult } from '../contracts/parser.ts';

/** Longer lines are no kernel message of ours (the kernel's own limit is ~1 KiB). */
const MAX_LEN = 2048;

/** a kernel block device name as printed (`sdb`, `dm-0`, `nvme0n1p1`, `cciss!c0d0`) */
const DEV_NAME = /^[A-Za-z0-9_.!+-][A-Za-z0-9_.!:+-]{0,63}$/;

const STATUS_SEP = ' error, dev ';
/** the status word(s) before ` error, dev `: letters, spaces and the slash of `I/O` */
const STATUS_WORDS = /^[A-Za-z][A-Za-z/ -]{0,47}$/;
const FUNC = /^[a-z_][a-z0-9_]{0,47}$/;
/** after ` error, dev `: the disk and the sector, then the optional 5.x/6.x fields */
const IO_TAIL = /^([^\s,]{1,64}(?: \([^\s,()]{1,64}\))?), sector (\d{1,20})(?=$|[ ,])(?: op 0x([0-9a-fA-F]{1,8}):\(([A-Za-z_]{1,32})\))?(?: flags (?:0x)?([0-9a-fA-F]{1,16}))?(?: phys_seg (\d{1,10}))?(?: prio class (\d{1,3}))?/;

const IO_DEV_PAREN = /^([^\s,()]{1,64}) \(([^\s,()]{1,64})\)$/;

const BUFFER = /^Buffer I\/O error on dev(?:ice)? ([^\s,]{1,64}), logical block (\d{1,20})(?:, ([a-z ]{1,48}))?\.?$/;
const CAPACITY = /^([^\s:]{1,64}): detected capacity change from (-?\d{1,20}) to (-?\d{1,20})\.?$/;
const LOST_WRITE = /^lost page write due to I\/O error on ([^\s,]{1,64})$/;
const SWAP = /^(Read|Write)-error on swap-device(?: \((\d{1,10}):(\d{1,10}):(\d{1,20})\))?$/;
const DIO_SWAP = /^Write error(?: (-?\d{1,6}))? on dio swapfile \((\d{1,20})\)$/;
const MMC_HEAD = /^(mmcblk\d{1,4}(?:boot\d{1,2}|gp\d{1,2}|rpmb)?): /;
/** `error -110 sending stop command` · `unknown error -5 sending …` · `timed out sending r/w command` · `error -84 transferring data` */
const MMC_ERROR = /^(?:(?:unknown )?error (-?\d{1,6})|(timed out|response CRC error)) (sending ([A-Za-z_/]{1,24}(?: [A-Za-z_/]{1,24})?) command|transferring data|requesting status|reading status)(?=$|,)/;
const MMC_SECTOR = /, sector (\d{1,20}), nr (\d{1,10})/;
const MMC_CARD_STATUS = /card status (0x[0-9a-fA-F]{1,8}|0)(?=$|,)/;
const MMC_ACTION = /, (retrying|aborting)$/;
const MMC_RW_FAILED = /^r\/w command failed, status = (0x[0-9a-fA-F]{1,8}|0)$/;
const LOOP_ERROR = /^loop: (Write|Transfer) error at byte offset (\d{1,20}), length (\d{1,10})\.?$/;
const BIO_TOO_BIG = /^bio too big device ([^\s(),]{1,64}) \((\d{1,10}) > (\d{1,10})\)$/;
const HUNG_SECONDS = /^ blocked for more than (\d{1,12}) seconds\.?$/;

const MD_THREAD = /^(md\d{1,6})_(?:raid\d{1,2}|resync|reshape|recovery)$/;
const LOOP_THREAD = /^loop\d{1,6}$/;
const FLUSH_THREAD = /^flush-(\d{1,10}:\d{1,10})$/;
const JBD2_SUFFIX = /-\d{0,4}$/;
const TASK_COMM_MAX = 15;

function blockDev(name: string): DeviceRef | null {
  if (name === '?' || !DEV_NAME.test(name)) return null;
  return { printed: name, name };
}

function capitalize(s: string): string {
  return s.length === 0 ? s : s.charAt(0).toUpperCase() + s.slice(1);
}

/** `<status> error, dev <disk>, sector <n> …`, optionally behind `<function>: `. */
function ioError(m: string, sep: number): Finding | null {
  let status = m.slice(0, sep);
  const ext: Record<string, string> = {};
  const colon = status.indexOf(': ');
  if (colon >= 0) {
    const func = status.slice(0, colon);
    if (!FUNC.test(func)) return null;
    ext.function = func;
    status = status.slice(colon + 2);
  }
  if (!STATUS_WORDS.test(status)) return null;
  const t = IO_TAIL.exec(m.slice(sep + STATUS_SEP.length));
  if (!t) return null;
  let disk = t[1]!;
  const sector = t[2]!;
  if (disk.endsWith(')')) {
    // 2.4: `dev 21:05 (hde)`, the device number in hex, then the name
    const p = IO_DEV_PAREN.exec(disk);
    if (!p) return null;
    ext.dev_number = p[1]!;
    disk = p[2]!;
  }
  ext.status = status;
  ext.sector = sector;
  if (t[3] !== undefined) ext.op_code = `0x${t[3].toLowerCase()}`;
  if (t[4] !== undefined) ext.op = t[4].toUpperCase();
  if (t[5] !== undefined) ext.flags = `0x${t[5].toLowerCase()}`;
  if (t[6] !== undefined) ext.phys_seg = t[6];
  if (t[7] !== undefined) ext.prio_class = t[7];
  const device = blockDev(disk);
  if (!device) ext.disk = disk;
  const where = ext.op !== undefined ? `(${ext.op}, sector ${sector})` : `(sector ${sector})`;
  return {
    type: 'BLK_IO_ERROR',
    device,
    msg: `${capitalize(status)} error on {dev} ${where}`,
    ext,
  };
}

function bufferError(m: string): Finding | null {
  const b = BUFFER.exec(m);
  if (!b) return null;
  const device = blockDev(b[1]!);
  if (!device) return null;
  const ext: Record<string, string> = { logical_block: b[2]! };
  const detail = b[3];
  let what = 'buffer I/O error';
  if (detail !== undefined) {
    ext.detail = detail;
    if (detail.endsWith('read')) ext.op = 'READ';
    else if (detail.endsWith('write')) ext.op = 'WRITE';
    if (detail.startsWith('lost ')) ext.lost = 'true';
  }
  if (ext.op === 'READ') what = 'buffer read error';
  else if (ext.op === 'WRITE') what = ext.lost ? 'buffer write error (page write lost)' : 'buffer write error';
  return {
    type: 'BLK_BUFFER_IO_ERROR',
    device,
    msg: `${capitalize(what)} on {dev} at logical block ${b[2]!}`,
    ext,
  };
}

/** ≤ 3.x fs/buffer.c: `lost page write due to I/O error on md2` */
function lostPageWrite(m: string): Finding | null {
  const l = LOST_WRITE.exec(m);
  if (!l) return null;
  const device = blockDev(l[1]!);
  if (!device) return null;
  return {
    type: 'BLK_BUFFER_IO_ERROR',
    device,
    msg: 'Buffer write error (page write lost) on {dev}',
    ext: { op: 'WRITE', lost: 'true', detail: 'lost page write' },
  };
}

/** mm/page_io.c: a swap read or write failed; the device is the swap device's major:minor. */
function swapError(m: string): Finding | null {
  const s = SWAP.exec(m);
  if (s) {
    const op = s[1] === 'Read' ? 'READ' : 'WRITE';
    const what = op === 'READ' ? 'read' : 'write';
    if (s[2] === undefined) return { type: 'BLK_SWAP_IO_ERROR', device: null, msg: `Swap ${what} error`, ext: { op } };
    const majmin = `${s[2]}:${s[3]!}`;
    return {
      type: 'BLK_SWAP_IO_ERROR',
      device: { printed: majmin, majmin },
      msg: `Swap ${what} error on {dev} (sector ${s[4]!})`,
      ext: { op, sector: s[4]! },
    };
  }
  const d = DIO_SWAP.exec(m);
  if (!d) return null;
  const ext: Record<string, string> = { op: 'WRITE', offset: d[2]!, swapfile: 'true' };
  if (d[1] !== undefined) ext.error = d[1];
  return { type: 'BLK_SWAP_IO_ERROR', device: null, msg: `Swap write error on a swap file (offset ${d[2]!})`, ext };
}

/** drivers/mmc: `mmcblk0: error -110 sending stop command, …`; null for the card's other lines. */
function mmcError(m: string): Finding | null {
  const h = MMC_HEAD.exec(m);
  if (!h) return null;
  const rest = m.slice(h[0].length);
  if (rest.startsWith('r/w command failed')) {
    const r = MMC_RW_FAILED.exec(rest);
    if (!r) return null;
    return { type: 'BLK_MMC_ERROR', device: { printed: h[1]!, name: h[1]! }, msg: `MMC read/write command failed on {dev} (card status ${r[1]!})`,
      ext: { command: 'r/w', card_status: r[1]! } };
  }
  const e = MMC_ERROR.exec(rest);
  if (!e) return null;
  const ext: Record<string, string> = {};
  if (e[1] !== undefined) ext.error = e[1];
  else ext.error = e[2] === 'timed out' ? 'timed out' : 'response CRC error';
  const what = e[3]!;
  if (e[4] !== undefined) ext.command = e[4];
  else ext.during = what;
  const tail = rest.slice(e[0].length);
  if (tail.length > 0) {
    const sec = MMC_SECTOR.exec(tail);
    if (sec) {
      ext.sector = sec[1]!;
      ext.nr = sec[2]!;
    }
    const cs = MMC_CARD_STATUS.exec(tail);
    if (cs) ext.card_status = cs[1]!;
    const a = MMC_ACTION.exec(tail);
    if (a) ext.action = a[1]!;
  }
  const err = e[1] !== undefined ? `error ${e[1]}` : ext.error;
  const at = ext.sector !== undefined ? ` at sector ${ext.sector}` : '';
  return { type: 'BLK_MMC_ERROR', device: { printed: h[1]!, name: h[1]! }, msg: `MMC ${err} ${what} on {dev}${at}`, ext };
}

/** drivers/block/loop.c: the loop device is not named, only the offset in its backing file. */
function loopError(m: string): Finding | null {
  const l = LOOP_ERROR.exec(m);
  if (!l) return null;
  const ext: Record<string, string> = { offset: l[2]!, length: l[3]! };
  if (l[1] === 'Write') ext.op = 'WRITE';
  const what = l[1] === 'Write' ? 'write' : 'transfer';
  return { type: 'BLK_LOOP_IO_ERROR', device: null, msg: `Loop device ${what} error at byte offset ${l[2]!} of its backing file`, ext };
}

/** ≤ 4.2: `bio too big device sdb1 (128 > 64)` */
function bioTooBig(m: string): Finding | null {
  const b = BIO_TOO_BIG.exec(m);
  if (!b) return null;
  const device = blockDev(b[1]!);
  if (!device) return null;
  return {
    type: 'BLK_BIO_TOO_BIG',
    device,
    msg: `A request of ${b[2]!} sectors was too big for {dev} (at most ${b[3]!})`,
    ext: { sectors: b[2]!, max_sectors: b[3]! },
  };
}

function capacityChange(m: string): Finding | null {
  const c = CAPACITY.exec(m);
  if (!c) return null;
  const device = blockDev(c[1]!);
  if (!device) return null;
  return capacityChangeFinding(device, c[2]!, c[3]!);
}

/**
 * The device a kernel thread works for, from its comm: `jbd2/sdb1-8` → sdb1,
 * `xfsaild/sdb1` → sdb1, `loop0`, `md0_raid1` → md0, `flush-8:16` → 8:16.
 * A comm of 15 characters may be cut: its device name is kept as printed only.
 */
function taskDevice(task: string): DeviceRef | null {
  const slash = task.indexOf('/');
  if (slash > 0) {
    const kind = task.slice(0, slash);
    let arg = task.slice(slash + 1);
    if (kind === 'jbd2') {
      const complete = JBD2_SUFFIX.test(arg);
      arg = arg.replace(JBD2_SUFFIX, '');
      if (!DEV_NAME.test(arg)) return null;
      return complete || task.length < TASK_COMM_MAX ? { printed: arg, name: arg } : { printed: arg };
    }
    if (kind === 'xfsaild') {
      if (!DEV_NAME.test(arg)) return null;
      return task.length < TASK_COMM_MAX ? { printed: arg, name: arg } : { printed: arg };
    }
    return null;
  }
  if (LOOP_THREAD.test(task)) return { printed: task, name: task };
  const md = MD_THREAD.exec(task);
  if (md) return { printed: md[1]!, name: md[1]! };
  const flush = FLUSH_THREAD.exec(task);
  if (flush) return { printed: flush[1]!, majmin: flush[1]! };
  return null;
}

function taskHung(m: string): Finding | null {
  const at = m.indexOf(' blocked for more than ', 11);
  if (at < 0 || at > 11 + 64) return null;
  const taskPid = m.slice(11, at);
  const colon = taskPid.lastIndexOf(':');
  if (colon <= 0) return null;
  const task = taskPid.slice(0, colon);
  const pid = taskPid.slice(colon + 1);
  if (!/^\d{1,10}$/.test(pid)) return null;
  const s = HUNG_SECONDS.exec(m.slice(at));
  if (!s) return null;
  return {
    type: 'BLK_TASK_HUNG',
    device: taskDevice(task),
    msg: `Task ${task} (pid ${pid}) blocked for more than ${s[1]!} seconds`,
    ext: { task, pid, seconds: s[1]! },
  };
}

function parse(rec: ClassifiedRecord): ParseResult {
  let m = rec.message;
  if (m.length < 8 || m.length > MAX_LEN) return null;
  m = trimLineEnd(m);
  switch (m.charCodeAt(0)) {
    case 66: // B
      if (m.startsWith('Buffer I/O error on dev')) return bufferError(m);
      break;
    case 73: // I
      if (m.startsWith('INFO: task ')) return taskHung(m);
      break;
    case 82: // R
      if (m.startsWith('Read-error on swap-device')) return swapError(m);
      break;
    case 87: // W
      if (m.startsWith('Write-error on swap-device') || m.startsWith('Write error ')) return swapError(m);
      break;
    case 98: // b
      if (m.startsWith('bio too big device ')) return bioTooBig(m);
      break;
    case 108: // l
      if (m.startsWith('lost page write ')) return lostPageWrite(m);
      if (m.startsWith('loop: ')) return loopError(m);
      break;
    case 109: { // m
      if (!m.startsWith('mmcblk')) break;
      const f = mmcError(m);
      if (f) return f;
      break;
    }
  }
  if (m.endsWith(' callbacks suppressed')) return suppressedFinding(m);
  const sep = m.indexOf(STATUS_SEP);
  if (sep > 0 && sep < 100) return ioError(m, sep);
  const cap = m.indexOf(': detected capacity change from ');
  if (cap > 0 && cap <= 64) return capacityChange(m);
  return null;
}

export const parser: Parser = { name: 'block', systems: ['block'], parse };
