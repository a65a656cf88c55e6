// NVMe (drivers/nvme/host: core.c, pci.c, tcp.c, rdma.c). Controller lines
// are dev_printk() on the controller: `nvme nvme0: …` (the device is the
// controller, which is no block device); namespace lines name the disk.
//
// Kernel formats:
//   pci.c nvme_timeout(), ≤ 6.4 (≤ 4.4 printed on the PCI function: `nvme 0000:01:00.0: I/O …`):
//     `nvme nvme0: I/O 123 QID 4 timeout, aborting`
//     6.0–6.4 name the opcode of an aborted command: `nvme nvme0: I/O 642 (I/O Cmd) QID 1 timeout, aborting`
//     `nvme nvme0: I/O 123 QID 4 timeout, reset controller`
//     `nvme nvme0: I/O 123 QID 0 timeout, disable controller` (the controller was CONNECTING or DELETING: the
//       command timed out while the controller was being initialised, reset or removed, and the driver
//       shuts it down instead of resetting it — NVME_IO_TIMEOUT; a failed probe or reset follows)
//     `nvme nvme0: I/O 123 QID 4 timeout, completion polled`
//   ≥ 6.5 (tag, command id, opcode and its name; the opcode is `%#x`, so `0` for Flush):
//     `nvme nvme0: I/O tag 12 (100c) opcode 0x2 (I/O Cmd) QID 4 timeout, aborting req_op:READ(0) size:4096`
//     `nvme nvme0: I/O tag 5 (3005) opcode 0x2 (Read) QID 4 timeout, reset controller`
//     `nvme nvme0: I/O tag 0 (0000) QID 0 timeout, completion polled` · `… QID 3 timeout, disable controller`
//   rdma.c / tcp.c: `nvme nvme1: I/O 7 QID 2 timeout` · `nvme nvme1: queue 2: timeout request 0x12 type 4`
//     · ≥ 6.5 tcp `nvme nvme1: I/O tag 7 (0007) type 4 opcode 0x1 (Write) QID 2 timeout`
//   `nvme nvme0: controller is down; will reset: CSTS=0xffffffff, PCI_STATUS=0xffff`
//     (or `…, PCI_STATUS read failed (-19)`; CSTS all ones: the device fell off the bus)
//   core.c nvme_wait_ready(), a reset or initialisation that failed (≤ 5.x without the CSTS):
//     `nvme nvme1: Device not ready; aborting reset` · `nvme nvme0: Device not ready; aborting initialisation, CSTS=0x0`
//     (6.x also prints `… aborting shutdown, CSTS=…` at power-off: no event, the drive is being turned off)
//   pci.c nvme_reset_work(), the controller's state could not be changed, so the reset gives up:
//     `nvme nvme0: failed to mark controller CONNECTING` · `… failed to mark controller live` (≥ 4.19)
//     · `… failed to mark controller live state` · ≤ 4.18 `… failed to mark controller state 4`
//   `nvme nvme0: frozen state error detected, reset controller` (PCI error recovery)
//   `nvme nvme0: resetting controller` (fabrics, sysfs reset, AER)
//   `nvme nvme0: Removing after probe failure status: -19` · `nvme nvme0: Disabling device after reset failure: -19`
//   multipath.c nvme_ns_head_submit_bio() (≥ 4.15), dev_warn on the namespace head's disk, so the
//   line starts with `block ` (SUBSYSTEM=block; classify.ts routes `block nvme…` here):
//     `block nvme2n1: no available path - failing I/O` (error: the I/O fails)
//     `block nvme6n1: no usable path - requeuing I/O` (warn: held until a path comes back)
//   core.c nvme_log_error(), ≥ 5.18 (trailing space after the flags):
//     `nvme0n1: Read(0x2) @ LBA 2048, 8 blocks, Unrecovered Read Error (sct 0x2 / sc 0x81) DNR `
//     `nvme0n1: Write(0x1) @ LBA 0, 1 blocks, Namespace Not Ready (sct 0x0 / sc 0x82) MORE DNR `
//     without CONFIG_NVME_VERBOSE_ERRORS: `nvme0n1: I/O Cmd(0x2) @ LBA 2048, 8 blocks, I/O Error (sct 0x2 / sc 0x81) DNR `
//     admin commands print the controller: `nvme0: Identify(0x6), Invalid Field in Command (sct 0x0 / sc 0x2) DNR `
//     — no event: they are mostly optional features a drive lacks.
//   `nvme0n1: detected capacity change from 0 to 2000409264` (classify.ts routes `nvme…` here)
//   `nvme_log_error: 3 callbacks suppressed`
// Before 5.18 a failed NVMe I/O is only the block layer's `… error, dev nvme0n1, sector …` line.
import { capacityChangeFinding, suppressedFinding, trimLineEnd } from './common.ts';
import type { ClassifiedRecord, DeviceRef, Finding, Parser, ParseResult } from '../contracts/parser.ts';

