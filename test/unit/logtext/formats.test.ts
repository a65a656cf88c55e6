import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bareRecord, isoToUs, parseTextLine, type TextContext, type TextLine } from '../../../src/logtext/formats.ts';
import { readText } from '../../../src/logtext/reader.ts';

// Local times read as UTC, so the expectations do not depend on the machine's zone.
const ctx: TextContext = { year: 2021, localToUs: (y, mo, d, h, mi, s) => Date.UTC(y, mo, d, h, mi, s) * 1000 };
const at = (iso: string): number => Date.parse(iso) * 1000;

function kernel(line: string): { format: string; level: number; facility: number; tsUsec: number; message: string; host: string | null; wallUs: number | null } {
  const r: TextLine = parseTextLine(line, ctx);
  assert.equal(r.kind, 'kernel', `not read as a kernel line: ${line}`);
  if (r.kind !== 'kernel') throw new Error('unreachable');
  const { format, record, host, wallUs } = r.value;
  return { format, level: record.level, facility: record.facility, tsUsec: record.tsUsec, message: record.message, host, wallUs };
}

const MSG = 'sd 2:0:0:0: [sdb] tag#0 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_SENSE';

describe('parseTextLine: each format keeps its message, level, host and time', () => {
  const cases: [string, string, Partial<ReturnType<typeof kernel>>][] = [
    ['dmesg', `[  613.524384] ${MSG}`, { format: 'dmesg', tsUsec: 613_524_384, level: -1, host: null, wallUs: null }],
    ['dmesg -r', `<3>[  613.524384] ${MSG}`, { format: 'dmesg', tsUsec: 613_524_384, level: 3 }],
    ['dmesg -x', `kern  :err   : [  613.524384] ${MSG}`, { format: 'dmesg', tsUsec: 613_524_384, level: 3, facility: 0 }],
    ['dmesg caller id', `[  613.524384] [ T5607] ${MSG}`, { format: 'dmesg', tsUsec: 613_524_384 }],
    ['console caller id', `[  613.524384][  T5607] ${MSG}`, { format: 'dmesg', tsUsec: 613_524_384 }],
    ['dmesg -x caller id', `kern  :err   : [    1.200000] [   C1] ${MSG}`, { format: 'dmesg', level: 3, tsUsec: 1_200_000 }],
    ['dmesg -T', `[Mon Nov 22 10:00:01 2021] ${MSG}`, { format: 'dmesg-ctime', wallUs: at('2021-11-22T10:00:01Z') }],
    ['dmesg -T -x', `kern  :warn  : [Mon Nov 22 10:00:01 2021] ${MSG}`, { format: 'dmesg-ctime', level: 4 }],
    ['dmesg --time-format iso', `2021-11-22T10:00:01,123456+01:00 ${MSG}`, { format: 'dmesg-iso', wallUs: at('2021-11-22T09:00:01.123Z') + 456 }],
    ['dmesg -H', `[Nov22 10:00] ${MSG}`, { format: 'dmesg-human', wallUs: at('2021-11-22T10:00:00Z') }],
    ['journalctl -k', `Nov 22 10:00:01 node-7 kernel: ${MSG}`, { format: 'syslog', host: 'node-7', wallUs: at('2021-11-22T10:00:01Z'), tsUsec: -1 }],
    ['journalctl -k, one-digit day', `Nov  2 10:00:01 node-7 kernel: ${MSG}`, { format: 'syslog', wallUs: at('2021-11-02T10:00:01Z') }],
    ['short-precise', `Nov 22 10:00:01.123456 node-7 kernel: ${MSG}`, { format: 'syslog', wallUs: at('2021-11-22T10:00:01.123Z') + 456 }],
    ['short-iso', `2021-11-22T10:00:01+0100 node-7 kernel: ${MSG}`, { format: 'syslog-iso', host: 'node-7', wallUs: at('2021-11-22T09:00:01Z') }],
    ['short-iso-precise', `2021-11-22T10:00:01.654321+01:00 node-7 kernel: ${MSG}`, { format: 'syslog-iso', wallUs: at('2021-11-22T09:00:01.654Z') + 321 }],
    ['short-full', `Mon 2021-11-22 10:00:01 UTC node-7 kernel: ${MSG}`, { format: 'journal-full', host: 'node-7', wallUs: at('2021-11-22T10:00:01Z') }],
    ['short-monotonic', `[  613.524384] node-7 kernel: ${MSG}`, { format: 'journal-monotonic', host: 'node-7', tsUsec: 613_524_384 }],
    ['kern.log with kernel time', `Nov 22 10:00:01 node-7 kernel: [  613.524384] ${MSG}`, { format: 'syslog', host: 'node-7', tsUsec: 613_524_384 }],
    ['messages without host', `Nov 22 10:00:01 kernel: ${MSG}`, { format: 'syslog', host: null }],
    ['messages without host, kernel time', `Nov 22 10:00:01 kernel: [  613.524384] ${MSG}`, { format: 'syslog', host: null, tsUsec: 613_524_384 }],
    ['RFC 3164 with priority', `<3>Nov 22 10:00:01 node-7 kernel: ${MSG}`, { format: 'syslog', level: 3 }],
    ['rsyslog RFC 3339', `2021-11-22T10:00:01.123456+00:00 node-7 kernel: [  613.524384] ${MSG}`, { format: 'syslog-iso', tsUsec: 613_524_384, wallUs: at('2021-11-22T10:00:01.123Z') + 456 }],
    ['rsyslog facility.level', `2021-11-22T10:00:01+00:00 node-7 kern.err kernel: ${MSG}`, { format: 'syslog-iso', level: 3, host: 'node-7' }],
    ['RFC 5424', `<3>1 2021-11-22T10:00:01.123Z node-7 kernel - - - ${MSG}`, { format: 'rfc5424', level: 3, host: 'node-7', wallUs: at('2021-11-22T10:00:01.123Z') }],
    ['RFC 5424 with structured data', `<3>1 2021-11-22T10:00:01Z node-7 kernel - - [meta seq="1"] ${MSG}`, { format: 'rfc5424', host: 'node-7' }],
    // corpus-c: a collector that stored RFC 5424 without its `<PRI>1 ` header
    ['RFC 5424 layout without <PRI>1', `2022-12-26T07:44:45.000000+01:00 server02 kernel - - - ${MSG}`, { format: 'rfc5424', host: 'server02', wallUs: at('2022-12-26T06:44:45Z') }],
    ['<3> without time', `<3>${MSG}`, { format: 'angle', level: 3, tsUsec: -1 }],
    ['lost the leading [', `  613.524384] ${MSG}`, { format: 'dmesg', tsUsec: 613_524_384 }],
    ['lost the month', `v 22 10:00:01 node-7 kernel: ${MSG}`, { format: 'syslog', host: 'node-7' }],
    ['kernel tag with pid', `Nov 22 10:00:01 node-7 kernel[0]: ${MSG}`, { format: 'syslog', host: 'node-7' }],
  ];
  for (const [name, line, want] of cases) {
    it(name, () => {
      const got = kernel(line);
      assert.equal(got.message, MSG);
      for (const [k, v] of Object.entries(want)) assert.equal(got[k as keyof typeof got], v, `${name}: ${k}`);
    });
  }
});

