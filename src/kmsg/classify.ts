// Cheap classification of a raw kernel record into a storage system, so the
// bus can route it to the parsers that want it (filter_system). Records of no
// storage system stop here. Order: the record's SUBSYSTEM/DEVICE dictionary,
// then the message prefix. No regex on the common path.
import type { System } from '../events/schema.ts';
import type { KernelRecord } from '../contracts/record.ts';

const BY_SUBSYSTEM: Record<string, System> = {
  scsi: 'scsi',
  scsi_disk: 'scsi',
  scsi_device: 'scsi',
  scsi_host: 'scsi',
  ata_port: 'scsi',
  ata_link: 'scsi',
  ata_device: 'scsi',
  nvme: 'nvme',
  'nvme-subsystem': 'nvme',
  block: 'block',
};

// Rate-limited kernel functions whose "N callbacks suppressed" lines mean lost storage messages.
const SUPPRESSED_STORAGE = /^(?:blk_|print_req_error|buffer_io_error|end_buffer_|__?ext4|ext4|jbd2|xfs|btrfs|md_|raid|dm_|multipath|scsi|sd_|sr_|ata|nvme|loop_)/;

/** What the block layer's request error printer puts after the status: `<status> error, dev X, sector`. */
const STATUS_MARK = ' error, dev ';

/**
 * A SCSI sense line printed without its device prefix: 3.x split records
 * (`Sense Key : …`, `Add. Sense: …`) and the indented 2.6 `Additional sense: …`,
 * `ASC=0x42 ASCQ=0x0`.
 */
function isScsiSensePart(m: string): boolean {
  let i = 0;
  while (i < 16 && (m.charCodeAt(i) === 32 || m.charCodeAt(i) === 9)) i++;
  return m.startsWith('Sense Key : ', i) || m.startsWith('Add. Sense: ', i) || m.startsWith('Additional sense: ', i) ||
    m.startsWith('ASC=0x', i) || m.startsWith('<<vendor>>', i);
}

/** `device-mapper: <target>: …`: multipath, LVM's targets (thin, snapshot, cache and the persistent-data library under them), or dm. */
function deviceMapper(m: string): System {
  if (m.startsWith('multipath', 15)) return 'multipath';
  if (m.startsWith('thin', 15) || m.startsWith('snapshot', 15) || m.startsWith('cache', 15)) return 'lvm';
  if (m.startsWith('space map ', 15) || m.startsWith('btree spine', 15) || m.startsWith('block manager', 15)) return 'lvm';
  return 'dm';
}