const MAX_LEN = 2048;

/** `nvme nvme0: ` (≥ 4.5, the controller) or `nvme 0000:01:00.0: ` (≤ 4.4, the PCI function) */
const CTRL_HEAD = /^nvme (nvme\d{1,6}|[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]): /;
const NS_HEAD = /^(nvme\d{1,6}(?:c\d{1,6})?n\d{1,6}(?:p\d{1,6})?): /;

const TIMEOUT_OLD = /^I\/O (\d{1,10})(?: \(([^()]{1,40})\))? QID (\d{1,10}) timeout(?:, ([a-z ]{1,32}))?$/;
const TIMEOUT_NEW = /^I\/O tag (\d{1,10}) \(([0-9a-fA-F]{1,8})\)(?: type (\d{1,3}))?(?: opcode (0x[0-9a-fA-F]{1,4}|0) \(([^()]{0,40})\))? QID (\d{1,10}) timeout(?:, ([a-z ]{1,32}))?(?: req_op:([A-Za-z_]{1,32})\((\d{1,3})\) size:(\d{1,12}))?$/;
const TIMEOUT_TCP = /^queue (\d{1,10}): timeout (?:request|cid) (0x[0-9a-fA-F]{1,8}) type (\d{1,3})/;
const DOWN = /^controller is down; will reset: CSTS=(0x[0-9a-fA-F]{1,8}), PCI_STATUS(?:=(0x[0-9a-fA-F]{1,4})| read failed \((-?\d{1,6})\))/;
const NOT_READY = /^Device not ready; aborting (reset|initialisation|initialization)(?:, CSTS=(0x[0-9a-fA-F]{1,8}))?(?:$|,)/;
const MARK_FAILED = /^failed to mark controller (CONNECTING|live(?: state)?|state \d{1,3})$/;
const NO_PATH = /^block (nvme\d{1,6}(?:c\d{1,6})?n\d{1,6}): no (available path - failing|usable path - requeuing) I\/O$/;
const REMOVED = /^(?:Removing after probe failure status|Disabling device after reset failure): (-?\d{1,6})/;

const IO_ERROR = /^([A-Za-z][A-Za-z/ -]{0,40})\(0x([0-9a-fA-F]{1,2})\) @ LBA (\d{1,20}), (\d{1,10}) blocks, /;
const STATUS_TAIL = /^ \(sct 0x([0-9a-fA-F]{1,2}) \/ sc 0x([0-9a-fA-F]{1,3})\)((?: (?:MORE|DNR)){0,2})$/;
const CAPACITY = /^detected capacity change from (\d{1,20}) to (\d{1,20})\.?$/;

/** NVMe I/O opcodes (NVM command set) → the block layer's op names. */
const IO_OPS: Record<number, string> = {
  0x00: 'FLUSH', 0x01: 'WRITE', 0x02: 'READ', 0x04: 'WRITE_UNCORRECTABLE', 0x05: 'COMPARE',
  0x08: 'WRITE_ZEROES', 0x09: 'DISCARD', 0x0c: 'VERIFY', 0x79: 'ZONE_MGMT_SEND', 0x7a: 'ZONE_MGMT_RECV', 0x7d: 'ZONE_APPEND',
};

/** nvme_get_opcode_str()'s verbose names (CONFIG_NVME_VERBOSE_ERRORS) of I/O commands → op names. */
const IO_OP_NAMES = new Map<string, string>([
  ['Flush', 'FLUSH'], ['Write', 'WRITE'], ['Read', 'READ'], ['Write Uncorrectable', 'WRITE_UNCORRECTABLE'], ['Compare', 'COMPARE'],
  ['Write Zeroes', 'WRITE_ZEROES'], ['Dataset Management', 'DISCARD'], ['Verify', 'VERIFY'], ['Zone Append', 'ZONE_APPEND'],
]);

function ctrlRef(name: string): DeviceRef {
  return { printed: name };
}