// Real lines from the corpus (test/fixtures/real-world), in the prefixes that distributions, appliances and pastes add.
describe('parseTextLine: prefixes seen in real pastes', () => {
  const cases: [string, string, string, Partial<ReturnType<typeof kernel>>][] = [
    ['grep over kern.log, level word (rsyslog template)', './kern.log:2024-06-20 09:42:14 notice kernel: EXT4-fs (dm-3): error count since last fsck: 10',
      'EXT4-fs (dm-3): error count since last fsck: 10', { format: 'syslog-iso', host: null, level: 5, wallUs: at('2024-06-20T09:42:14Z') }],
    ['grep over /var/log/kern.log', '/var/log/kern.log:Nov 22 10:00:01 node-7 kernel: [  613.524384] I/O error, dev sdb, sector 0',
      'I/O error, dev sdb, sector 0', { format: 'syslog', host: 'node-7', tsUsec: 613_524_384, wallUs: at('2021-11-22T10:00:01Z') }],
    ['grep -n over a rotated kern.log', 'kern.log.1:1042:Nov 22 10:00:01 node-7 kernel: I/O error, dev sdb, sector 0',
      'I/O error, dev sdb, sector 0', { format: 'syslog', host: 'node-7' }],
    ['SONiC syslog (year first, level word), grep prefix', 'syslog:2025 Apr 28 05:18:18.739295 sonic INFO kernel: [  932.470402] EXT4-fs (nvme0n1p2): mounted filesystem with ordered data mode. Quota mode: none.',
      'EXT4-fs (nvme0n1p2): mounted filesystem with ordered data mode. Quota mode: none.', { format: 'syslog', host: 'sonic', level: 6, tsUsec: 932_470_402, wallUs: at('2025-04-28T05:18:18.739Z') + 295 }],
    ['SONiC syslog', '2025 Jul  2 06:56:57.749658 sonic_testbed ERR kernel: [  993.631883] Buffer I/O error on device loop1, logical block 164368',
      'Buffer I/O error on device loop1, logical block 164368', { format: 'syslog', host: 'sonic_testbed', level: 3, wallUs: at('2025-07-02T06:56:57.749Z') + 658 }],
    ['busybox syslogd facility.level', 'Jun 21 12:08:01 beaglebone user.err kernel: [   48.809361] mmcblk1: error -110 sending status command, aborting',
      'mmcblk1: error -110 sending status command, aborting', { format: 'syslog', host: 'beaglebone', level: 3, tsUsec: 48_809_361 }],
    ['level word and tag only', 'ALERT kernel: [ 1833.099886] Read-error on swap-device (253:0:2688896)',
      'Read-error on swap-device (253:0:2688896)', { format: 'kernel-tag', host: null, level: 1, tsUsec: 1_833_099_886 }],
    ['tag only', 'kernel: XFS (dm-4): Corruption detected. Unmount and run xfs_repair',
      'XFS (dm-4): Corruption detected. Unmount and run xfs_repair', { format: 'kernel-tag', host: null, level: -1, wallUs: null }],
    ['Anaconda syslog', '23:54:39,682 INFO kernel:md0: detected capacity change from 0 to 1021952',
      'md0: detected capacity change from 0 to 1021952', { format: 'anaconda', level: 6, host: null, wallUs: null }],
    ['talosctl dmesg', '109.200.197.196: kern:   alert: [2024-05-13T15:13:11.99476118Z]: XFS (sdb6): log I/O error -5',
      'XFS (sdb6): log I/O error -5', { format: 'talosctl', host: '109.200.197.196', level: 1, wallUs: at('2024-05-13T15:13:11.994Z') + 761 }],
    ['Android Tuner level letter', 'I/  229.354797  Write-error on swap-device (253:0:45704)',
      'Write-error on swap-device (253:0:45704)', { format: 'level-letter', level: 6, tsUsec: 229_354_797 }],
    ['mail quote of a dmesg line', '> [  231.336812] nvme nvme2: Removing after probe failure status: -19',
      'nvme nvme2: Removing after probe failure status: -19', { format: 'dmesg', tsUsec: 231_336_812 }],
    ['mail quote of dmesg -T', '> [Mon May  2 03:36:24 2022] sd 0:0:2:0: [sdc] Unhandled sense code',
      'sd 0:0:2:0: [sdc] Unhandled sense code', { format: 'dmesg-ctime', wallUs: at('2022-05-02T03:36:24Z') }],
    ['mail quote of a tag-only line', '> kernel: nvme nvme0: Disabling device after reset failure: -19',
      'nvme nvme0: Disabling device after reset failure: -19', { format: 'kernel-tag' }],
    ['lost the month, level word', 'v 22 10:00:01 node-7 ERR kernel: I/O error, dev sdb, sector 0', 'I/O error, dev sdb, sector 0', { format: 'syslog', host: null, level: 3 }],
    ['metalog (the program in brackets, no host)', 'Feb 14 01:11:04 [kernel] [19262.403551] scsi 0:0:0:0: rejecting I/O to offline device',
      'scsi 0:0:0:0: rejecting I/O to offline device', { format: 'metalog', host: null, tsUsec: 19_262_403_551, wallUs: at('2021-02-14T01:11:04Z') }],
    ['OpenWrt logread, mail-quoted', '> Sat Apr 23 15:37:18 2016 kern.err kernel: [  106.440000] scsi 0:0:0:0: rejecting I/O to dead device',
      'scsi 0:0:0:0: rejecting I/O to dead device', { format: 'logread', host: null, level: 3, facility: 0, tsUsec: 106_440_000, wallUs: at('2016-04-23T15:37:18Z') }],
    ['OpenWrt logread, one-digit day', 'Sun Apr  3 09:00:01 2016 kern.warn kernel: [    5.100000] sd 0:0:0:0: [sda] Attached SCSI removable disk',
      'sd 0:0:0:0: [sda] Attached SCSI removable disk', { format: 'logread', level: 4, wallUs: at('2016-04-03T09:00:01Z') }],
    ['Amlogic dmesg, the CPU after the time', '[    8.888974@0] mmcblk0: r/w command failed, status = 0x80000b00',
      'mmcblk0: r/w command failed, status = 0x80000b00', { format: 'dmesg', tsUsec: 8_888_974 }],
    ['Amlogic kernel time in a syslog line', 'Nov 22 10:00:01 node-7 kernel: [    8.888999@1] end_request: I/O error, dev mmcblk0, sector 15564680',
      'end_request: I/O error, dev mmcblk0, sector 15564680', { format: 'syslog', host: 'node-7', tsUsec: 8_888_999 }],
    ['RFC 3164 with an empty host field (two blanks)', 'Nov 20 16:24:11  kernel: [   32.258009] EXT4-fs (md0): mounted filesystem with ordered data mode. Opts: (null)',
      'EXT4-fs (md0): mounted filesystem with ordered data mode. Opts: (null)', { format: 'syslog', host: null, tsUsec: 32_258_009, wallUs: at('2021-11-20T16:24:11Z') }],
    ['dmesg -H with a decimal comma', '[  +0,000002] BTRFS error (device nvme0n1p2): block=313769984 write time tree block corruption detected',
      'BTRFS error (device nvme0n1p2): block=313769984 write time tree block corruption detected', { format: 'dmesg-human' }],
    ['dmesg -H minute marker', '[Apr19 18:52] BTRFS: error (device nvme0n1p2) in btrfs_commit_transaction:2564: errno=-5 IO failure (Error while writing out transaction)',
      'BTRFS: error (device nvme0n1p2) in btrfs_commit_transaction:2564: errno=-5 IO failure (Error while writing out transaction)', { format: 'dmesg-human', wallUs: at('2021-04-19T18:52:00Z') }],
  ];
  for (const [name, line, message, want] of cases) {
    it(name, () => {
      const got = kernel(line);
      assert.equal(got.message, message);
      for (const [k, v] of Object.entries(want)) assert.equal(got[k as keyof typeof got], v, `${name}: ${k}`);
    });
  }
  it('other programs in these prefixes are not kernel records', () => {
    for (const line of [
      '23:54:39,700 INFO systemd:Started udev Kernel Device Manager.',
      '109.200.197.196: daemon:    info: [2024-05-13T15:13:11.99Z]: machined: service started',
      'syslog:2025 Apr 28 05:18:18.739295 sonic INFO systemd[1]: Started Session 3.',
      '-- Boot 1e4d29324c5c48a0bfa0583f187b485d --',
      '-- No entries --',
      'Feb 14 01:11:04 [sshd] Accepted publickey for pi from 192.168.1.2 port 50000 ssh2',
      'Sat Apr 23 15:37:18 2016 daemon.info dnsmasq[1234]: read /etc/hosts - 4 addresses',
      'Nov 20 16:24:11  syno_hibernation_debug: hibernation enabled',
    ]) assert.equal(parseTextLine(line, ctx).kind, 'other', line);
  });
  it('a grep prefix before a bare message or before nothing known is no format', () => {
    for (const line of ['md/raid1:md0: Disk failure on sdb1, disabling device.', 'device-mapper:multipath: x', 'kern.log:just words']) {
      assert.equal(parseTextLine(line, ctx).kind, 'unknown', line);
    }
  });
});

