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
  BLK_MMC_ERROR: e('block', 6011, true, 'the MMC/SD host reported a failed command on a card', { floor: 'error' }),
  BLK_SWAP_IO_ERROR: e('block', 6012, true, 'swap could not read or write a page on its device', { floor: 'error', io: true }),
  BLK_LOOP_IO_ERROR: e('block', 6013, false, 'a loop device failed I/O on its backing file', { floor: 'error', io: true }),
  BLK_BIO_TOO_BIG: e('block', 6014, false, 'a request was larger than the device accepts', { floor: 'error' }),
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
  ATA_RESET_FAILED: e('scsi', 6153, true, 'resetting the ATA link failed', { floor: 'error' }),
  ATA_DEVICE_DISABLED: e('scsi', 6154, true, 'libata gave up on the ATA device and disabled it', { floor: 'error' }),
  // nvme
  NVME_IO_TIMEOUT: e('nvme', 6200, true, 'an NVMe command timed out', { floor: 'warn' }),
  NVME_CONTROLLER_RESET: e('nvme', 6201, true, 'the NVMe controller is being reset', { floor: 'warn' }),
  NVME_DEVICE_REMOVED: e('nvme', 7004, true, 'the NVMe controller was removed', { floor: 'error' }),
  NVME_IO_ERROR: e('nvme', 6005, true, 'an NVMe command returned an error status', { floor: 'error', io: true }),
  NVME_RESET_FAILED: e('nvme', 6202, true, 'resetting or initialising the NVMe controller failed', { floor: 'error' }),
  NVME_NO_PATH: e('nvme', 6203, true, 'an NVMe multipath namespace has no usable path (I/O requeued or failed)', { floor: 'warn' }),
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
  LVM_THIN_METADATA_ERROR: e('lvm', 7305, false, 'a thin pool\'s metadata failed (transaction aborted, btree check failed)', { floor: 'error' }),
  LVM_THIN_METADATA_OUT_OF_SPACE: e('lvm', 7306, false, 'a thin pool ran out of metadata space', { floor: 'error' }),
  LVM_SNAPSHOT_MERGE_FAILED: e('lvm', 7307, false, 'a snapshot could not be merged back into its origin', { floor: 'error' }),
  // other device-mapper targets
  DM_DIRTY_LOG_READ_FAILED: e('dm', 6310, true, 'a mirror dirty region log could not be read', { floor: 'error' }),
  DM_DIRTY_LOG_WRITE_FAILED: e('dm', 6311, true, 'a mirror dirty region log could not be written', { floor: 'error' }),
  DM_MIRROR_READ_FAILED: e('dm', 6312, true, 'a mirror leg failed a read', { floor: 'error' }),
  DM_MIRROR_DEVICE_FAILED: e('dm', 6313, true, 'a mirror leg failed', { floor: 'error' }),
  DM_TABLE_ERROR: e('dm', 6314, false, 'a device-mapper table could not be loaded', { floor: 'error' }),
  DM_VERITY_CORRUPTION: e('dm', 6315, false, 'dm-verity found a data or hash block that does not match its hash', { floor: 'error' }),
  DM_INTEGRITY_ERROR: e('dm', 6316, false, 'dm-integrity or dm-crypt (AEAD) found a block whose integrity tag does not match', { floor: 'error' }),
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
  MD_SUPERBLOCK_WRITE_FAILED: e('mdraid', 6403, true, 'writing the array superblock to a member failed', { floor: 'error' }),
  MD_INVALID_SUPERBLOCK: e('mdraid', 7407, false, 'a member device has no valid md superblock', { floor: 'warn' }),
  MD_ARRAY_FAILED: e('mdraid', 6404, false, 'the array could not be started or has failed', { floor: 'error' }),
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
  FS_MOUNT_FAILED: e('fs', 6504, false, 'mounting the filesystem failed (journal, log recovery or tree roots unreadable)', { floor: 'error' }),
  FS_ERRORS_RECORDED: e('fs', 7504, false, 'the superblock records errors from earlier (error count since the last fsck)', { floor: 'warn' }),
  FS_READ_ERROR_CORRECTED: e('fs', 6505, true, 'the filesystem repaired a bad read from a redundant copy', { floor: 'warn' }),
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
