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
    ['nvme nvme0: I/O 123 QID 4 timeout, aborting', '', 'nvme'],
    ['nvme0n1: Read(0x2) @ LBA 2048, 8 blocks', '', 'nvme'],
    ['device-mapper: multipath: 253:0: Failing path 8:16.', '', 'multipath'],
    ['device-mapper: thin: 253:2: switching pool to read-only mode', '', 'lvm'],
    ['device-mapper: snapshots: Invalidating snapshot: Unable to allocate exception.', '', 'lvm'],
    ['device-mapper: raid1: Mirror read failed from 253:4.', '', 'dm'],
    ['md/raid1:md0: Disk failure on sdb1, disabling device.', '', 'mdraid'],
    ['md: md0: recovery done.', '', 'mdraid'],
    ['raid5: Disk failure on hde5, disabling device. Operation continuing on 5 devices', '', 'mdraid'],
    ['raid10:md2: read error corrected (8 sectors at 2048 on sdd1)', '', 'mdraid'],
    ['       Operation continuing on 1 devices', '', 'mdraid'],
    ['raided: not md', '', null],
    ['device-mapper: btree spine: node_check failed: node is neither INTERNAL or LEAF', '', 'lvm'],
    ['device-mapper: space map metadata: unable to allocate new metadata block', '', 'lvm'],
    ['device-mapper: block manager: btree_node validator check failed for block 146', '', 'lvm'],
    ['device-mapper: verity: 202:3: data block 0 is corrupted', '', 'dm'],
    ['trusted_key: device-mapper: crypt: dm-0: INTEGRITY AEAD ERROR, sector 0', '', 'dm'],
    ['EXT4-fs error (device loop0): ext4_lookup:1789: inode #2', '', 'fs'],
    ['XFS (sdb1): log I/O error -5', '', 'fs'],
    ['BTRFS error (device sdb1): bdev /dev/sdb1 errs: wr 0, rd 1', '', 'fs'],
    ['Aborting journal on device sdb1-8.', '', 'fs'],
    ['JBD2: Error -5 detected when updating journal superblock for sdb1-8.', '', 'fs'],
    ['usb 1-1: new high-speed USB device number 2 using xhci_hcd', '', null],
    ['e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex', '', null],
    ['random text', 'pci', null],
    ['', '', null],
  ];
  for (const [msg, sub, want] of table) {
    it(`${JSON.stringify(msg.slice(0, 60))} → ${want}`, () => assert.equal(classify(rec(msg, sub)), want));
  }
});