describe('TextReader: mail quotes and copied kmsg records', () => {
  it('reads quoted lines, their quoted continuation lines, and quoted bare messages', () => {
    const items = readText([
      '> [  +0.000002] md/raid1:md126: Disk failure on sdb, disabling device.',
      '>               md/raid1:md126: Operation continuing on 1 devices.',
      '> > > \tend_request: I/O error, dev sda, sector 10468770',
      '>',
      '> end_request: I/O error, dev sdb, sector 390716735',
    ].join('\n'), ctx);
    assert.deepEqual(items.map((i) => (i.kind === 'kernel' ? i.value.record.message : i.kind === 'unknown' ? `bare: ${i.text}` : i.kind)), [
      'md/raid1:md126: Disk failure on sdb, disabling device.\nmd/raid1:md126: Operation continuing on 1 devices.',
      'bare: end_request: I/O error, dev sda, sector 10468770',
      'bare: end_request: I/O error, dev sdb, sector 390716735',
    ]);
  });
  it('reads a /dev/kmsg record after the lvm2 test suite\'s elapsed time, quoted', () => {
    const items = readText('>> [ 0:10.188] 2,2033,1282853769,-;md/raid1:mdX: Disk failure on dm-11, disabling device.\\x0amd/raid1:mdX: Operation continuing on 1 devices.', ctx);
    assert.equal(items.length, 1);
    const r = items[0]!;
    assert.ok(r.kind === 'kernel');
    assert.equal(r.value.format, 'kmsg');
    assert.equal(r.value.record.level, 2);
    assert.equal(r.value.record.message, 'md/raid1:mdX: Disk failure on dm-11, disabling device.\nmd/raid1:mdX: Operation continuing on 1 devices.');
  });
  it('reads an indented level-word line', () => {
    const items = readText('  ERR kernel: [ 1833.099861] zram: Decompression failed! err=-22, page=336112', ctx);
    assert.ok(items[0]!.kind === 'kernel');
    assert.equal(items[0]!.value.record.level, 3);
    assert.equal(items[0]!.value.record.message, 'zram: Decompression failed! err=-22, page=336112');
  });
});

