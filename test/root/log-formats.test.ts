// Issue 12, "what it must show": `prpt parse` on the default `journalctl -k`
// output of this machine and on `dmesg -x` gives the same events as on the
// /dev/kmsg records of the same lines.
//
// The lines are REAL kernel records (facility kern), not lines written to
// /dev/kmsg: a writer's records are user facility, and journald takes the
// first word of those for a program name (`md/raid1:md0: …` shows as the tag
// `md/raid1:md0`), which no real `journalctl -k` line looks like. So the test
// makes the kernel log a few storage lines itself (test/helpers/faults.ts):
// a loop device attached (`loopN: detected capacity change …`), a read that
// fails (`I/O error, dev loopN, sector …`), an ext4 image mounted with a
// damaged directory (`EXT4-fs (loopM): mounted filesystem …`,
// `EXT4-fs error (device loopM): ext4_lookup:…`) — about ten records, between
// a begin and an end marker written to /dev/kmsg.
//
// journald does not run on this machine, so the test runs the REAL
// systemd-journald (Debian package systemd) — its default instance, the one
// that reads /dev/kmsg — in a private mount namespace (`unshare -m`): a fresh
// tmpfs on /run, temp directories bind-mounted over /run/systemd, /run/log and
// /var/log, and a journald.conf of its own (Storage=volatile, no forwarding)
// bound over /etc/systemd/journald.conf. It gets no audit capabilities
// (`setpriv --bounding-set -audit_*`: it can neither join the audit multicast
// group nor switch kernel auditing on) and logs to its stderr, not to
// /dev/kmsg (SYSTEMD_LOG_TARGET=console). Nothing outside the namespace
// changes: the journal files land in the test's temp directory, and
// `journalctl -k --directory` reads them from there. test/root/journald.test.ts
// runs a namespace instance (its own socket directory) the same way; the two
// do not meet. Needs root; packages: hack/ci-deps.sh (systemd, util-linux).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { StorageEvent } from '../../src/events/schema.ts';
import { ROOT } from '../helpers/agent.ts';
import { type CorruptExt4, corruptExt4, type EioLoop, eioLoop, requireRoot, run } from '../helpers/faults.ts';
import { watchChild } from '../helpers/cli-process.ts';
import { injectKmsg, readKmsgRing } from '../helpers/kmsg.ts';

const JOURNALD = ['/usr/lib/systemd/systemd-journald', '/lib/systemd/systemd-journald'].find((p) => existsSync(p));

interface Journald {
  /** the directory `journalctl --directory` reads */
  journalDir: string;
  stop(): Promise<void>;
}

const CONF = `[Journal]
Storage=volatile
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
ReadKMsg=yes
`;

