// dm-multipath (drivers/md/dm-mpath.c): path failures and reinstatements,
// and the queue_if_no_path timeout. Every line starts `device-mapper: multipath`.
//
// Kernel formats (DM_MSG_PREFIX "multipath"; the map is dm_device_name(),
// which is the map's `major:minor`, not its dm name):
//   ≥ 5.x   `device-mapper: multipath: 253:0: Failing path 8:16.`
//           `device-mapper: multipath: 253:0: Reinstating path 8:16.`
//   ≤ 4.x   `device-mapper: multipath: Failing path 8:16.` (no map: the map
//           is found through the path's holders)
//   2.6.x   `device-mapper: multipath: dm-multipath: Failing path 8:16.`
//   ≥ 5.8   `device-mapper: multipath: queue_if_no_path timeout on 253:0, failing queued IO`
//           (and the form `253:0: queue_if_no_path timeout, failing queued IO`)
// Path selectors log as `device-mapper: multipath round-robin: …` (module
// loaded, bad arguments): no event. `Could not failover the device: Handler
// scsi_dh_alua Error 15.` is always followed by the `Failing path` line of
// the same path (pg_init_done → fail_path), which carries the devices: no
// event of its own, so a path failure is counted once.
import { trimLineEnd } from './common.ts';
import type { ClassifiedRecord, DeviceRef, Finding, Parser, ParseResult } from '../contracts/parser.ts';
import { dmMessage } from './dm.ts';

const PREFIX = 'device-mapper: multipath';
const MAJMIN = /^\d{1,10}:\d{1,10}$/;
/** `<map>: ` at the start of the body (`253:0: `, or a dm name) */
const MAP_PREFIX = /^(\d{1,10}:\d{1,10}|[^\s:]{1,128}): /;
const PATH_EVENT = /^(Failing|Reinstating) path (\S{1,128}?)\.?$/;
const QUEUE_TIMEOUT_ON = /^queue_if_no_path timeout on (\S{1,128}?)(?:, failing queued IO)?\.?$/;
const QUEUE_TIMEOUT = /^queue_if_no_path timeout(?:, failing queued IO)?\.?$/;

function ref(printed: string): DeviceRef {
  if (MAJMIN.test(printed)) return { printed, majmin: printed };
  if (printed.startsWith('dm-')) return { printed, name: printed };
  return { printed };
}

/** The map: as printed when the kernel names it, else the holder of the path. */
function mapRef(map: string | null, path: DeviceRef): DeviceRef {
  if (map === null) return { printed: path.printed, ...(path.majmin ? { holderOf: path.majmin } : {}) };
  const r = ref(map);
  // a dm name (not a kernel name): the resolver can still find the map above the path
  if (r.majmin === undefined && r.name === undefined && path.majmin) r.holderOf = path.majmin;
  return r;
}

function parseBody(body: string): Finding | null {
  let map: string | null = null;
  let rest = body;
  if (rest.startsWith('dm-multipath: ')) rest = rest.slice(14);
  // the body starts with an upper-case letter (`Failing`, `Reinstating`) unless a map prefix is there
  const c = rest.charCodeAt(0);
  if (c !== 70 /* F */ && c !== 82 /* R */ && c !== 113 /* q */) {
    const m = MAP_PREFIX.exec(rest);
    if (!m) return null;
    map = m[1]!;
    rest = rest.slice(m[0].length);
  }
  const first = rest.charCodeAt(0);
  if (first === 70 || first === 82) {
    const m = PATH_EVENT.exec(rest);
    if (!m) return null;
    const path = ref(m[2]!);
    const failed = m[1] === 'Failing';
    const ext: Record<string, string> = { path_kernel_dev: path.printed };
    if (map !== null) ext.map = map;
    return {
      type: failed ? 'DM_MPATH_PATH_FAILED' : 'DM_MPATH_PATH_REINSTATED',
      device: mapRef(map, path),
      related: { path },
      msg: failed ? 'Multipath map {dev}: path {path} failed' : 'Multipath map {dev}: path {path} reinstated',
      ext,
    };
  }
  if (first === 113 /* q */ && rest.startsWith('queue_if_no_path timeout')) {
    let target = map;
    const on = QUEUE_TIMEOUT_ON.exec(rest);
    if (on) target = on[1]!;
    else if (!QUEUE_TIMEOUT.test(rest)) return null;
    if (target === null) return null;
    return {
      type: 'DM_MPATH_QUEUE_TIMEOUT',
      device: ref(target),
      msg: 'Multipath map {dev}: no path came back before the queue_if_no_path timeout; queued I/O is failed',
      ext: { map: target },
    };
  }
  return null;
}

function parse(rec: ClassifiedRecord): ParseResult {
  const m = dmMessage(rec.message);
  if (m === null || !m.startsWith(PREFIX)) return null;
  // `device-mapper: multipath: …` is the target; `device-mapper: multipath <selector>: …` a path selector
  if (m.charCodeAt(PREFIX.length) !== 58 /* : */ || m.charCodeAt(PREFIX.length + 1) !== 32) return null;
  let body = m.slice(PREFIX.length + 2);
  if (body.length > 512) return null;
  body = trimLineEnd(body);
  return parseBody(body);
}

export const parser: Parser = { name: 'multipath', systems: ['multipath'], parse };