describe('parseTextLine: lines of other programs are not kernel records', () => {
  for (const line of [
    'Nov 22 10:00:01 node-7 systemd[1]: Started Session 3 of user root.',
    'Nov 22 10:00:01 node-7 smartd[812]: Device: /dev/sdb [SAT], 8 Currently unreadable (pending) sectors',
    '2021-11-22T10:00:01+0100 node-7 multipathd[600]: sdb: mark as failed',
    '<30>1 2021-11-22T10:00:01Z node-7 smartd 812 - - Device: /dev/sdb, FAILED SMART self-check',
    '[  613.524384] node-7 systemd[1]: Mounted /data.',
    '2022-12-26T07:44:45.000000+01:00 server02 smartd 812 - - Device: /dev/sda, 8 Currently unreadable (pending) sectors',
    'Mon 2021-11-22 10:00:01 UTC node-7 lvm[900]: WARNING: Thin pool vg-pool data is now 80% full.',
  ]) {
    it(line.slice(0, 60), () => assert.equal(parseTextLine(line, ctx).kind, 'other'));
  }
  it('a journal JSON line of another program', () => {
    const line = JSON.stringify({ __REALTIME_TIMESTAMP: '1637575201000000', _TRANSPORT: 'syslog', SYSLOG_IDENTIFIER: 'smartd', MESSAGE: 'Device: /dev/sdb' });
    assert.equal(parseTextLine(line, ctx).kind, 'other');
  });
});

