// Issue 10 C14 without root: four stdout receivers write to a real pipe (a
// FIFO) that nobody reads. The hand-over never waits, libuv's thread pool
// stays free for file I/O (which used to queue behind four threads parked in
// write(2)), what cannot be written is dropped and counted, and close()
// returns within its deadline.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/log/logger.ts';
import { AgentMetrics } from '../../src/metrics/agent-metrics.ts';
import { StdoutReceiver } from '../../src/receivers/stdout.ts';
import { mkEvent } from '../unit/storage/helpers.ts';
import { onAck } from '../helpers/ack.ts';

describe('hostile: stdout receivers on a FIFO nobody reads', () => {
  it('keep the thread pool free, count their drops and close within the deadline', async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-hostile-fifo-'));
    const fifo = path.join(dir, 'out.fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
    const rfd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK); // held open, never read
    t.after(() => closeSync(rfd));
    // the receivers take the write end over: the last one's close closes it
    const wfd = openSync(fifo, constants.O_WRONLY);
    const metrics = new AgentMetrics();
    const receivers = ['a', 'b', 'c', 'd'].map((n) => new StdoutReceiver(`fifo-${n}`, { format: 'json' }, 2000, { log: silentLogger(), metrics }, wfd));
    let done = 0;
    const t0 = performance.now();
    for (let i = 0; i < 5000; i++) {
      const ev = mkEvent(i);
      for (const r of receivers) r.deliver(ev, onAck(() => void done++));
    }
    assert.ok(performance.now() - t0 < 2000, 'handing 20,000 events over never waits for the reader');
    // the pipe is full by now; file I/O through the thread pool must still run at once
    const file = path.join(dir, 'probe');
    const p0 = performance.now();
    for (let i = 0; i < 8; i++) {
      await writeFile(file, `probe ${i}`);
      assert.equal(await readFile(file, 'utf8'), `probe ${i}`);
    }
    const probeMs = performance.now() - p0;
    t.diagnostic(`8 writeFile+readFile with four receivers stuck on the pipe: ${probeMs.toFixed(0)} ms`);
    assert.ok(probeMs < 2000, `file I/O is not queued behind the stuck receivers (${probeMs.toFixed(0)} ms)`);
    const c0 = performance.now();
    await Promise.all(receivers.map((r) => r.close(1000)));
    const closeMs = performance.now() - c0;
    t.diagnostic(`close(1000) of four stuck receivers: ${closeMs.toFixed(0)} ms`);
    assert.ok(closeMs < 5000, `close returns within its deadline (${closeMs.toFixed(0)} ms)`);
    const text = await metrics.registry.metrics();
    const dropped = [...text.matchAll(/^peripety_receiver_dropped_events_total\{receiver="fifo-[a-d]"\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);
    t.diagnostic(`dropped and counted: ${dropped}; released: ${done}`);
    assert.ok(dropped > 0, 'what the reader never took is counted as dropped');
  });
});