function byPrefix(m: string): System | null {
  switch (m.charCodeAt(0)) {
    case 66: // B
      if (m.startsWith('Buffer I/O error')) return 'block';
      if (m.startsWith('BTRFS')) return 'fs';
      break;
    case 69: // E
      // `EXT4-fs error: 352 callbacks suppressed`: ext4's rate limiter, counted like the others
      if (m.startsWith('EXT4-fs')) return m.endsWith(' callbacks suppressed') ? 'block' : 'fs';
      if (m.startsWith('EXT3-fs') || m.startsWith('EXT2-fs')) return 'fs';
      if (m.startsWith('Ending clean XFS mount')) return 'fs';
      break;
    case 70: // F: 2.6 XFS `Filesystem "dm-1": …`
      if (m.startsWith('Filesystem "')) return 'fs';
      break;
    case 120: // x: 2.6 `xfs_force_shutdown(sda2,0x2) called from …`
      if (m.startsWith('xfs_force_shutdown(')) return 'fs';
      break;
    case 88: // X
      if (m.startsWith('XFS')) return 'fs';
      break;
    case 74: // J
      if (m.startsWith('JBD2')) return 'fs';
      break;
    case 65: // A
      if (m.startsWith('Aborting journal on device')) return 'fs';
      // 2.5–2.6.1x sd/sr: `Attached scsi removable disk sda at scsi1, channel 0, id 6, lun 0`
      if (m.startsWith('Attached scsi ') || isScsiSensePart(m)) return 'scsi';
      break;
    case 83: // S
      if (m.startsWith('SCSI error : <') || isScsiSensePart(m)) return 'scsi';
      break;
    case 60: // <
    case 32: // space
    case 9: // tab
      if (isScsiSensePart(m)) return 'scsi';
      // a lone md `Operation continuing on N devices` (syslog indents it)
      if (m.charCodeAt(0) !== 60 && m.trimStart().startsWith('Operation continuing on ')) return 'mdraid';
      break;
    case 73: // I
      if (m.startsWith('INFO: task ')) return 'block';
      if (m.startsWith('I/O error in filesystem (')) return 'fs';
      break;
    case 100: // d
      if (m.startsWith('device-mapper: ')) return deviceMapper(m);
      break;
    case 109: // m
      if (m.startsWith('md/') || m.startsWith('md: ') || /^md\d+: /.test(m)) return 'mdraid';
      if (m.startsWith('mmcblk')) return 'block';
      break;
    case 98: // b: a dev_printk on an NVMe multipath disk (`block nvme2n1: no usable path …`), ≤ 4.2 `bio too big device sdb1 (…)`
      if (m.startsWith('block nvme')) return 'nvme';
      if (m.startsWith('bio too big device ')) return 'block';
      // 3.x `btrfs: …`, `btrfs csum failed …` (not `btrfs_…: N callbacks suppressed`)
      if (m.startsWith('btrfs:') || m.startsWith('btrfs ')) return 'fs';
      break;
    case 82: // R
      if (m.startsWith('Read-error on swap-device')) return 'block';
      break;
    case 87: // W
      if (m.startsWith('Write-error on swap-device') || (m.startsWith('Write error ') && m.indexOf(' on dio swapfile (') > 0)) return 'block';
      break;
    case 108: // l
      if (m.startsWith('loop: ') || m.startsWith('lost page write due to I/O error on ')) return 'block';
      break;
    case 114: // r: 2.4/2.6 md personalities, `raid5: …`, `raid10:md2: …`
      if (m.startsWith('raid') && m.charCodeAt(4) >= 49 && m.charCodeAt(4) <= 54) return 'mdraid';
      break;
    case 79: // O: the second line of a 2.4/2.6 raid1/raid10 failure, alone (indented: see case 32)
      if (m.startsWith('Operation continuing on ')) return 'mdraid';
      break;
    case 115: // s
      if (m.startsWith('sd ') || m.startsWith('scsi ') || m.startsWith('sr ') || m.startsWith('scsi_')) return 'scsi';
      if (m.startsWith('scsi: Device offlined')) return 'scsi';
      break;
    case 97: // a
      if (m.startsWith('ata') && m.charCodeAt(3) >= 48 && m.charCodeAt(3) <= 57) return 'scsi';
      break;
    case 110: // n
      if (m.startsWith('nvme')) return 'nvme';
      break;
  }
  // where ` error, dev ` first occurs, searched once: a status line at the start or after `<prefix>: `
  const statusAt = m.indexOf(STATUS_MARK);
  if (statusAt > 0 && statusAt < 60) return 'block';
  const colon = m.indexOf(': ');
  if (colon > 0 && colon < 48) {
    // what follows `<prefix>: `, read in place: most records end here unclassified, and a slice of each cost an allocation
    const r = colon + 2;
    if (m.startsWith('detected capacity change', r)) return 'block';
    if (m.startsWith('Current', r) || m.startsWith('<<DEFERRED>>', r)) return m.indexOf(': sense key', r) > r ? 'scsi' : null;
    // 2.5–2.6.1x sd: `sda : READ CAPACITY failed.`
    if (m.startsWith('READ CAPACITY', r) && m.charCodeAt(colon - 1) === 32) return 'scsi';
    if (m.length - r >= 20 && m.endsWith('callbacks suppressed') && SUPPRESSED_STORAGE.test(m)) return 'block';
    if (m.startsWith('I/O error, dev', r)) return 'block';
    if (statusAt >= 0) {
      // the first occurrence at or after r: the one found above unless that lies before r
      const at = statusAt >= r ? statusAt : m.indexOf(STATUS_MARK, r);
      if (at > r && at < r + 60) return 'block';
    }
    // a device-mapper line behind another module's prefix (`trusted_key: device-mapper: crypt: …`)
    if (m.startsWith('device-mapper: ', r)) return deviceMapper(m.slice(r));
  }
  return null;
}

export function classify(rec: KernelRecord): System | null {
  if (rec.subsystem !== '') {
    const s = BY_SUBSYSTEM[rec.subsystem];
    // the namespace head's disk carries SUBSYSTEM=block, its messages are NVMe multipath's
    if (s) return s === 'block' && rec.message.startsWith('block nvme') ? 'nvme' : s;
  }
  return byPrefix(rec.message);
}
