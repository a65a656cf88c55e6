// What a parser sees and what it returns. Parsers are pure: a classified
// kernel record in, a Finding (a synthetic event before device resolution),
// a Context (a follow-up line that enriches an earlier finding) or null out.
// Device resolution, ids and timestamps are added later by the synthesizer.
import type { EventType } from '../events/catalog.ts';
import type { Severity, System } from '../events/schema.ts';
import type { KernelRecord } from './record.ts';

/** A kernel record with the system its cheap classification gave it. */
export interface ClassifiedRecord extends KernelRecord {
  system: System;
}

/**
 * A device as the kernel named it. The resolver tries, in order: `name`,
 * `hctl`, `majmin`, `holderOf`; `printed` is kept as `extentions.kernel_dev`
 * and becomes `dev_name` when nothing resolves.
 */
export interface DeviceRef {
  /** exactly as the kernel printed it: `sdb`, `253:0`, `2:0:0:0`, `ata1.00`, `sdb1-8` */
  printed: string;
  /** a kernel block device name: `sdb`, `sdb1`, `dm-0`, `md0`, `nvme0n1`, `loop0` */
  name?: string;
  /** `major:minor` of a block device */
  majmin?: string;
  /** SCSI address `H:C:T:L` */
  hctl?: string;
  /** `major:minor` of a path device: the device is the dm map holding it */
  holderOf?: string;
  /** a filesystem UUID printed in the message */
  fsUuid?: string;
  /**
   * What the message says the device is: `dm` when it names a device-mapper
   * device (`device-mapper: multipath: 253:0: …`). A resolved device of
   * another kind (here 253:0 may be zram0) is not taken: the ref stays as printed.
   */
  kind?: 'dm';
}

export interface Finding {
  type: EventType;
  /** the device the event is about; null when the kernel names none */
  device: DeviceRef | null;
  /**
   * Other devices the event mentions: `extentions[key]` gets the friendly name
   * and `extentions[key + "_wwid"]` the wwid (multipath `path`, md `member`).
   */
  related?: Record<string, DeviceRef>;
  /**
   * One human sentence. `{dev}` and `{<related key>}` are replaced by the
   * resolved friendly names.
   */
  msg: string;
  ext: Record<string, string>;
  /** raise the severity above what the kernel level and the catalog floor give */
  severity?: Severity;
  /**
   * Hold this finding briefly under this key: follow-up lines (a SCSI `CDB:`,
   * libata's `failed command:`) returned as Context with the same key enrich
   * it instead of becoming events of their own.
   */
  hold?: string;
}

export interface Context {
  /** the `hold` key of the finding this line belongs to */
  context: string;
  /** merged into the held finding's extentions (a repeated key is appended with "; ") */
  ext: Record<string, string>;
  /** started (and held) when nothing is held under the key: e.g. an ATA `error:` line whose exception line was lost */
  orphan?: Finding;
}

export type ParseResult = Finding | Context | null;

export interface Parser {
  /** implementation name, the `plugin` of a parser section */
  readonly name: string;
  /** the systems routed to this parser unless `filter_system` says otherwise */
  readonly systems: readonly System[];
  parse(rec: ClassifiedRecord): ParseResult;
}

export function isContext(r: ParseResult): r is Context {
  return r !== null && 'context' in r;
}
