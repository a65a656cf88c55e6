// FilterHints: what a MATCH implies, for backends that push conditions into
// an index. Sound, not complete: every hint must hold for every matching
// event; an empty object is always allowed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageEvent } from '../../../src/events/schema.ts';
import { compileFilter } from '../../../src/filter/compile.ts';
import type { FilterHints } from '../../../src/filter/types.ts';

// Smaller cousins of table.test.ts's events (importing that file would run its tests here too).
const base = {
  hostname: 'node-7.example.com', severity: 'error', system: 'block', timestamp: 1763812345,
  event_id: '0b9f0f3e-7d0a-4d8e-9a57-1f0b3c2a9e11', event_type: 'BLK_IO_ERROR', dev_wwid: 'naa.5000c500a1b2c3d4',
  dev_name: 'sdb', msg: 'I/O error on sdb (READ, sector 2048)', extentions: { op: 'READ', kernel_level: '3', kmsg_seq: '48213' },
};
const READ_ERROR = StorageEvent.parse(base);
const MOUNTED = StorageEvent.parse({
  ...base, severity: 'info', system: 'fs', timestamp: 1763812400, event_type: 'FS_MOUNTED', dev_wwid: 'uuid.6f1c7e2a-0b9d-4c3e-8a5f-1d2e3c4b5a69',
  dev_name: 'sdc1', msg: 'ext4 filesystem on sdc1 mounted (ordered data mode)', extentions: { kernel_level: '6' },
});
const MD_FAILURE = StorageEvent.parse({
  ...base, hostname: 'node-3.example.com', system: 'mdraid', timestamp: 1763812500, event_type: 'MD_DISK_FAILURE',
  dev_wwid: 'md.uuid.3b2a1c0d:9e8f7a6b:5c4d3e2f:1a0b9c8d', dev_name: 'md0', msg: 'md0: member sdd1 failed', extentions: { kernel_level: '2' },
});
const EVENTS = [READ_ERROR, MOUNTED, MD_FAILURE];

function hints(filter: string): FilterHints {
  const r = compileFilter(filter);
  assert.equal(r.ok, true, `${filter}: ${r.ok ? '' : r.error.message}`);
  return r.ok ? r.filter.hints : {};
}

const CASES: Array<[string, FilterHints]> = [
  [".event.hostname 'node-7' STRCMP", { equals: { hostname: 'node-7' } }],
  [".ev.system 'block' STRCMP", { equals: { system: 'block' } }],
  [".e.event_type 'BLK_IO_ERROR' STRCMP", { equals: { event_type: 'BLK_IO_ERROR' } }],
  [".e.event_id 'abc' STRCMP", { equals: { event_id: 'abc' } }],
  [".e.dev_wwid 'naa.5000c500a1b2c3d4' STRCMP", { equals: { dev_wwid: 'naa.5000c500a1b2c3d4' } }],
  [".e.dev_name 'sdb' STRCMP", { equals: { dev_name: 'sdb' } }],
  ["'sdb' .e.dev_name STRCMP", { equals: { dev_name: 'sdb' } }],
  [".e.hardwareid 'node-7' STRCMP", { equals: { hostname: 'node-7' } }],
  [
    ".e.system 'block' STRCMP .e.dev_name 'sdb' STRCMP AND .e.timestamp 100 GE AND .e.timestamp 200 LT AND",
    { equals: { system: 'block', dev_name: 'sdb' }, timestampMin: 100, timestampMax: 199 },
  ],
  [
    ".e.system 'block' STRCMP .e.dev_name 'sdb' STRCMP AND .e.timestamp 100 GT .e.messageCode 6001 EQ AND AND",
    { equals: { system: 'block', dev_name: 'sdb' }, timestampMin: 101 },
  ],
  [".e.hostname 'h' STRCMP .e.system 'a' STRCMP .e.system 'b' STRCMP OR AND", { equals: { hostname: 'h' } }],
  ['.e.timestamp 100 GE', { timestampMin: 100 }],
  ['.e.timestamp 100 GT', { timestampMin: 101 }],
  ['.e.timestamp 100 LE', { timestampMax: 100 }],
  ['.e.timestamp 100 LT', { timestampMax: 99 }],
  ['.e.timestamp 100 EQ', { timestampMin: 100, timestampMax: 100 }],
  ['100 .e.timestamp LE', { timestampMin: 100 }],
  ['100 .e.timestamp LT', { timestampMin: 101 }],
  ['100 .e.timestamp GE', { timestampMax: 100 }],
  ['100 .e.timestamp GT', { timestampMax: 99 }],
  ['100 .e.timestamp EQ', { timestampMin: 100, timestampMax: 100 }],
  ['.e.timestamp 100 GE .e.timestamp 150 GE AND .e.timestamp 300 LE AND 250 .e.timestamp GT AND', { timestampMin: 150, timestampMax: 249 }],
  ['.e.timestamp -5 GE', { timestampMin: -5 }],
  // unsure: nothing
  ['.e.timestamp 100 NE', {}],
  [".e.system 'block' STRCMP .e.system 'fs' STRCMP OR", {}],
  [".e.hostname 'h' STRCMP NOT", {}],
  [".e.hostname 'h' STRCMP .e.system 'fs' STRCMP XOR", {}],
  [".e.hostname 'h' STRCMP 1 1 EQ EQ", {}],
  ['.e.hostname .e.dev_name STRCMP', {}],
  [".e.msg 'x' STRCMP", {}],
  [".e.payload 'x' STRCMP", {}],
  [".e.extentions.op 'READ' STRCMP", {}],
  [".e.source.appName 'peripety/block' STRCMP", {}],
  [".e.dev_name r'^sdb$' REGEX", {}],
  ['.e.date.sec 100 GE', {}],
  ['.e.timestamp 1 ADD 100 GE', {}],
  ['.e.timestamp .e.date.sec GE', {}],
  ['.e.timestamp 9223372036854775807 LE', {}],
  ['.e.timestamp -9223372036854775808 GE', {}],
  ['.e.timestamp 9007199254740991 GT', {}],
  ['.e.classification 16 AND', {}],
  ['1 1 EQ', {}],
  ['.event.messageCode 6000 GE .event.messageCode 7000 LT AND', {}],
];