function timeout(ctrl: string, rest: string): Finding | null {
  const ext: Record<string, string> = {};
  let action: string | undefined;
  const o = TIMEOUT_OLD.exec(rest);
  if (o) {
    ext.tag = o[1]!;
    ext.qid = o[3]!;
    if (o[2] !== undefined) {
      ext.opcode_name = o[2];
      const op = ext.qid === '0' ? undefined : IO_OP_NAMES.get(o[2]);
      if (op) ext.op = op;
    }
    action = o[4];
  } else {
    const n = TIMEOUT_NEW.exec(rest);
    if (n) {
      ext.tag = n[1]!;
      ext.command_id = `0x${n[2]!.toLowerCase()}`;
      if (n[3] !== undefined) ext.type = n[3];
      if (n[4] !== undefined) {
        const opcode = n[4] === '0' ? 0 : parseInt(n[4].slice(2), 16);
        ext.opcode = `0x${opcode.toString(16)}`;
        if (n[5] !== undefined && n[5] !== '') ext.opcode_name = n[5];
      }
      ext.qid = n[6]!;
      action = n[7];
      if (n[8] !== undefined) {
        ext.op = n[8].toUpperCase();
        ext.op_code = n[9]!;
        ext.size = n[10]!;
      } else if (ext.opcode !== undefined && ext.qid !== '0') {
        const op = IO_OPS[parseInt(ext.opcode.slice(2), 16)];
        if (op) ext.op = op;
      }
    } else {
      const t = TIMEOUT_TCP.exec(rest);
      if (!t) return null;
      ext.qid = t[1]!;
      ext.tag = t[2]!;
      ext.type = t[3]!;
    }
  }
  if (action !== undefined) ext.action = action;
  const what = ext.qid === '0' ? 'Admin command' : 'I/O';
  const where = `${what} ${ext.tag} on queue ${ext.qid}`;
  if (action === 'reset controller') {
    return {
      type: 'NVME_CONTROLLER_RESET',
      device: ctrlRef(ctrl),
      msg: `NVMe controller {dev} is being reset: ${where} timed out`,
      ext: { ...ext, reason: 'timeout' },
    };
  }
  return {
    type: 'NVME_IO_TIMEOUT',
    device: ctrlRef(ctrl),
    msg: action ? `NVMe ${where} of {dev} timed out (${action})` : `NVMe ${where} of {dev} timed out`,
    ext,
  };
}

function controllerLine(ctrl: string, rest: string): Finding | null {
  switch (rest.charCodeAt(0)) {
    case 73: // I
      if (rest.startsWith('I/O ')) return timeout(ctrl, rest);
      return null;
    case 113: // q
      if (rest.startsWith('queue ')) return timeout(ctrl, rest);
      return null;
    case 99: { // c
      if (!rest.startsWith('controller is down')) return null;
      const d = DOWN.exec(rest);
      if (!d) return null;
      const ext: Record<string, string> = { csts: d[1]!.toLowerCase(), reason: 'controller down' };
      if (d[2] !== undefined) ext.pci_status = d[2].toLowerCase();
      if (d[3] !== undefined) ext.pci_status_error = d[3];
      const gone = ext.csts === '0xffffffff';
      const f: Finding = {
        type: 'NVME_CONTROLLER_RESET',
        device: ctrlRef(ctrl),
        msg: gone ? 'NVMe controller {dev} stopped responding (CSTS=0xffffffff); resetting it' : `NVMe controller {dev} is down (CSTS=${ext.csts}); resetting it`,
        ext,
      };
      if (gone) f.severity = 'error';
      return f;
    }
    case 68: { // D
      if (rest.startsWith('Device not ready')) {
        const n = NOT_READY.exec(rest);
        if (!n) return null;
        const what = n[1] === 'reset' ? 'reset' : 'initialisation';
        const ext: Record<string, string> = { reason: 'not ready', result: `${what} aborted` };
        let state = '';
        if (n[2] !== undefined) {
          ext.csts = n[2].toLowerCase();
          state = ` (CSTS=${ext.csts})`;
        }
        return { type: 'NVME_RESET_FAILED', device: ctrlRef(ctrl), msg: `NVMe controller {dev} did not become ready${state}; ${what} aborted`, ext };
      }
      if (rest.startsWith('Disabling device')) return removed(ctrl, rest);
      return null;
    }
    case 82: // R
      if (rest.startsWith('Removing after')) return removed(ctrl, rest);
      return null;
    case 102: // f
      if (rest.startsWith('failed to mark controller ')) {
        const f = MARK_FAILED.exec(rest);
        if (!f) return null;
        const state = f[1]!.startsWith('live') ? 'live' : f[1]!;
        return { type: 'NVME_RESET_FAILED', device: ctrlRef(ctrl), msg: `Resetting NVMe controller {dev} failed: it could not be marked ${state}`, ext: { reason: 'state change failed', state } };
      }
      if (rest.startsWith('frozen state error detected, reset controller')) {
        return { type: 'NVME_CONTROLLER_RESET', device: ctrlRef(ctrl), msg: 'NVMe controller {dev} is being reset after a PCI error', ext: { reason: 'pci error' }, severity: 'error' };
      }
      return null;
    case 114: // r
      if (rest === 'resetting controller' || rest.startsWith('resetting controller due to ')) {
        const ext: Record<string, string> = {};
        if (rest.length > 20) ext.reason = rest.slice(28, 120);
        return { type: 'NVME_CONTROLLER_RESET', device: ctrlRef(ctrl), msg: 'NVMe controller {dev} is being reset', ext };
      }
      return null;
  }
  return null;
}