/** The default systemd-journald instance, confined to `dir` (see the file comment). */
async function startJournald(dir: string): Promise<Journald> {
  if (!JOURNALD) throw new Error('systemd-journald not found in /usr/lib/systemd or /lib/systemd: run hack/ci-deps.sh (Debian package systemd)');
  if (!existsSync('/etc/systemd/journald.conf')) throw new Error('/etc/systemd/journald.conf is missing (Debian package systemd): nothing to bind the test configuration over');
  const machineId = readFileSync('/etc/machine-id', 'utf8').trim();
  if (!/^[0-9a-f]{32}$/.test(machineId)) throw new Error(`/etc/machine-id holds no machine id (${JSON.stringify(machineId)}): journald needs one (systemd-machine-id-setup)`);
  for (const d of ['run', 'runlog', 'log']) mkdirSync(path.join(dir, d));
  writeFileSync(path.join(dir, 'journald.conf'), CONF);
  const script = 'set -e; mount -t tmpfs -o mode=0755 tmpfs /run; mkdir -p /run/systemd /run/log; '
    + 'mount --bind "$1/run" /run/systemd; mount --bind "$1/runlog" /run/log; mount --bind "$1/log" /var/log; '
    + 'mount --bind "$1/journald.conf" /etc/systemd/journald.conf; '
    + 'exec setpriv --bounding-set -audit_control,-audit_read,-audit_write "$2"';
  const child: ChildProcess = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', dir, JOURNALD], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SYSTEMD_LOG_TARGET: 'console' },
  });
  const watched = watchChild(child);

  const journalDir = path.join(dir, 'runlog', 'journal', machineId);
  const stop = (): Promise<void> => watched.stop();
  const deadline = Date.now() + 15_000;
  while (!existsSync(path.join(journalDir, 'system.journal'))) {
    if (watched.exited() !== null) throw new Error(`systemd-journald ended before writing its journal (${watched.exited()}): ${watched.output().trim()}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`systemd-journald wrote no journal under ${journalDir} within 15 s: ${watched.output().trim()}`);
    }
    await sleep(25);
  }
  return { journalDir, stop };
}

/** The cursor of the journal entry whose MESSAGE is `marker`, once journald has read it from /dev/kmsg. */
async function cursorOf(journalDir: string, marker: string): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { stdout } = await run('journalctl', ['--directory', journalDir, '-o', 'json', '--no-pager', '-q', `MESSAGE=${marker}`]);
    const line = stdout.split('\n').find((l) => l.trim() !== '');
    if (line) return (JSON.parse(line) as { __CURSOR: string }).__CURSOR;
    if (Date.now() > deadline) throw new Error(`journald did not read the marker ${marker} from /dev/kmsg within 15 s`);
    await sleep(100);
  }
}

/** The part of `lines` after the line containing `begin` and before the one containing `end`. */
function between(lines: string[], begin: string, end: string): string[] {
  const from = lines.findIndex((l) => l.includes(begin));
  const to = lines.findIndex((l) => l.includes(end));
  assert.ok(from >= 0 && to > from, `markers ${begin} … ${end} not found in order (${from}, ${to}) in ${lines.length} lines`);
  return lines.slice(from + 1, to);
}

/** `prpt parse --json --no-resolve -` on `text`: the events, with the summary line for the message of a failure. */
function prptParse(text: string): { events: StorageEvent[]; summary: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/prpt'), 'parse', '--json', '--no-resolve', '-'], { input: text, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const events = r.stdout.split('\n').filter((l) => l.trim()).map((l) => StorageEvent.parse(JSON.parse(l)));
  return { events, summary: r.stderr.trim() };
}

describe('prpt parse: journalctl -k, dmesg -x and /dev/kmsg records of the same kernel lines', () => {
  it('give the same events (type, device, severity)', { timeout: 180_000 }, async (t) => {
    if (!requireRoot(t, 'makes real kernel storage lines (loop, FUSE, mount) and runs systemd-journald in a private mount namespace')) return;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-fmt-'));
    const tag = `prpt-fmt-${process.pid}-${randomBytes(4).toString('hex')}`;
    const begin = `${tag}-begin`;
    const end = `${tag}-end`;
    let journald: Journald | null = null;
    let eio: EioLoop | null = null;
    let ext4: CorruptExt4 | null = null;
    try {
      journald = await startJournald(dir);
      injectKmsg(begin, 5);
      const after = await cursorOf(journald.journalDir, begin);

      // the kernel's own storage lines (about ten records; never a flood)
      eio = await eioLoop({ sizeBytes: 16 << 20, badOffset: 8 << 20 });
      const ioError = `I/O error, dev ${eio.loopDev}, sector ${eio.badSector}`;
      // the block layer rate-limits its I/O error line machine-wide: read again (at most 3 times) until it is logged
      for (let i = 0; i < 3; i++) {
        await eio.readBadRange();
        await sleep(200);
        if (readKmsgRing().some((r) => r.includes(ioError))) break;
        await sleep(2000);
      }
      ext4 = await corruptExt4({ sizeBytes: 16 << 20 });
      await ext4.triggerError();
      await sleep(200);
      injectKmsg(end, 5);
      await cursorOf(journald.journalDir, end);

      const devices = new Set([eio.loopDev, ext4.loopDev]);
      const kmsg = between(readKmsgRing(), begin, end).join('');
      const dmesg = between((await run('dmesg', ['-x'])).stdout.split('\n'), begin, end).join('\n') + '\n';
      // the default output: no -o; --after-cursor and the end marker only cut the window
      const journal = between([begin, ...(await run('journalctl', ['-k', '--directory', journald.journalDir, '--after-cursor', after, '--no-pager'])).stdout.split('\n')], begin, end).join('\n') + '\n';
      t.diagnostic(`loop devices ${[...devices].join(', ')}; journalctl -k lines:\n${journal}`);

      const views = { kmsg: prptParse(kmsg), 'dmesg -x': prptParse(dmesg), 'journalctl -k': prptParse(journal) };
      const key = (e: StorageEvent): string => `${e.event_type} ${e.system} ${e.dev_name} ${e.severity}`;
      const seen = Object.fromEntries(Object.entries(views).map(([name, v]) => [name, v.events.filter((e) => devices.has(e.dev_name)).map(key)]));
      t.diagnostic(JSON.stringify({ seen, summaries: Object.fromEntries(Object.entries(views).map(([n, v]) => [n, v.summary])) }, null, 1));

      // what the kernel logged is there (the I/O error only if the rate limit let it through)
      const kmsgEvents = seen.kmsg!;
      assert.ok(kmsgEvents.includes(`FS_ERROR fs ${ext4.loopDev} error`), `no ext4 error event from the /dev/kmsg records: ${kmsgEvents.join('; ')}`);
      assert.ok(kmsgEvents.includes(`FS_MOUNTED fs ${ext4.loopDev} info`), `no ext4 mount event from the /dev/kmsg records: ${kmsgEvents.join('; ')}`);
      if (kmsg.includes(ioError)) assert.ok(kmsgEvents.includes(`BLK_IO_ERROR block ${eio.loopDev} error`), kmsgEvents.join('; '));
      else t.diagnostic(`the block layer's rate limit kept "${ioError}" out of the log: no BLK_IO_ERROR to compare`);

      // the same events, in the same order, from all three
      assert.deepEqual(seen['dmesg -x'], kmsgEvents, 'dmesg -x');
      assert.deepEqual(seen['journalctl -k'], kmsgEvents, 'journalctl -k');
      // and journalctl's lines were read as kernel lines of a known format, not as bare text
      assert.match(views['journalctl -k'].summary, /\(syslog[ :]/, views['journalctl -k'].summary);
    } finally {
      await ext4?.cleanup().catch(() => undefined);
      await eio?.cleanup().catch(() => undefined);
      await journald?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
