import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classify } from '../../src/kmsg/classify.ts';
import type { KernelRecord } from '../../src/contracts/record.ts';

const rec = (message: string, subsystem = ''): KernelRecord => ({ level: 3, facility: 0, seq: 1, tsUsec: 1, flag: '-', message, subsystem, device: '' });

describe('classify', () => {
  const table: [string, string, string | null][] = [
    ['I/O error, dev loop0, sector 16384 op 0x0:(READ)', '', 'block'],
    ['blk_update_request: I/O error, dev sdb, sector 2048', '', 'block'],
    ['print_req_error: I/O error, dev sdc, sector 4096', '', 'block'],
    ['critical medium error, dev sdd, sector 123456', '', 'block'],
    ['Buffer I/O error on dev sdb1, logical block 0, async page read', '', 'block'],
    ['loop0: detected capacity change from 0 to 65536', '', 'block'],
    ['blk_print_req_error: 14 callbacks suppressed', '', 'block'],
    ['net_ratelimit: 14 callbacks suppressed', '', null],
    ['INFO: task jbd2/sdb1-8:345 blocked for more than 120 seconds.', '', 'block'],
    ['sd 2:0:0:0: [sdb] tag#0 FAILED Result: hostbyte=DID_OK', 'scsi', 'scsi'],
    ['sd 2:0:0:0: [sdb] Attached SCSI disk', '', 'scsi'],
    ['ata1.00: exception Emask 0x0 SAct 0x0 SErr 0x0 action 0x0', '', 'scsi'],
    ['sda: Current: sense key: Medium Error', '', 'scsi'],
    ['sdb: <<DEFERRED>> [descriptor]: sense key=0x3', '', 'scsi'],
    ['    Additional sense: Unrecovered read error - auto reallocate failed', '', 'scsi'],
    ['    ASC=0x42 ASCQ=0x0', '', 'scsi'],
    ['Sense Key : Medium Error [current]', '', 'scsi'],
    ['Add. Sense: Unrecovered read error', '', 'scsi'],
    ['eth0: Current: link speed 1000', '', null],
    ['    Additional info: none', '', null],
    ['SCSI device sda: drive cache: write back', '', null],
    ['SCSI error : <0 0 0 0> return code = 0x8000002', '', 'scsi'],
    ['scsi: Device offlined - not ready after error recovery: host 0 channel 0 id 0 lun 0', '', 'scsi'],
    ['scsi: waiting for bus probes to complete ...', '', null],
    ['nvme nvme0: I/O 123 QID 4 timeout, aborting', '', 'nvme'],
    ['nvme0n1: Read(0x2) @ LBA 2048, 8 blocks', '', 'nvme'],
    ['device-mapper: multipath: 253:0: Failing path 8:16.', '', 'multipath'],
    ['device-mapper: thin: 253:2: switching pool to read-only mode', '', 'lvm'],
    ['device-mapper: snapshots: Invalidating snapshot: Unable to allocate exception.', '', 'lvm'],
    ['device-mapper: raid1: Mirror read failed from 253:4.', '', 'dm'],
    ['md/raid1:md0: Disk failure on sdb1, disabling device.', '', 'mdraid'],
    ['md: md0: recovery done.', '', 'mdraid'],
    ['EXT4-fs error (device loop0): ext4_lookup:1789: inode #2', '', 'fs'],
    ['XFS (sdb1): log I/O error -5', '', 'fs'],
    ['BTRFS error (device sdb1): bdev /dev/sdb1 errs: wr 0, rd 1', '', 'fs'],
    ['Aborting journal on device sdb1-8.', '', 'fs'],
    ['JBD2: Error -5 detected when updating journal superblock for sdb1-8.', '', 'fs'],
    ['end_request: I/O error, dev 21:05 (hde), sector 159991808', '', 'block'],
    ['lost page write due to I/O error on md2', '', 'block'],
    ['Read-error on swap-device (254:1:849792)', '', 'block'],
    ['Write-error on swap-device (253:0:45704)', '', 'block'],
    ['Write error -5 on dio swapfile (4096)', '', 'block'],
    ['Write protecting the kernel read-only data: 20480k', '', null],
    ['mmcblk0: error -110 sending stop command, original cmd response 0x900, card status 0x900', '', 'block'],
    ['mmc0: Timeout waiting for hardware interrupt - cmd12.', '', null],
    ['loop: Write error at byte offset 1032134656, length 4096.', '', 'block'],
    ['bio too big device sdb1 (128 > 64)', '', 'block'],
    ['block nvme2n1: no available path - failing I/O', '', 'nvme'],
    ['block nvme6n1: no usable path - requeuing I/O', 'block', 'nvme'],
    ['block sda: the capability attribute has been deprecated.', 'block', 'block'],
    ['EXT4-fs error: 352 callbacks suppressed', '', 'block'],
    ['EXT4-fs (sda1): mounted filesystem with ordered data mode', '', 'fs'],
    ['usb 1-1: new high-speed USB device number 2 using xhci_hcd', '', null],
    ['e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex', '', null],
    ['random text', 'pci', null],
    ['', '', null],
  ];
  for (const [msg, sub, want] of table) {
    it(`${JSON.stringify(msg.slice(0, 60))} → ${want}`, () => assert.equal(classify(rec(msg, sub)), want));
  }
});