describe('filter hints', () => {
  for (const [filter, expected] of CASES) {
    it(filter, () => assert.deepEqual(hints(filter), expected));
  }

  it('keep one value when a field is constrained twice (no event matches anyway)', () => {
    const h = hints(".e.system 'a' STRCMP .e.system 'b' STRCMP AND");
    assert.ok(h.equals?.system === 'a' || h.equals?.system === 'b');
  });

  it('are frozen', () => {
    const h = hints(".e.system 'block' STRCMP .e.timestamp 1 GE AND");
    assert.ok(Object.isFrozen(h));
  });

  it('hold for every matching event (generated filters)', () => {
    const atoms = [
      ".e.hostname 'node-7.example.com' STRCMP", ".e.hostname 'node-3.example.com' STRCMP",
      ".e.system 'block' STRCMP", ".e.system 'fs' STRCMP", "'mdraid' .e.system STRCMP",
      ".e.dev_name 'sdb' STRCMP", ".e.event_type 'FS_MOUNTED' STRCMP", ".e.dev_wwid r'^naa' REGEX",
      '.e.timestamp 1763812345 GE', '.e.timestamp 1763812345 GT', '.e.timestamp 1763812400 LE',
      '.e.timestamp 1763812400 LT', '1763812500 .e.timestamp EQ', '1763812400 .e.timestamp GT',
      '.e.severity 2 LE', ".e.hardwareid 'node-7.example.com' STRCMP",
    ];
    const events: StorageEvent[] = [...EVENTS];
    for (const base of [READ_ERROR, MOUNTED, MD_FAILURE]) {
      for (const timestamp of [1763812344, 1763812345, 1763812346, 1763812399, 1763812400, 1763812401, 1763812500]) {
        events.push({ ...base, timestamp });
      }
    }
    const holds = (h: FilterHints, ev: StorageEvent): boolean =>
      Object.entries(h.equals ?? {}).every(([k, v]) => ev[k as keyof StorageEvent] === v)
      && (h.timestampMin === undefined || ev.timestamp >= h.timestampMin)
      && (h.timestampMax === undefined || ev.timestamp <= h.timestampMax);
    let matches = 0;
    for (const a of atoms) {
      for (const b of atoms) {
        for (const c of [...atoms, null]) {
          const filter = c === null ? `${a} ${b} AND` : `${a} ${b} AND ${c} AND`;
          const r = compileFilter(filter);
          assert.equal(r.ok, true, filter);
          if (!r.ok) continue;
          for (const ev of events) {
            if (r.filter.evaluate(ev) !== 'MATCH') continue;
            matches++;
            assert.ok(holds(r.filter.hints, ev), `${filter} on ${ev.event_type}@${ev.timestamp}: ${JSON.stringify(r.filter.hints)}`);
          }
        }
      }
    }
    assert.ok(matches > 1000, `${matches} matches checked`);
  });
});
