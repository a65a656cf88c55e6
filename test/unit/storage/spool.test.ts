import assert from 'node:assert/strict';
import { appendFile, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openSpool, type SpoolHandle } from '../../../src/storage/spool.ts';
import { log, mkEvent, range, tmpDir } from './helpers.ts';

async function drain(h: SpoolHandle, max = 3): Promise<string[]> {
  const ids: string[] = [];
  for (let b = await h.read(max); b !== null; b = await h.read(max)) {
    ids.push(...b.events.map((e) => e.event_id));
    await h.commit(b);
  }
  return ids;
}

const ids = (ns: number[]) => ns.map((i) => mkEvent(i).event_id);

describe('spool', () => {
  it('replays appends in order across segments, then removes its files', async (t) => {
    const dir = path.join(await tmpDir(t), 'spool', 'b');
    const h = await openSpool({ dir, log, segmentBytes: 600 }, () => {});
    assert.equal(h.hasData, false);
    for (const chunk of [range(4), range(4, 4), range(4, 8)]) assert.equal(await h.append(chunk.map((i) => mkEvent(i))), 4);
    assert.ok(h.hasData);
    assert.ok((await readdir(dir)).filter((f) => f.endsWith('.jsonl')).length > 1, 'several segments');
    assert.deepEqual(await drain(h), ids(range(12)));
    assert.equal(h.hasData, false);
    assert.equal(h.bytes, 0);
    assert.deepEqual(await readdir(dir), []);
    await h.close();
  });

  it('a batch not committed is read again (a crash mid-replay replays it)', async (t) => {
    const dir = await tmpDir(t);
    const h = await openSpool({ dir, log }, () => {});
    await h.append(range(5).map((i) => mkEvent(i)));
    const b1 = await h.read(2);
    assert.deepEqual(b1!.events.map((e) => e.event_id), ids([0, 1]));
    await h.close();
    const h2 = await openSpool({ dir, log }, () => {});
    assert.deepEqual(await drain(h2, 2), ids(range(5)));
    await h2.close();
  });

  it('a restart resumes after the committed position and appends to a new segment', async (t) => {
    const dir = await tmpDir(t);
    const h = await openSpool({ dir, log }, () => {});
    await h.append(range(6).map((i) => mkEvent(i)));
    await h.commit((await h.read(4))!);
    await h.close();
    assert.deepEqual(JSON.parse(await readFile(path.join(dir, 'offset.json'), 'utf8')).seq, 1);
    const h2 = await openSpool({ dir, log }, () => {});
    assert.ok(h2.hasData);
    await h2.append([mkEvent(6)]);
    assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.jsonl')).sort(), ['000000000001.jsonl', '000000000002.jsonl']);
    assert.deepEqual(await drain(h2), ids([4, 5, 6]));
    await h2.close();
  });

  it('a line torn by a crash is skipped, the rest replays', async (t) => {
    const dir = await tmpDir(t);
    const h = await openSpool({ dir, log }, () => {});
    await h.append([mkEvent(0), mkEvent(1)]);
    await h.close();
    await appendFile(path.join(dir, '000000000001.jsonl'), '{"hostname":"no');
    const h2 = await openSpool({ dir, log }, () => {});
    await h2.append([mkEvent(2)]);
    let corrupt = 0;
    const got: string[] = [];
    for (let b = await h2.read(10); b !== null; b = await h2.read(10)) {
      corrupt += b.corrupt;
      got.push(...b.events.map((e) => e.event_id));
      await h2.commit(b);
    }
    assert.deepEqual(got, ids([0, 1, 2]));
    assert.equal(corrupt, 1);
    assert.equal(h2.hasData, false);
    await h2.close();
  });

  it('the byte cap cuts an append: only the prefix that fits is written', async (t) => {
    const dir = await tmpDir(t);
    const line = Buffer.byteLength(`${JSON.stringify(mkEvent(0))}\n`);
    const h = await openSpool({ dir, log, maxBytes: line * 3 + 10 }, () => {});
    assert.equal(await h.append(range(5).map((i) => mkEvent(i))), 3);
    assert.equal(await h.append([mkEvent(5)]), 0);
    assert.ok(h.bytes <= line * 3 + 10);
    assert.deepEqual(await drain(h), ids([0, 1, 2]));
    assert.equal(await h.append([mkEvent(6)]), 1, 'room again after the replay');
    await h.close();
  });

  it('shared by two handles: both append, only the newest reads; the role passes back on close', async (t) => {
    const dir = await tmpDir(t);
    let oldNotified = 0;
    let newNotified = 0;
    const oldH = await openSpool({ dir, log }, () => oldNotified++);
    const newH = await openSpool({ dir, log }, () => newNotified++);
    assert.equal(oldH.isReader, false);
    assert.equal(newH.isReader, true);
    await oldH.append([mkEvent(0)]);
    assert.equal(newNotified, 1, 'the reader hears of foreign data');
    await newH.append([mkEvent(1)]);
    assert.equal(await oldH.read(10), null);
    await newH.close();
    assert.equal(oldNotified, 1, 'the remaining handle becomes the reader');
    assert.ok(oldH.isReader);
    assert.deepEqual(await drain(oldH), ids([0, 1]));
    await oldH.close();
  });

  it('a segment removed behind its back is stepped over, not retried forever', async (t) => {
    const dir = await tmpDir(t);
    const h = await openSpool({ dir, log, segmentBytes: 1 }, () => {});
    await h.append([mkEvent(0)]);
    await h.append([mkEvent(1)]);
    await rm(path.join(dir, '000000000001.jsonl'));
    assert.deepEqual(await drain(h), ids([1]));
    assert.equal(h.hasData, false);
    await h.close();
  });

  it('an unusable directory rejects the open', async (t) => {
    const dir = await tmpDir(t);
    await appendFile(path.join(dir, 'file'), 'x');
    await assert.rejects(openSpool({ dir: path.join(dir, 'file', 'spool'), log }, () => {}));
    // and the directory can be opened again afterwards (nothing stale left behind)
    const h = await openSpool({ dir: path.join(dir, 'ok'), log }, () => {});
    await h.close();
  });
});
