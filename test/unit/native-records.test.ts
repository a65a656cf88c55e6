// readRecords() of the native addon (the kmsg collector's batched read)
// against a descriptor that, like /dev/kmsg, returns one record per read():
// an AF_UNIX datagram socket (one datagram per read). Every limit of a call
// is exercised: the reads, the ends array, the room left in the buffer, and
// the stop at EAGAIN.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadNative } from '../../src/native/index.ts';
import { loadUnixDgram } from '../../src/native/unixdgram.ts';

describe('native readRecords', () => {
  const n = loadNative();
  const u = loadUnixDgram();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-records-'));
  const server = u.socket(0);
  assert.ok(server >= 0);
  assert.equal(u.bind(server, path.join(dir, 's')), 0);
  const client = u.socket(0);
  assert.equal(u.connect(client, path.join(dir, 's')), 0);
  after(() => {
    u.close(client);
    u.close(server);
  });
  const send = (...texts: string[]) => texts.forEach((t) => assert.equal(u.send(client, null, Buffer.from(t)), Buffer.byteLength(t)));
  const state = new Int32Array(2);

  function read(buf: Buffer, ends: Int32Array, maxReads: number, minRoom: number): string[] {
    const count = n.readRecords(server, buf, ends, state, maxReads, minRoom);
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < count; i++) {
      out.push(buf.toString('latin1', start, ends[i]));
      start = ends[i]!;
    }
    return out;
  }

  it('reads every record there is, in order, then stops at EAGAIN', () => {
    send('one', 'two two', 'three');
    assert.deepEqual(read(Buffer.alloc(1024), new Int32Array(16), 100, 16), ['one', 'two two', 'three']);
    assert.deepEqual([...state], [-n.EAGAIN, 4]);
    assert.deepEqual(read(Buffer.alloc(1024), new Int32Array(16), 100, 16), []);
    assert.deepEqual([...state], [-n.EAGAIN, 1]);
  });
  it('stops at maxReads, a full ends array, and too little room, and says so; the rest stays for the next call', () => {
    send('a', 'b', 'c', 'd', 'e', 'f', 'g');
    assert.deepEqual(read(Buffer.alloc(1024), new Int32Array(16), 2, 16), ['a', 'b']);
    assert.deepEqual([...state], [1, 2]);
    assert.deepEqual(read(Buffer.alloc(1024), new Int32Array(2), 100, 16), ['c', 'd']);
    assert.deepEqual([...state], [1, 2]);
    // 40 bytes, 20 wanted free before each read: e, f, g (37 left), x (17 left): stop
    send('x'.repeat(20), 'y'.repeat(20));
    assert.deepEqual(read(Buffer.alloc(40), new Int32Array(16), 100, 20), ['e', 'f', 'g', 'x'.repeat(20)]);
    assert.deepEqual([...state], [1, 4]);
    assert.deepEqual(read(Buffer.alloc(40), new Int32Array(16), 100, 20), ['y'.repeat(20)]);
    assert.deepEqual([...state], [-n.EAGAIN, 2]);
  });
  it('returns -errno of a failed read after the records before it', () => {
    assert.equal(n.readRecords(-1, Buffer.alloc(64), new Int32Array(4), state, 10, 8), 0);
    assert.deepEqual([...state], [-9 /* EBADF */, 1]);
  });
  it('throws a TypeError on bad arguments', () => {
    assert.throws(() => n.readRecords(server, Buffer.alloc(8), new Int32Array(1), new Int32Array(1), 1, 1), /readRecords/);
    assert.throws(() => n.readRecords(server, Buffer.alloc(8), new Int32Array(1), state, 1, 0), /readRecords/);
  });
});