describe('parseTextLine: journal JSON', () => {
  it('takes message, priority, host, both times and the kernel dictionary', () => {
    const line = JSON.stringify({
      __REALTIME_TIMESTAMP: '1637575201123456', __MONOTONIC_TIMESTAMP: '613524384', _TRANSPORT: 'kernel', PRIORITY: '3',
      SYSLOG_FACILITY: '0', _HOSTNAME: 'node-7', MESSAGE: MSG, _KERNEL_SUBSYSTEM: 'scsi', _KERNEL_DEVICE: '+scsi:2:0:0:0',
    });
    const r = parseTextLine(line, ctx);
    assert.ok(r.kind === 'kernel');
    assert.deepEqual(r.value, {
      format: 'journal-json', host: 'node-7', wallUs: 1637575201123456,
      record: { level: 3, facility: 0, seq: -1, tsUsec: 613524384, flag: '-', message: MSG, subsystem: 'scsi', device: '+scsi:2:0:0:0' },
    });
  });
  it('decodes a message journalctl printed as bytes', () => {
    const r = parseTextLine(JSON.stringify({ _TRANSPORT: 'kernel', MESSAGE: [...Buffer.from('I/O error, dev sdb')] }), ctx);
    assert.ok(r.kind === 'kernel');
    assert.equal(r.value.record.message, 'I/O error, dev sdb');
  });
  it('a broken JSON line is in no known format', () => {
    assert.equal(parseTextLine('{"MESSAGE": "x"', ctx).kind, 'unknown');
    assert.equal(parseTextLine('{"__proto__": {"MESSAGE": "x"}, "_TRANSPORT": "kernel"}', ctx).kind, 'unknown');
  });
});

