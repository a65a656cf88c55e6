// The command line: bad arguments and unreadable inputs get one clear line and
// a non-zero exit, never a stack trace; dmesg text and stdin work.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/agent.ts';

function run(bin: 'prpt' | 'peripety', args: string[], input?: string) {
  return spawnSync(process.execPath, [path.join(ROOT, 'bin', bin), ...args], { encoding: 'utf8', input, timeout: 20_000 });
}

describe('command line errors', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'prpt-cli-'));
  const badToml = path.join(tmp, 'bad.toml');
  writeFileSync(badToml, '[kmsg]\ntype = "collector"\nstart = 5\n');
  const cases: [string, 'prpt' | 'peripety', string[], number, RegExp][] = [
    ['unknown prpt command', 'prpt', ['frobnicate'], 2, /^prpt: unknown command "frobnicate"/],
    ['no prpt command', 'prpt', [], 2, /^prpt: missing command/],
    ['unknown flag', 'prpt', ['parse', '--jsn'], 2, /^prpt: Unknown option '--jsn'/],
    ['missing file', 'prpt', ['parse', '/nonexistent/file'], 1, /^prpt: cannot read \/nonexistent\/file: no such file/],
    ['a directory', 'prpt', ['parse', '/tmp'], 1, /^prpt: cannot read \/tmp: is a directory/],
    ['too many arguments', 'prpt', ['parse', 'a', 'b'], 2, /^prpt: unexpected argument "b"/],
    ['info without device', 'prpt', ['info'], 2, /^prpt: info needs a device/],
    ['info of nothing', 'prpt', ['info', 'nosuchdev9'], 1, /^prpt info: no block device "nosuchdev9"/],
    ['unknown peripety command', 'peripety', ['agnet'], 2, /^peripety: unknown command "agnet"/],
    ['agent flag typo', 'peripety', ['agent', '--confg', 'x'], 2, /^peripety: Unknown option '--confg'/],
    ['agent missing config', 'peripety', ['agent', '--config', '/nonexistent.toml'], 1, /^peripety: cannot read the configuration \/nonexistent\.toml: ENOENT/],
    ['agent invalid config', 'peripety', ['agent', '--config', badToml], 1, /^peripety: .*bad\.toml: config: \[kmsg\] start: must be one of/],
    ['agent --api-listen-ip not an IP', 'peripety', ['agent', '--api-listen-ip', 'node.example'], 2, /^peripety: --api-listen-ip: "node\.example" is not an IP address/],
  ];
  for (const [name, bin, args, code, want] of cases) {
    it(name, () => {
      const r = run(bin, args);
      assert.equal(r.status, code, r.stderr);
      assert.match(r.stderr, want);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }
});

describe('peripety list-plugins', () => {
  it('names every collector, parser, receiver and storage backend with its description', () => {
    const r = run('peripety', ['list-plugins']);
    assert.equal(r.status, 0, r.stderr);
    for (const name of ['kmsg', 'udev', 'scsi', 'multipath', 'fs', 'stdout', 'journald', 'webhook', 'k8s-events', 'memory', 'jsonl', 'sqlite', 'postgres']) {
      assert.match(r.stdout, new RegExp(`^  ${name} +\\S`, 'm'), name);
    }
  });
});

describe('prpt parse input forms', () => {
  it('reads dmesg text from stdin and skips what it cannot read, naming the line', () => {
    const input = [
      '[  613.524384] md/raid1:md0: Disk failure on sdb1, disabling device.',
      '<3>[  614.000000] XFS (sdb1): log I/O error -5',
      '3,99999999999999999999,1,-;bad record',
      '[  615.100000] host kernel: EXT4-fs (sdb1): Remounting filesystem read-only',
      '',
    ].join('\n');
    const r = run('prpt', ['parse', '--json', '--no-resolve', '-'], input);
    assert.equal(r.status, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event_type: string; extentions: Record<string, string> });
    assert.deepEqual(events.map((e) => e.event_type), ['MD_DISK_FAILURE', 'FS_IO_ERROR', 'FS_REMOUNT_READ_ONLY']);
    assert.equal(events[0]!.extentions.kmsg_seq, undefined, 'dmesg text has no sequence number');
    assert.match(r.stderr, /stdin:3: skipped: PRI, SEQ or TS_USEC out of range/);
  });
  it('prints human-readable lines without --json', () => {
    const r = run('prpt', ['parse', '--no-resolve', '-'], '<3>[ 1.0] md/raid1:md0: Disk failure on sdb1, disabling device.\n');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ERROR mdraid\/MD_DISK_FAILURE md0: .*sdb1/);
  });
});

describe('prpt parse: log files in any format', () => {
  const MD = 'md/raid1:md0: Disk failure on sdb1, disabling device.';
  it('takes host and time from the lines, not this machine, and says what it read', () => {
    const input = [
      `Nov 22 10:00:01 node-7 kernel: ${MD}`,
      `2021-11-22T10:00:02.500000+00:00 node-8 kernel: [  613.524384] XFS (sdb1): log I/O error -5`,
      'Nov 22 10:00:03 node-7 systemd[1]: Started Session 3.',
      'some text in no format',
      '',
    ].join('\n');
    const r = run('prpt', ['parse', '--json', '--year', '2021', '-'], input);
    assert.equal(r.status, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event_type: string; hostname: string; timestamp: number });
    assert.deepEqual(events.map((e) => [e.event_type, e.hostname]), [['MD_DISK_FAILURE', 'node-7'], ['FS_IO_ERROR', 'node-8']]);
    assert.equal(events[1]!.timestamp, Date.parse('2021-11-22T10:00:02Z') / 1000);
    assert.match(r.stderr, /^prpt parse: stdin: 4 lines: 2 kernel records \((syslog 1, syslog-iso 1|syslog-iso 1, syslog 1)\), 2 events, 1 line in no known format \(read as bare messages\), 1 line of other programs$/m);
  });
  it('exits 1 with the summary when no line is a kernel record', () => {
    const r = run('prpt', ['parse', '-'], 'hello\nworld\n');
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /prpt parse: stdin: 2 lines: 0 kernel records, 0 events, 2 lines in no known format/);
  });
  it('names "unknown" as the host of a dmesg file and does not resolve its devices here', () => {
    // 253:0 on this machine may be anything (a zram device): a file's devices stay as printed
    const r = run('prpt', ['parse', '--json', '-'], '[  1.000000] device-mapper: multipath: 253:0: Failing path 8:16.\n');
    assert.equal(r.status, 0, r.stderr);
    const ev = JSON.parse(r.stdout.trim().split('\n')[0]!) as { hostname: string; dev_name: string; dev_wwid: string };
    assert.equal(ev.hostname, 'unknown');
    assert.equal(ev.dev_wwid, '');
  });
  it('refuses --resolve with --no-resolve, and a bad --year', () => {
    assert.equal(run('prpt', ['parse', '--resolve', '--no-resolve', '-'], '').status, 2);
    const y = run('prpt', ['parse', '--year', '21', '-'], '');
    assert.equal(y.status, 2);
    assert.match(y.stderr, /--year "21": not a four-digit year/);
  });
});
