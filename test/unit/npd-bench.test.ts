// The parts of bench/npd.bench.ts that do not need Go: the corpus file both
// sides read (raw /dev/kmsg records, escaped as the kernel escapes them), its
// splitting into records, the in-process pipeline it times, and the report's
// arithmetic. The NPD harness itself is built and run by the bench only (its
// first build fetches Go modules for minutes; docs/performance.md).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { corpusFile, escapeKmsg, kmsgRecord, levelOf, median, rawMessage, speedRatio, splitKmsgRecords } from '../../bench/lib/kmsg-corpus.ts';
import { makeBenchPipeline } from '../../bench/lib/pipeline.ts';
import { parseKmsgRecord } from '../../src/kmsg/record.ts';
import { loadCorpus } from '../helpers/real-world.ts';

describe('npd bench: the corpus file', () => {
  it('escapes as the kernel does: control bytes, the backslash, bytes from 0x7f, per UTF-8 byte', () => {
    assert.equal(escapeKmsg('plain text: 100% ok [sdb]'), 'plain text: 100% ok [sdb]');
    assert.equal(escapeKmsg('md/raid1:md0: Disk failure on sdb1\nOperation continuing'), 'md/raid1:md0: Disk failure on sdb1\\x0aOperation continuing');
    assert.equal(escapeKmsg('a\\b\tc\x7f'), 'a\\x5cb\\x09c\\x7f');
    assert.equal(escapeKmsg('café'), 'caf\\xc3\\xa9');
  });

  it('writes one record per corpus line that peripety parses back to the line\'s message and level', () => {
    const entries = loadCorpus();
    const records = splitKmsgRecords(corpusFile(entries, 10));
    assert.equal(records.length, entries.length);
    records.forEach((text, i) => {
      const e = entries[i]!;
      assert.ok(text.endsWith('\n') && text.indexOf('\n') === text.length - 1, `one line per record: ${JSON.stringify(text)}`);
      const r = parseKmsgRecord(text);
      assert.ok(r.ok, `${text}: ${r.ok ? '' : r.error}`);
      assert.equal(r.record.message, e.message.slice(0, 4096));
      assert.equal(r.record.seq, 10 + i);
      assert.equal(r.record.level, levelOf(e));
    });
    // the corpus has multi-line and non-ASCII messages: the escaping is exercised
    assert.ok(entries.some((e) => e.message.includes('\n')));
  });

  it('splits records with dictionary lines whole, as one read(2) of /dev/kmsg returns them', () => {
    const a = kmsgRecord(3, 7, 1000, 'I/O error, dev sdb, sector 8', { SUBSYSTEM: 'block', DEVICE: 'b8:16' });
    const b = kmsgRecord(6, 8, 2000, 'usb 1-1: new device');
    const c = kmsgRecord(4, 9, 3000, 'nvme nvme0: I/O 1 QID 4 timeout, aborting', { SUBSYSTEM: 'nvme' });
    assert.equal(a, '3,7,1000,-;I/O error, dev sdb, sector 8\n SUBSYSTEM=block\n DEVICE=b8:16\n');
    assert.deepEqual(splitKmsgRecords(a + b + '\n' + c), [a, b + '\n', c]);
    assert.deepEqual(splitKmsgRecords((a + b).slice(0, -1)), [a, b.slice(0, -1)]);
    assert.deepEqual(splitKmsgRecords(''), []);
    const r = parseKmsgRecord(splitKmsgRecords(a + b)[0]!);
    assert.ok(r.ok);
    assert.equal(r.record.subsystem, 'block');
    assert.equal(r.record.device, 'b8:16');
    assert.equal(rawMessage(a), 'I/O error, dev sdb, sector 8');
    assert.equal(rawMessage(kmsgRecord(2, 1, 1, 'x;\ny')), 'x;\\x0ay');
    assert.equal(rawMessage('no separator'), '');
  });
});

describe('npd bench: the pipeline it times and the report', () => {
  it('runs the corpus records through peripety\'s pipeline: events out, no record refused', () => {
    const records = splitKmsgRecords(corpusFile(loadCorpus())).map((r) => Buffer.from(r, 'latin1'));
    const p = makeBenchPipeline();
    try {
      p.run(records, records.length);
      assert.equal(p.counts.badRecords, 0);
      assert.ok(p.counts.events > records.length / 3, `events: ${p.counts.events} of ${records.length} records`);
      assert.ok(p.counts.bytes > 0);
      p.reset();
      assert.equal(p.counts.events, 0);
    } finally {
      p.close();
    }
  });

  it('takes medians and the ratio, refusing what is not a rate', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
    assert.equal(speedRatio(300_000, 100_000), 3);
    assert.ok(Number.isNaN(speedRatio(300_000, 0)));
    assert.ok(Number.isNaN(speedRatio(NaN, 1)));
    assert.ok(Number.isNaN(speedRatio(1, Infinity)));
  });
});
