// The file-safety helpers (src/fsutil/safe-files.ts) and the prpt parse line
// splitter, on real files, links and FIFOs in a temporary directory.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants as C, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { LineSplitter } from '../../../src/cli/lines.ts';
import {
  checkRegularOrAbsent, confine, ensurePrivateDir, isUnderVirtualFs, makeDirs, openPrivateFile, privatizeTree, readRegularFile, writePrivateFileAtomic,
} from '../../../src/fsutil/safe-files.ts';
import { findDuplicateKey } from '../../../src/storage/json-keys.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'safe-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const mode = (p: string) => lstatSync(p).mode & 0o777;

describe('safe-files', () => {
  it('checkRegularOrAbsent: absent, file, and refusals that say what it is', () => {
    assert.equal(checkRegularOrAbsent(path.join(dir, 'nope'), 'x'), 'absent');
    writeFileSync(path.join(dir, 'f'), 'a');
    assert.equal(checkRegularOrAbsent(path.join(dir, 'f'), 'x'), 'file');
    symlinkSync(path.join(dir, 'f'), path.join(dir, 'link'));
    assert.throws(() => checkRegularOrAbsent(path.join(dir, 'link'), 'x'), /link is a symbolic link/);
    assert.throws(() => checkRegularOrAbsent('/dev/null', 'x'), /\/dev\/null is a character device/);
    assert.throws(() => checkRegularOrAbsent(dir, 'x'), /is a directory/);
  });

  it('readRegularFile: bounded, refuses FIFOs and devices at once, follows links unless noFollow', () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    assert.throws(() => readRegularFile(fifo, 'cfg', { maxBytes: 10 }), /fifo is a FIFO/);
    assert.throws(() => readRegularFile('/dev/zero', 'cfg', { maxBytes: 10 }), /\/dev\/zero is a character device/);
    writeFileSync(path.join(dir, 'big'), 'x'.repeat(11));
    assert.throws(() => readRegularFile(path.join(dir, 'big'), 'cfg', { maxBytes: 10 }), /larger than 10 bytes/);
    assert.equal(readRegularFile(path.join(dir, 'big'), 'cfg', { maxBytes: 11 }), 'x'.repeat(11));
    symlinkSync(path.join(dir, 'big'), path.join(dir, 'biglink'));
    assert.equal(readRegularFile(path.join(dir, 'biglink'), 'cfg', { maxBytes: 11 }).length, 11);
    assert.throws(() => readRegularFile(path.join(dir, 'biglink'), 'cfg', { maxBytes: 11, noFollow: true }), /biglink is a symbolic link/);
  });

  it('confine: inside is resolved, outside and .. are refused', () => {
    assert.equal(confine('/var/lib/p', 'events.db', 'Path'), '/var/lib/p/events.db');
    assert.equal(confine('/var/lib/p', '/var/lib/p/a/b.db', 'Path'), '/var/lib/p/a/b.db');
    assert.throws(() => confine('/var/lib/p', '../x.db', 'Path'), /outside the agent's state directory/);
    assert.throws(() => confine('/var/lib/p', '/dev/sda', 'Path'), /outside/);
    assert.throws(() => confine('/var/lib/p', '/var/lib/pp/x', 'Path'), /outside/);
    assert.throws(() => confine('/var/lib/p', '.', 'Path'), /outside/);
  });

  it('isUnderVirtualFs and a bounded mkdir under /proc', () => {
    assert.ok(isUnderVirtualFs('/proc/1/foo'));
    assert.ok(isUnderVirtualFs('/sys'));
    assert.ok(isUnderVirtualFs('/tmp/../proc/x'));
    assert.ok(!isUnderVirtualFs('/procfs/x'));
    assert.throws(() => makeDirs('/proc/1/peripety-test/a/b'), /cannot create the directory/);
    assert.throws(() => ensurePrivateDir('/proc/1/x', 'the state directory'), /under \/proc/);
  });

  it('ensurePrivateDir, privatizeTree, openPrivateFile: 0700 / 0600 whatever existed', () => {
    const d = path.join(dir, 'state');
    makeDirs(path.join(d, 'sub'), 0o755);
    execFileSync('chmod', ['0755', d, path.join(d, 'sub')]);
    writeFileSync(path.join(d, 'sub', 'f'), 'x', { mode: 0o644 });
    symlinkSync('/etc/hostname', path.join(d, 'l'));
    const before = mode('/etc/hostname');
    ensurePrivateDir(d, 'state');
    assert.equal(mode(d), 0o700);
    writeFileSync(path.join(d, 'other'), 'x', { mode: 0o644 });
    assert.equal(privatizeTree(d, ['sub', 'l', 'missing']), 2);
    assert.equal(mode(path.join(d, 'other')), 0o644, 'what is not named is not touched');
    assert.equal(mode(path.join(d, 'sub')), 0o700);
    assert.equal(mode(path.join(d, 'sub', 'f')), 0o600);
    assert.equal(mode('/etc/hostname'), before, 'a link is never followed');
    writeFileSync(path.join(d, 'g'), 'x', { mode: 0o644 });
    closeSync(openPrivateFile(path.join(d, 'g'), 'g', C.O_WRONLY));
    assert.equal(mode(path.join(d, 'g')), 0o600);
    assert.throws(() => openPrivateFile(path.join(d, 'l'), 'l', C.O_WRONLY), /l is a symbolic link/);
  });

  it('ensurePrivateDir never takes a shared or system directory', () => {
    const before = mode('/tmp');
    assert.throws(() => ensurePrivateDir('/tmp', 'the state directory'), /\/tmp is a system directory/);
    assert.throws(() => ensurePrivateDir('/var/lib/', 'the state directory'), /\/var\/lib is a system directory/);
    const shared = path.join(dir, 'shared');
    makeDirs(shared);
    execFileSync('chmod', ['1777', shared]);
    assert.throws(() => ensurePrivateDir(shared, 'the state directory'), /shared is shared \(world-writable, sticky\)/);
    assert.equal(mode('/tmp'), before);
    assert.equal(lstatSync(shared).mode & 0o7777, 0o1777, 'left as it was');
  });

  it('writePrivateFileAtomic: 0600, refuses a link or directory in the way, never writes through a planted temporary link', () => {
    const target = path.join(dir, 'target');
    writeFileSync(target, 'keep');
    const file = path.join(dir, 'pos.json');
    symlinkSync(target, file);
    assert.throws(() => writePrivateFileAtomic(file, 'new', 'pos'), /pos\.json is a symbolic link/);
    assert.equal(readFileSync(target, 'utf8'), 'keep');
    assert.throws(() => writePrivateFileAtomic(dir, 'x', 'pos'), /is a directory/);
    const ok = path.join(dir, 'ok.json');
    symlinkSync(target, `${ok}.tmp`);
    writePrivateFileAtomic(ok, 'new', 'pos');
    assert.equal(readFileSync(target, 'utf8'), 'keep');
    assert.equal(readFileSync(ok, 'utf8'), 'new');
    assert.equal(statSync(ok).mode & 0o777, 0o600);
  });
});

