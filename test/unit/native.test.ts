// The native addon against real descriptors: a pipe made non-blocking.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadNative, SEEK_END, SEEK_SET } from '../../src/native/index.ts';

describe('native addon', () => {
  const n = loadNative();
  it('reports EAGAIN on an empty non-blocking FIFO, then data once written, and polls readability', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-native-'));
    const fifo = path.join(dir, 'f');
    await new Promise<void>((res, rej) => spawn('mkfifo', [fifo]).on('exit', (c) => (c === 0 ? res() : rej(new Error('mkfifo')))));
    const rfd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const wfd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    const buf = Buffer.alloc(64);
    assert.equal(n.read(rfd, buf), -n.EAGAIN);
    const got = await new Promise<string>((resolve) => {
      const h = n.pollStart(rfd, n.READABLE, (status, events) => {
        assert.equal(status, 0);
        assert.ok(events & n.READABLE);
        const len = n.read(rfd, buf);
        n.pollStop(h);
        n.pollStop(h); // idempotent
        resolve(buf.toString('utf8', 0, len));
      });
      setTimeout(() => writeSync(wfd, 'hello'), 20);
    });
    assert.equal(got, 'hello');
    closeSync(wfd);
    closeSync(rfd);
  });
  it('returns -errno from lseek on a pipe and an offset on a file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-native-'));
    const fd = openSync(path.join(dir, 'x'), 'w+');
    writeSync(fd, 'abcdef');
    assert.equal(n.lseek(fd, 0, SEEK_END), 6);
    assert.equal(n.lseek(fd, 2, SEEK_SET), 2);
    assert.ok(n.lseek(fd, -100, SEEK_SET) < 0);
    closeSync(fd);
  });
  it('throws a clear TypeError on bad arguments', () => {
    assert.throws(() => n.pollStop({}), /pollStop/);
  });
});
