// The one rule of event time (src/events/time.ts) and the parts that used to
// carry their own: the filter evaluator, the elos view, the storage time
// column, the k8s-events time, the stdout and webhook timestamps.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toElos } from '../../src/events/elos.ts';
import type { StorageEvent } from '../../src/events/schema.ts';
import { eventDate, eventTimeParts, eventTimeUs, formatTimestampUs, parseTimestampUs, usToSeconds } from '../../src/events/time.ts';
import { compileFilter } from '../../src/filter/compile.ts';
import { formatText } from '../../src/receivers/format.ts';
import { eventMicros } from '../../src/receivers/k8s-events/core.ts';
import { toAlert } from '../../src/receivers/webhook-format.ts';

const TS = 1_763_812_345;

function ev(timestampUs: string | undefined, timestamp = TS): StorageEvent {
  return {
    hostname: 'node-7', severity: 'error', system: 'block', timestamp, event_id: 'id', event_type: 'BLK_IO_ERROR',
    dev_wwid: '', dev_name: 'sdb', msg: 'I/O error', extentions: timestampUs === undefined ? {} : { timestamp_us: timestampUs },
  };
}

function filterSays(filter: string, e: StorageEvent): string {
  const r = compileFilter(filter);
  assert.equal(r.ok, true, filter);
  return r.ok ? r.filter.evaluate(e) : 'ERROR';
}

describe('event time: the one validity rule of timestamp_us', () => {
  it('1 to 16 digits, a positive safe integer', () => {
    for (const [text, want] of [
      ['1763812345123456', 1_763_812_345_123_456], ['1', 1], ['0000000000000042', 42],
      ['9007199254740991', Number.MAX_SAFE_INTEGER],
    ] as const) assert.equal(parseTimestampUs(text), want, text);
    for (const text of [undefined, '', '0', '0000', '-5', '+5', ' 123', '123 ', '1.5', '12.0', '1e3', '0x10', '0b1', '1_000',
      '9007199254740992', '99999999999999999', '1e300', 'Infinity', 'junk', '١٢', '1763812345123456.5']) {
      assert.equal(parseTimestampUs(text), null, JSON.stringify(text));
    }
  });

  it('formatTimestampUs writes what parseTimestampUs reads back', () => {
    for (const us of [1, 999_999, 1_000_000, 1_000_001, 1_763_812_345_000_001, 1_763_812_345_123_456, Number.MAX_SAFE_INTEGER]) {
      assert.equal(formatTimestampUs(us), String(us));
      assert.equal(parseTimestampUs(formatTimestampUs(us)), us);
    }
    assert.equal(formatTimestampUs(1.5), '1');
    assert.equal(formatTimestampUs(0), '0');
  });

  it('seconds and parts: from timestamp_us when valid, else timestamp as is', () => {
    assert.deepEqual(eventTimeParts(ev('1763812345123456')), { sec: TS, usec: 123_456 });
    assert.deepEqual(eventTimeParts(ev('junk')), { sec: TS, usec: 0 });
    assert.equal(eventTimeUs(ev('1763812345000001')), 1_763_812_345_000_001);
    assert.equal(eventTimeUs(ev(undefined)), TS * 1_000_000);
    assert.equal(usToSeconds(-1), -1, 'rounded down before 1970 too');
    // a timestamp too large for µs is not rounded through them
    assert.deepEqual(eventTimeParts(ev(undefined, Number.MAX_SAFE_INTEGER)), { sec: Number.MAX_SAFE_INTEGER, usec: 0 });
    assert.equal(toElos(ev(undefined, Number.MAX_SAFE_INTEGER)).date.sec, Number.MAX_SAFE_INTEGER);
  });
});

describe('event time: every reader agrees', () => {
  // Before, these spellings split the readers: the filter evaluator took
  // "1e3" or " 123" as µs, the elos view also "1.5" and "1e300", the stdout
  // line also "", "0" and "-5", the k8s-events receiver 17-digit values past 2^53.
  const spellings = [undefined, '1763812345123456', '1763812345000001', '', '0', '-5', '+5', ' 123', '1.5', '12.0', '1e3', '0x10',
    '1763812345123456.5', '9007199254740991', '9007199254740992', '99999999999999999', '1e300', 'junk'];
  for (const text of spellings) {
    it(`timestamp_us ${JSON.stringify(text)}`, () => {
      const e = ev(text);
      const valid = parseTimestampUs(text);
      const us = valid ?? TS * 1_000_000;
      const { sec, usec } = eventTimeParts(e);
      assert.equal(sec * 1_000_000 + usec, us);
      // the elos view and the filter evaluator
      const elos = toElos(e, 1);
      assert.deepEqual(elos.date, { sec, nsec: usec * 1000 });
      assert.equal(filterSays(`.e.date.sec ${sec} EQ .e.date.nsec ${usec * 1000} EQ AND`, e), 'MATCH');
      // storage's time column, the k8s-events time
      assert.equal(eventTimeUs(e), us);
      assert.equal(eventMicros(e, 5), us);
      // the stdout line and the webhook's alert
      const iso = new Date(Math.floor(us / 1000)).toISOString();
      assert.equal(eventDate(e).toISOString(), iso);
      assert.ok(formatText(e).startsWith(`${iso} `), formatText(e));
      assert.equal(toAlert(e).startsAt, iso);
    });
  }

  it('a non-digit spelling no longer moves a filter off the timestamp (was: "1e3" read as 1000 µs)', () => {
    assert.equal(filterSays(`.e.date.sec ${TS} EQ`, ev('1e3')), 'MATCH');
    assert.equal(filterSays('.e.date.sec 0 EQ', ev('1e3')), 'NO_MATCH');
    assert.equal(filterSays(`.e.date.sec ${TS} EQ .e.date.nsec 0 EQ AND`, ev('1.5')), 'MATCH');
  });
});