describe('parseTextLine: no known format', () => {
  for (const line of ['sd 2:0:0:0: [sdb] tag#0 FAILED', 'hello world', '12:00 something']) {
    it(line, () => assert.equal(parseTextLine(line, ctx).kind, 'unknown'));
  }
});

describe('isoToUs', () => {
  it('reads zones and fractions', () => {
    assert.equal(isoToUs('2021-11-22T10:00:01Z'), at('2021-11-22T10:00:01Z'));
    assert.equal(isoToUs('2021-11-22T10:00:01.5-0130'), at('2021-11-22T11:30:01.5Z'));
    assert.equal(isoToUs('2021-11-22 10:00:01,000001Z'), at('2021-11-22T10:00:01Z') + 1);
  });
  it('refuses what is not a time', () => {
    assert.equal(isoToUs('2021-13-22T10:00:01Z'), null);
    assert.equal(isoToUs('2021-11-22T25:00:01Z'), null);
    assert.equal(isoToUs('yesterday'), null);
  });
});

describe('TextReader', () => {
  it('reads a mix of formats in input order, with kmsg dictionaries', () => {
    const items = readText([
      '3,101,1001234,-;I/O error, dev loop0, sector 16384',
      ' SUBSYSTEM=block',
      ' DEVICE=b7:0',
      `Nov 22 10:00:01 node-7 kernel: ${MSG}`,
      'Nov 22 10:00:02 node-7 systemd[1]: Started x.',
      'not a log line',
      `[  613.524384] ${MSG}`,
    ].join('\n'), ctx);
    assert.deepEqual(items.map((i) => [i.kind, i.line, i.kind === 'kernel' ? i.value.format : '']), [
      ['kernel', 1, 'kmsg'], ['kernel', 4, 'syslog'], ['other', 5, ''], ['unknown', 6, ''], ['kernel', 7, 'dmesg'],
    ]);
    const first = items[0]!;
    assert.ok(first.kind === 'kernel');
    assert.equal(first.value.record.device, 'b7:0');
  });
  it('joins indented continuation lines to the record before them', () => {
    const items = readText(`Nov 22 10:00:01 node-7 kernel: first part\n                               second part\nNov 22 10:00:02 node-7 kernel: next`, ctx);
    assert.equal(items.length, 2);
    assert.ok(items[0]!.kind === 'kernel');
    assert.equal(items[0]!.value.record.message, 'first part\nsecond part');
  });
  it('reads a paste indented as a whole (a forum code block) line by line', () => {
    const items = readText(`    [  1.000000] ${MSG}\n    [  2.000000] ${MSG}`, ctx);
    assert.deepEqual(items.map((i) => (i.kind === 'kernel' ? i.value.record.tsUsec : -9)), [1_000_000, 2_000_000]);
  });
  it('adds dmesg -H relative times to the absolute line before', () => {
    const items = readText(`[Nov22 10:00] ${MSG}\n[  +0.500000] ${MSG}\n[  +1.000000] ${MSG}`, ctx);
    assert.deepEqual(items.map((i) => (i.kind === 'kernel' ? i.value.wallUs : 0)), [at('2021-11-22T10:00:00Z'), at('2021-11-22T10:00:00.5Z'), at('2021-11-22T10:00:01.5Z')]);
  });
  it('adds dmesg -H deltas printed with decimal commas to the minute marker before', () => {
    const items = readText(`[Apr19 18:52] ${MSG}\n[  +0,500000] ${MSG}\n[ +18,993611] ${MSG}`, ctx);
    assert.deepEqual(items.map((i) => (i.kind === 'kernel' ? i.value.wallUs : 0)), [at('2021-04-19T18:52:00Z'), at('2021-04-19T18:52:00.5Z'), at('2021-04-19T18:52:19.493Z') + 611]);
  });
  it('reads journalctl -o export entries', () => {
    const items = readText([
      '__CURSOR=s=abc', '__REALTIME_TIMESTAMP=1637575201000000', '__MONOTONIC_TIMESTAMP=613524384', '_TRANSPORT=kernel',
      'PRIORITY=3', '_HOSTNAME=node-7', `MESSAGE=${MSG}`, '',
      '__CURSOR=s=abd', '__REALTIME_TIMESTAMP=1637575202000000', '_TRANSPORT=stdout', 'MESSAGE=hello', '',
    ].join('\n'), ctx);
    assert.equal(items.length, 2);
    assert.ok(items[0]!.kind === 'kernel');
    assert.equal(items[0]!.value.host, 'node-7');
    assert.equal(items[0]!.value.record.message, MSG);
    assert.equal(items[1]!.kind, 'other');
  });
  it('reports an invalid kmsg record and goes on', () => {
    const items = readText(`3,x1,2,-;broken\n[  1.000000] ${MSG}`, ctx);
    assert.deepEqual(items.map((i) => i.kind), ['unknown', 'kernel']); // `3,x1` is not a kmsg prefix: a line in no known format
    const bad = readText(`9999,1,2,-;broken\n[  1.000000] ${MSG}`, ctx);
    assert.deepEqual(bad.map((i) => i.kind), ['error', 'kernel']);
  });
});

