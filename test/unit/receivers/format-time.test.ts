// formatText's time (made once per second and reused) against the Date
// path it replaces: eventDate(ev).toISOString(), for times in one second,
// across seconds, from timestamp_us and from timestamp alone, before 1970
// and past the year 9999.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { eventDate } from '../../../src/events/time.ts';
import { formatText } from '../../../src/receivers/format.ts';

function ev(timestamp: number, us?: string): StorageEvent {
  return {
    hostname: 'h', severity: 'warn', system: 'block', timestamp, event_id: 'e', event_type: 'BLK_IO_ERROR',
    dev_wwid: '', dev_name: 'sdb', msg: 'm', extentions: us === undefined ? {} : { timestamp_us: us },
  };
}

function expectSame(e: StorageEvent): void {
  const want = eventDate(e).toISOString();
  const line = formatText(e);
  assert.equal(line.slice(0, line.indexOf(' ')), want, JSON.stringify(e.extentions) + ` ${e.timestamp}`);
}

describe('formatText time', () => {
  it('is toISOString() of the event time, within a second and across seconds', () => {
    const base = 1_765_152_000_000_000; // 2025-12-08 in µs
    for (const d of [0, 1, 999, 1000, 9999, 10_000, 99_999, 100_000, 999_999, 1_000_000, 1_000_001, 59_999_999, 86_400_000_123]) {
      expectSame(ev(0, String(base + d)));
    }
    for (let i = 0; i < 2000; i++) expectSame(ev(0, String(base + Math.floor(Math.random() * 5_000_000_000))));
  });
  it('from timestamp alone (no or an unusable timestamp_us)', () => {
    expectSame(ev(1_765_152_000));
    expectSame(ev(1_765_152_001, 'abc'));
    expectSame(ev(1, '0'));
    expectSame(ev(0));
  });
  it('before 1970 and past the year 9999 (six-digit years) as Date writes them', () => {
    expectSame(ev(-1));
    expectSame(ev(-86_400 * 365 * 3000));
    expectSame(ev(253_402_300_799, '253402300799999999'.slice(0, 16)));
    expectSame(ev(253_402_300_800));
    expectSame(ev(253_402_300_799));
  });
});
