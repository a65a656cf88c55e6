// The event catalog (docs/events.md §3): every event type, its system, its elos
// messageCode and classification, and the severity floor a parser applies
// when the kernel logs a fault at a lower level than it deserves.
//
// messageCode ranges follow docs/events.md §3: 6001 device read error, 6002 device
// write error, 6000-6999 other hardware faults; 7003 device added, 7004
// removed, 7000-7999 status changes. I/O error types carry a fallback code
// used when the operation is neither a read nor a write (see messageCodeOf).
import type { Severity, System } from './schema.ts';

interface CatalogEntry {
  system: System;
  messageCode: number;
  /** a hardware fault (sets the elos HARDWARE classification bit) */
  hardware: boolean;
  /** the severity at least (a SCSI Medium Error is logged at level 6) */
  floor?: Severity;
  /** an I/O error whose messageCode is 6001/6002 when the op is known */
  io?: true;
  description: string;
}

const e = (system: System, messageCode: number, hardware: boolean, description: string,
  extra: Partial<Pick<CatalogEntry, 'floor' | 'io'>> = {}): CatalogEntry => ({ system, messageCode, hardware, description, ...extra });

export const CATALOG = {
  // block
  BLK_IO_ERROR: e('block', 6003, true, 'the block layer failed a request', { floor: 'error', io: true }),
  BLK_BUFFER_IO_ERROR: e('block', 6004, true, 'a buffer-cache read or write failed', { floor: 'error', io: true }),
  BLK_CAPACITY_CHANGE: e('block', 7006, false, 'the size of a block device changed'),
  BLK_TASK_HUNG: e('block', 6010, false, 'a task waited on I/O longer than the hung-task timeout', { floor: 'error' }),
  BLK_DEVICE_ADDED: e('block', 7003, false, 'a block device appeared'),
  BLK_DEVICE_REMOVED: e('block', 7004, false, 'a block device went away'),
  BLK_DEVICE_CHANGED: e('block', 7005, false, 'a block device changed (media, size, binding)'),
  KERNEL_LOG_SUPPRESSED: e('block', 7001, false, 'the kernel rate limiter dropped storage messages', { floor: 'warn' }),
  KMSG_OVERRUN: e('block', 7002, false, 'kernel records were overwritten before the agent read them', { floor: 'warn' }),
  // scsi and libata
  SCSI_CMD_FAILED: e('scsi', 6100, true, 'a SCSI command failed'),
  SCSI_MEDIUM_ERROR: e('scsi', 6101, true, 'the disk reported a medium error (unreadable sector)', { floor: 'error' }),
  SCSI_HARDWARE_ERROR: e('scsi', 6102, true, 'the disk reported a hardware error', { floor: 'error' }),
  SCSI_SENSE_KEY: e('scsi', 6103, true, 'the disk returned sense data'),
  SCSI_ADDITIONAL_SENSE_CODE: e('scsi', 6104, true, 'the additional sense code of a failed command'),
  SCSI_DEVICE_OFFLINE: e('scsi', 7100, true, 'the SCSI device is offline', { floor: 'error' }),
  SCSI_TIMEOUT: e('scsi', 6105, true, 'a SCSI command timed out', { floor: 'error' }),
  SCSI_DISK_ATTACHED: e('scsi', 7003, false, 'a SCSI disk was attached'),
  SCSI_DISK_DETACHING: e('scsi', 7004, false, 'a SCSI disk is being detached (cache synchronized)'),
  SCSI_SPINNING_UP_DISK: e('scsi', 7102, false, 'the disk is spinning up'),
  SCSI_UNALIGNED_PARTIAL_COMPLETION: e('scsi', 6106, true, 'a command completed partially, not on a sector boundary', { floor: 'warn' }),
  ATA_ERROR: e('scsi', 6150, true, 'the ATA device reported an exception', { floor: 'error' }),
  // warn, not error: at every boot libata prints "SATA link down" for each empty port (at info level).
  ATA_LINK_DOWN: e('scsi', 6151, true, 'the SATA link went down', { floor: 'warn' }),
  ATA_LINK_RESET: e('scsi', 6152, true, 'the ATA link is being reset', { floor: 'warn' }),
  ATA_LINK_UP: e('scsi', 7150, false, 'the SATA link came up'),
  // nvme
  NVME_IO_TIMEOUT: e('nvme', 6200, true, 'an NVMe command timed out', { floor: 'warn' }),
  NVME_CONTROLLER_RESET: e('nvme', 6201, true, 'the NVMe controller is being reset', { floor: 'warn' }),
  NVME_DEVICE_REMOVED: e('nvme', 7004, true, 'the NVMe controller was removed', { floor: 'error' }),
  NVME_IO_ERROR: e('nvme', 6005, true, 'an NVMe command returned an error status', { floor: 'error', io: true }),
  // multipath
  DM_MPATH_PATH_FAILED: e('multipath', 6300, true, 'a path of a multipath device failed', { floor: 'warn' }),
  DM_MPATH_PATH_REINSTATED: e('multipath', 7200, false, 'a failed path of a multipath device is back'),
  DM_MPATH_QUEUE_TIMEOUT: e('multipath', 6301, true, 'no path came back in time: queued I/O fails', { floor: 'error' }),
  // lvm (device-mapper thin and snapshot targets)
  LVM_THIN_LOW_WATER_MARK: e('lvm', 7300, false, 'a thin pool reached its low water mark', { floor: 'warn' }),
  LVM_THIN_OUT_OF_SPACE: e('lvm', 7301, false, 'a thin pool ran out of data space', { floor: 'error' }),
  LVM_THIN_READ_ONLY: e('lvm', 7302, false, 'a thin pool switched to read-only mode', { floor: 'error' }),
  LVM_THIN_FAIL: e('lvm', 7303, false, 'a thin pool switched to fail mode', { floor: 'error' }),
  LVM_SNAPSHOT_INVALIDATED: e('lvm', 7304, false, 'a snapshot was invalidated', { floor: 'error' }),
  // other device-mapper targets
  DM_DIRTY_LOG_READ_FAILED: e('dm', 6310, true, 'a mirror dirty region log could not be read', { floor: 'error' }),
  DM_DIRTY_LOG_WRITE_FAILED: e('dm', 6311, true, 'a mirror dirty region log could not be written', { floor: 'error' }),
  DM_MIRROR_READ_FAILED: e('dm', 6312, true, 'a mirror leg failed a read', { floor: 'error' }),
  DM_MIRROR_DEVICE_FAILED: e('dm', 6313, true, 'a mirror leg failed', { floor: 'error' }),
  DM_TABLE_ERROR: e('dm', 6314, false, 'a device-mapper table could not be loaded', { floor: 'error' }),
  // md raid
  MD_DISK_FAILURE: e('mdraid', 6400, true, 'an array member failed and was disabled', { floor: 'error' }),
  MD_ARRAY_DEGRADED: e('mdraid', 7400, false, 'the array runs degraded', { floor: 'warn' }),
  MD_RECOVERY_STARTED: e('mdraid', 7401, false, 'the array started recovery onto a spare'),
  MD_RECOVERY_DONE: e('mdraid', 7402, false, 'the array finished recovery'),
  MD_RECOVERY_INTERRUPTED: e('mdraid', 7406, false, 'the array recovery was interrupted', { floor: 'warn' }),
  MD_RESYNC_DONE: e('mdraid', 7403, false, 'the array finished resync'),
  MD_CHECK_DONE: e('mdraid', 7404, false, 'the array finished a data check'),
  MD_READ_ERROR_CORRECTED: e('mdraid', 6402, true, 'the array corrected a read error from redundancy', { floor: 'warn' }),
  MD_READ_ERROR_NOT_CORRECTABLE: e('mdraid', 6401, true, 'the array could not correct a read error', { floor: 'error' }),
  MD_DISK_KICKED: e('mdraid', 7405, false, 'a stale member was kicked from the array', { floor: 'warn' }),
  // filesystems
  FS_MOUNTED: e('fs', 7500, false, 'a filesystem was mounted'),
  FS_UNMOUNTED: e('fs', 7501, false, 'a filesystem was unmounted'),
  FS_ERROR: e('fs', 6500, false, 'the filesystem detected an error', { floor: 'error' }),
  FS_IO_ERROR: e('fs', 6006, true, 'the filesystem got an I/O error from its device', { floor: 'error', io: true }),
  FS_REMOUNT_READ_ONLY: e('fs', 7502, false, 'the filesystem was remounted read-only after an error', { floor: 'error' }),
  FS_SHUTDOWN: e('fs', 6502, false, 'the filesystem shut down', { floor: 'error' }),
  FS_CORRUPTION: e('fs', 6501, false, 'the filesystem found corrupt metadata', { floor: 'error' }),
  FS_JOURNAL_ABORTED: e('fs', 6503, false, 'the filesystem journal was aborted', { floor: 'error' }),
  FS_WARNING: e('fs', 7503, false, 'the filesystem logged a warning', { floor: 'warn' }),
} as const satisfies Record<string, CatalogEntry>;

export type EventType = keyof typeof CATALOG;
export const EVENT_TYPES = Object.keys(CATALOG) as EventType[];

export function isEventType(s: string): s is EventType {
  return Object.hasOwn(CATALOG, s);
}

export const MESSAGE_CODE_READ_ERROR = 6001;
export const MESSAGE_CODE_WRITE_ERROR = 6002;

/** The elos messageCode of an event: I/O error types split by `extentions.op`. */
export function messageCodeOf(eventType: string, op: string | undefined): number {
  if (!isEventType(eventType)) return 0;
  const entry: CatalogEntry = CATALOG[eventType];
  if (entry.io && op) {
    const o = op.toUpperCase();
    if (o === 'READ' || o.startsWith('READ')) return MESSAGE_CODE_READ_ERROR;
    if (o === 'WRITE' || o.startsWith('WRITE')) return MESSAGE_CODE_WRITE_ERROR;
  }
  return entry.messageCode;
}