// The cases of the dmesg reader that lived in src/kmsg/record.ts before src/logtext took its place.
describe('dmesg forms (formerly parseDmesgLine / splitRecords)', () => {
  it('reads dmesg, dmesg -r, dmesg -x and journalctl forms', () => {
    const a = kernel('[  613.524384] EXT4-fs (sdb1): Remounting filesystem read-only');
    assert.equal(a.tsUsec, 613_524_384);
    assert.equal(a.level, -1);
    assert.equal(a.message, 'EXT4-fs (sdb1): Remounting filesystem read-only');
    const b = kernel('<3>[  613.524384] I/O error, dev sdb, sector 1');
    assert.ok(b.level === 3 && b.facility === 0);
    const c = kernel('kern  :err   : [  613.524384] I/O error, dev sdb, sector 1');
    assert.ok(c.level === 3 && c.message === 'I/O error, dev sdb, sector 1');
    const d = kernel('[  613.524384] node-1 kernel: md: md0: recovery done.');
    assert.ok(d.message === 'md: md0: recovery done.');
  });
  it('takes a bare line as a message of unknown level', () => {
    assert.equal(parseTextLine('md: md0: resync done.', ctx).kind, 'unknown');
    const r = bareRecord('md: md0: resync done.');
    assert.ok(r !== null && r.level === -1 && r.tsUsec === -1);
  });
  it('an empty message gives no record', () => {
    assert.equal(kernel('[  1.000000] ').message, '');
    assert.equal(bareRecord('   '), null);
  });
  it('groups dictionary lines with their record and reports bad ones by line', () => {
    const text = '3,1,10,-;I/O error, dev sdb, sector 8\n SUBSYSTEM=block\n DEVICE=b8:16\n[    1.5] md: md0: resync done.\n9999,1,1,-;bad\n';
    const out = readText(text, ctx);
    assert.equal(out.length, 3);
    assert.ok(out[0]!.kind === 'kernel' && out[0]!.value.record.device === 'b8:16');
    assert.ok(out[1]!.kind === 'kernel' && out[1]!.value.record.message === 'md: md0: resync done.');
    assert.equal(out[2]!.kind, 'error');
    assert.equal(out[2]!.line, 5);
  });
});
