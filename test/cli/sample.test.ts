// `prpt parse --json` on the kernel record sample (test/fixtures/kmsg-sample.txt,
// described in test/fixtures/README.md) gives exactly the expected events,
// each with extentions.kmsg_seq.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { StorageEvent } from '../../src/events/schema.ts';
import { ROOT } from '../helpers/agent.ts';
import { makeFakeSysfs } from '../helpers/fake-sysfs.ts';

const DATA = path.join(ROOT, 'test/fixtures');
const SAMPLE = path.join(DATA, 'kmsg-sample.txt');

interface Expected {
  seq: number;
  record: string;
  expect: { system: string; event_type: string; dev_name: (string | null)[] } | null;
}

function prptParse(args: string[]): StorageEvent[] {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/prpt'), 'parse', '--json', ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l.trim()).map((l) => StorageEvent.parse(JSON.parse(l)));
}

describe('the kmsg sample', () => {
  const expected = readFileSync(path.join(DATA, 'kmsg-sample.expected.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Expected);
  // The sample's devices are not this machine's (here 253:0 may be zram0), so
  // resolution runs against a fake sysfs that has dm-0 = 253:0 and sdb1.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-sample-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const fake = makeFakeSysfs(dir);
  const resolveArgs = ['--sysfs-root', fake.sysfs, '--dev-root', fake.dev];
  // Names the fake sysfs resolves that the sample (written for a machine
  // without these devices) leaves as printed.
  const fakeResolves: Record<string, string> = { '3:0:0:0': 'sdc' };
  // A host whose 253:0 is not a device-mapper device (zram took major 253, as
  // on the machine this was written on): the same fake sysfs, but 253:0 is zram0.
  const zramDir = mkdtempSync(path.join(os.tmpdir(), 'prpt-sample-zram-'));
  after(() => rmSync(zramDir, { recursive: true, force: true }));
  const zram = makeFakeSysfs(zramDir);
  const zdev = path.join(zram.sysfs, 'devices/virtual/block/zram0');
  mkdirSync(path.join(zdev, 'holders'), { recursive: true });
  mkdirSync(path.join(zdev, 'slaves'), { recursive: true });
  writeFileSync(path.join(zdev, 'dev'), '253:0\n');
  writeFileSync(path.join(zdev, 'uevent'), 'MAJOR=253\nMINOR=0\nDEVNAME=zram0\nDEVTYPE=disk\n');
  const majmin = path.join(zram.sysfs, 'dev/block/253:0');
  rmSync(majmin, { force: true });
  symlinkSync(path.relative(path.dirname(majmin), zdev), majmin);
  writeFileSync(path.join(zram.dev, 'zram0'), '');
  const zramArgs = ['--sysfs-root', zram.sysfs, '--dev-root', zram.dev];
  it('on a host where 253:0 is zram0, the device-mapper events do not take it', () => {
    const events = prptParse([...zramArgs, SAMPLE]);
    const dm = events.filter((e) => e.extentions.kernel_dev === '253:0');
    assert.ok(dm.length >= 2, `the sample's 253:0 events: ${dm.length}`);
    assert.deepEqual([...new Set(dm.map((e) => e.dev_name))], ['253:0']);
    assert.ok(!events.some((e) => e.dev_name === 'zram0'), 'no event names zram0');
  });
  for (const mode of [resolveArgs, zramArgs, ['--no-resolve']]) {
    it(`prpt parse --json ${mode === resolveArgs ? '(fake sysfs)' : mode === zramArgs ? '(fake sysfs, 253:0 = zram0)' : mode.join(' ')} gives exactly the expected events`, () => {
      const events = prptParse([...mode, SAMPLE]);
      const bySeq = new Map<number, StorageEvent[]>();
      for (const ev of events) {
        const seq = Number(ev.extentions.kmsg_seq);
        assert.ok(Number.isInteger(seq), `event without kmsg_seq: ${JSON.stringify(ev)}`);
        bySeq.set(seq, [...(bySeq.get(seq) ?? []), ev]);
      }
      const problems: string[] = [];
      for (const x of expected) {
        const got = bySeq.get(x.seq) ?? [];
        if (x.expect === null) {
          if (got.length > 0) problems.push(`seq ${x.seq}: expected no event, got ${got.map((e) => e.event_type).join(', ')}`);
          continue;
        }
        if (got.length !== 1) {
          problems.push(`seq ${x.seq}: expected one ${x.expect.event_type}, got ${got.length}`);
          continue;
        }
        const ev = got[0]!;
        if (ev.system !== x.expect.system) problems.push(`seq ${x.seq}: system ${ev.system}, expected ${x.expect.system}`);
        if (ev.event_type !== x.expect.event_type) problems.push(`seq ${x.seq}: event_type ${ev.event_type}, expected ${x.expect.event_type}`);
        const names = x.expect.dev_name.map((n) => n ?? '');
        if (mode[0] === '--sysfs-root') for (const n of [...names]) if (fakeResolves[n]) names.push(fakeResolves[n]);
        if (!names.includes(ev.dev_name)) problems.push(`seq ${x.seq}: dev_name ${JSON.stringify(ev.dev_name)}, expected one of ${JSON.stringify(names)}`);
      }
      assert.deepEqual(problems, []);
      assert.equal(events.length, expected.filter((x) => x.expect !== null).length);
    });
  }
});