describe('LineSplitter', () => {
  it('splits across chunks, drops an over-long line in bounded memory and reports it once', () => {
    const lines: string[] = [];
    const long: number[] = [];
    const s = new LineSplitter(8, (l) => lines.push(l.toString()), (n) => long.push(n));
    s.push(Buffer.from('ab\ncd'));
    s.push(Buffer.from('ef\n0123456'));
    s.push(Buffer.from('789abc'));
    s.push(Buffer.from('def\nlast'));
    s.end();
    assert.deepEqual(lines, ['ab', 'cdef', 'last']);
    assert.equal(long.length, 1);
    assert.ok(long[0]! > 8);
  });
});

describe('findDuplicateKey', () => {
  it('finds duplicates with their path, ignores strings and other objects', () => {
    assert.equal(findDuplicateKey('{"a": {"x": 1}, "b": {"x": 2}, "c": ["{\\"a\\":1,\\"a\\":2}"]}'), null);
    assert.deepEqual(findDuplicateKey('{"a": [{"k": 1}, {"k": 1, "k": 2}]}'), { key: 'k', path: 'a[1]' });
    assert.deepEqual(findDuplicateKey('{"a": 1, "a": 2}'), { key: 'a', path: '' });
    assert.deepEqual(findDuplicateKey('{"p": {"my key": {}, "my\\u0020key": {}}}'), { key: 'my key', path: 'p' });
  });
});
