import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { SeqTracker } from '../../src/kmsg/checkpoint.ts';
import { POSITION_FILE, readPosition, writePosition } from '../../src/kmsg/position.ts';

describe('SeqTracker', () => {
  it('commits only a prefix of fully processed records', () => {
    const commits: number[] = [];
    const t = new SeqTracker(9, (s) => commits.push(s));
    const a = t.begin(10);
    const b = t.begin(11);
    t.skip(12);
    const c = t.begin(13);
    b.release();
    assert.equal(t.committed, 9, 'record 10 still in flight');
    a.retain(); // a receiver holds it
    a.release();
    assert.equal(t.committed, 9);
    a.release();
    assert.equal(t.committed, 12, '10, 11 done; 12 skipped');
    c.release();
    c.release(); // a double release is harmless
    assert.equal(t.committed, 13);
    assert.deepEqual(commits, [12, 13]);
    assert.equal(t.inFlight, 0);
    t.skip(14);
    assert.equal(t.committed, 14);
  });
  it('a lost record holds the committed position before it for the rest of the run, in bounded memory', () => {
    const lost: [number, boolean][] = [];
    const t = new SeqTracker(9, () => {}, (seq, first) => lost.push([seq, first]));
    const a = t.begin(10);
    const b = t.begin(11);
    const c = t.begin(12);
    a.release();
    b.retain(); // stored by one backend, dropped by another that must not lose it
    b.release();
    b.lost!();
    assert.equal(t.committed, 10);
    assert.equal(t.held, 10);
    c.lost!();
    c.lost!(); // released already: no effect
    for (let i = 13; i < 100_013; i++) t.begin(i).release();
    assert.equal(t.committed, 10, 'never past the first lost record');
    assert.equal(t.inFlight, 0, 'entries still advance');
    assert.deepEqual(lost, [[11, true], [12, false]]);
  });
  it('stays bounded over a long run', () => {
    const t = new SeqTracker(-1, () => {});
    for (let i = 0; i < 100_000; i++) t.begin(i).release();
    assert.equal(t.committed, 99_999);
    assert.equal(t.inFlight, 0);
  });
});

describe('saved position', () => {
  it('round-trips and reports a damaged file instead of throwing', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-pos-'));
    assert.deepEqual(readPosition(dir), { position: null });
    writePosition(dir, { boot_id: 'b1', seq: 42 });
    assert.deepEqual(readPosition(dir).position, { boot_id: 'b1', seq: 42 });
    assert.match(readFileSync(path.join(dir, POSITION_FILE), 'utf8'), /"seq":42/);
    writeFileSync(path.join(dir, POSITION_FILE), '{"boot_id": 5');
    const bad = readPosition(dir);
    assert.equal(bad.position, null);
    assert.match(bad.error ?? '', /not JSON/);
  });
});