function removed(ctrl: string, rest: string): Finding | null {
  const r = REMOVED.exec(rest);
  if (!r) return null;
  const status = r[1]!;
  const afterReset = rest.startsWith('Disabling');
  return {
    type: 'NVME_DEVICE_REMOVED',
    device: ctrlRef(ctrl),
    msg: afterReset ? `NVMe controller {dev} was disabled after a failed reset (status ${status})` : `NVMe controller {dev} was removed after a probe failure (status ${status})`,
    ext: { status, reason: afterReset ? 'reset failure' : 'probe failure' },
  };
}

function ioError(dev: string, rest: string): Finding | null {
  const e = IO_ERROR.exec(rest);
  if (!e) return null;
  const after = rest.slice(e[0].length);
  const sct = after.lastIndexOf(' (sct 0x');
  if (sct <= 0 || sct > 120) return null;
  const t = STATUS_TAIL.exec(after.slice(sct));
  if (!t) return null;
  const status = after.slice(0, sct);
  const name = e[1]!.trim();
  const opcode = parseInt(e[2]!, 16);
  const ext: Record<string, string> = {
    op: IO_OPS[opcode] ?? name.toUpperCase().replace(/[^A-Z0-9]+/g, '_'),
    op_name: name,
    opcode: `0x${opcode.toString(16)}`,
    lba: e[3]!,
    blocks: e[4]!,
    status,
    sct: `0x${t[1]!.toLowerCase()}`,
    sc: `0x${t[2]!.toLowerCase()}`,
  };
  const flags = t[3]!.trim();
  if (flags.indexOf('MORE') >= 0) ext.more = 'true';
  if (flags.indexOf('DNR') >= 0) ext.dnr = 'true';
  return {
    type: 'NVME_IO_ERROR',
    device: { printed: dev, name: dev },
    msg: `NVMe ${name} error on {dev} at LBA ${e[3]!} (${e[4]!} blocks): ${status}`,
    ext,
  };
}

/** `block nvme2n1: no available path - failing I/O` · `… no usable path - requeuing I/O` */
function noPath(m: string): Finding | null {
  const p = NO_PATH.exec(m);
  if (!p) return null;
  const dev = p[1]!;
  const failing = p[2]!.endsWith('failing');
  const f: Finding = {
    type: 'NVME_NO_PATH',
    device: { printed: dev, name: dev },
    msg: failing ? 'NVMe multipath namespace {dev} has no available path: I/O fails' : 'NVMe multipath namespace {dev} has no usable path: I/O is requeued',
    ext: { action: failing ? 'failing I/O' : 'requeuing I/O' },
  };
  if (failing) f.severity = 'error';
  return f;
}

function parse(rec: ClassifiedRecord): ParseResult {
  let m = rec.message;
  if (m.length < 8 || m.length > MAX_LEN) return null;
  if (!m.startsWith('nvme')) return m.startsWith('block nvme') ? noPath(trimLineEnd(m)) : null;
  m = trimLineEnd(m);
  const c4 = m.charCodeAt(4);
  if (c4 === 32 /* space */) {
    const h = CTRL_HEAD.exec(m);
    return h ? controllerLine(h[1]!, m.slice(h[0].length)) : null;
  }
  if (c4 >= 48 && c4 <= 57) {
    const h = NS_HEAD.exec(m);
    if (!h) return null;
    const dev = h[1]!;
    const rest = m.slice(h[0].length);
    if (rest.startsWith('detected capacity change from ')) {
      const c = CAPACITY.exec(rest);
      if (!c) return null;
      return capacityChangeFinding({ printed: dev, name: dev }, c[1]!, c[2]!);
    }
    if (rest.indexOf(' @ LBA ') > 0) return ioError(dev, rest);
    return null;
  }
  if (m.endsWith(' callbacks suppressed')) return suppressedFinding(m);
  return null;
}

export const parser: Parser = { name: 'nvme', systems: ['nvme'], parse };
