// Issue 10 A1: a storage path is never a device. A real loop device (over a
// file of random bytes) is named as the sqlite Path, through a symbolic link,
// as a -wal sibling, and as a jsonl file (a device node with the name of the
// next jsonl file, and a link to it). The agent must refuse the backend with a
// message that names the path and says what it is (it starts without that
// backend and reports it: a bad local file degrades), the device's first
// 64 KiB must be unchanged, and no -wal/-shm file may appear in /dev.
// (On f38c4a7 the agent started, wrote an SQLite header over the device's
// first 32 KiB and left /dev/loopN-wal and -shm behind.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isRoot, requireRoot } from '../../helpers/faults.ts';
import { PERIPETY, quietConfig, spawnCli } from '../../helpers/cli-process.ts';

const work = mkdtempSync(path.join(os.tmpdir(), 'hostile-dev-'));
let loop = '';

function head(dev: string): Buffer {
  const fd = openSync(dev, 'r');
  try {
    const b = Buffer.alloc(64 * 1024);
    readSync(fd, b, 0, b.length, 0);
    return b;
  } finally {
    closeSync(fd);
  }
}

function storageConfig(file: 'sqlite' | 'jsonl', config: Record<string, unknown>): string {
  return JSON.stringify({ root: { elos: { EventLogging: { Plugins: { hostile: { File: file, Filter: ['1 1 EQ'], Config: config } } } } } });
}

/** Start the real agent with this storage configuration; it must exit non-zero within 20 s. */
async function refused(name: string, file: 'sqlite' | 'jsonl', config: Record<string, unknown>): Promise<string> {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'agent.toml'), quietConfig());
  writeFileSync(path.join(dir, 'storage.json'), storageConfig(file, config));
  const before = head(`/dev/${loop}`);
  const run = spawnCli(PERIPETY, ['agent', '--config', path.join(dir, 'agent.toml'), '--storage-config', path.join(dir, 'storage.json'), '--state-dir', path.join(dir, 'state')]);
  // It either refuses to start or (issue 10 C11: a bad local file degrades, it does not stop
  // the agent) starts without that backend, saying why. On the base it started with the
  // backend writing to the device: stop it (SIGTERM, so sqlite checkpoints what it wrote).
  const started = await run.waitFor(/"agent started"/, 20_000);
  if (started) run.proc.kill('SIGTERM');
  const out = await run.finish(20_000);
  const afterBytes = head(`/dev/${loop}`);
  const changed = afterBytes.findIndex((b, i) => b !== before[i]);
  let lastChanged = -1;
  for (let i = afterBytes.length - 1; i >= 0; i--) if (afterBytes[i] !== before[i]) { lastChanged = i; break; }
  const report = `${name}: exit ${out.code}, device bytes changed: ${changed < 0 ? 'none' : `${changed}..${lastChanged} (header ${JSON.stringify(afterBytes.subarray(0, 16).toString('latin1'))})`}, stderr: ${out.stderr.slice(-600)}`;
  process.stderr.write(`${report}\n`);
  assert.ok(changed < 0, `the device must be unchanged: ${report}`);
  const left = ['-wal', '-shm', '-journal'].filter((s) => existsSync(`/dev/${loop}${s}`));
  // clean up at once, so the next case starts from a clean /dev
  for (const s of left) rmSync(`/dev/${loop}${s}`, { force: true });
  assert.deepEqual(left, [], `no /dev/${loop}-wal/-shm/-journal may appear: ${report}`);
  if (started) {
    assert.match(out.stderr, /"degraded":\[[^\]]*storage backend \\"hostile\\" did not start[^\]]*\],"msg":"agent started"/, `the agent must run without the refused backend and say so: ${report}`);
  } else {
    assert.notEqual(out.code, 0, `the agent must refuse to start: ${report}`);
    assert.notEqual(out.code, null, `the agent must exit, not run on: ${report}`);
  }
  return out.stderr;
}

describe('hostile: a storage path is never a device (real loop device)', { skip: !isRoot() && 'NOT ROOT: needs losetup' }, () => {
  before(() => {
    if (!isRoot()) return;
    const img = path.join(work, 'disk.img');
    writeFileSync(img, randomBytes(1024 * 1024));
    loop = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim().replace('/dev/', '');
  });
  after(() => {
    if (loop) {
      for (const s of ['-wal', '-shm', '-journal']) rmSync(`/dev/${loop}${s}`, { force: true });
      execFileSync('losetup', ['-d', `/dev/${loop}`]);
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('sqlite Path = /dev/loopN is refused and the device is untouched', async (t) => {
    if (!requireRoot(t)) return;
    const err = await refused('sqlite-dev', 'sqlite', { Path: `/dev/${loop}` });
    assert.match(err, new RegExp(`/dev/${loop} is a block device`));
  });

  it('sqlite Path = a symbolic link to /dev/loopN is refused', async (t) => {
    if (!requireRoot(t)) return;
    const link = path.join(work, 'link.db');
    symlinkSync(`/dev/${loop}`, link);
    const err = await refused('sqlite-link', 'sqlite', { Path: link });
    assert.match(err, /link\.db is a symbolic link/);
  });

  it('a sqlite -wal sibling that is the device is refused', async (t) => {
    if (!requireRoot(t)) return;
    const dir = path.join(work, 'wal');
    mkdirSync(dir);
    symlinkSync(`/dev/${loop}`, path.join(dir, 'events.db-wal'));
    const err = await refused('sqlite-wal', 'sqlite', { Path: path.join(dir, 'events.db') });
    assert.match(err, /events\.db-wal is a symbolic link/);
  });

  it('a jsonl file that is a device node of /dev/loopN is refused', async (t) => {
    if (!requireRoot(t)) return;
    const dir = path.join(work, 'jsonl-node');
    mkdirSync(dir);
    const [major, minor] = readFileSync(`/sys/block/${loop}/dev`, 'utf8').trim().split(':') as [string, string];
    execFileSync('mknod', [path.join(dir, 'ev-0.jsonl'), 'b', major, minor]);
    const err = await refused('jsonl-node', 'jsonl', { StoragePath: path.join(dir, 'ev-%count%.jsonl') });
    assert.match(err, /ev-0\.jsonl is a block device/);
  });

  it('a jsonl file that is a symbolic link to /dev/loopN is refused', async (t) => {
    if (!requireRoot(t)) return;
    const dir = path.join(work, 'jsonl-link');
    mkdirSync(dir);
    symlinkSync(`/dev/${loop}`, path.join(dir, 'ev-0.jsonl'));
    const err = await refused('jsonl-link', 'jsonl', { StoragePath: path.join(dir, 'ev-%count%.jsonl') });
    assert.match(err, /ev-0\.jsonl is a symbolic link/);
  });
});
