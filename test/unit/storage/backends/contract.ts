// What every backend must do (docs/storage.md "Backends", "Queries"; the Backend contract in
// src/storage/types.ts), run against each of them by its own test file.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Backend, EventQuery } from '../../../../src/storage/types.ts';
import { DAY, SEC, T0, ev, evs, ids } from './events.ts';
import { hintsOnly, predicateFilter, systemIs } from './filters.ts';

export interface Fixture {
  /** a backend over the fixture's storage; a second call is a restart */
  make(): Backend;
  cleanup(): void;
}

const all: EventQuery = { filter: null, newest: 0, oldest: 0, limit: 0 };
const at = (i: number) => T0 + i * SEC;

export function backendContract(label: string, fixture: () => Fixture, opts: { persistent: boolean }): void {
  describe(`${label}: backend contract`, () => {
    let fx: Fixture;
    let b: Backend;
    beforeEach(async () => {
      fx = fixture();
      b = fx.make();
      await b.start();
    });
    afterEach(async () => {
      await b.shutdown();
      fx.cleanup();
    });

    it('stores events and returns them newest first, unchanged', async () => {
      const batch = evs(0, 10);
      await b.persist(batch.slice(0, 4));
      await b.persist(batch.slice(4));
      const r = await b.findEvents(all);
      assert.deepEqual(ids(r.events), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      assert.equal(r.isTruncated, false);
      assert.deepEqual(r.events[0], batch[9]);
      assert.deepEqual(r.events.at(-1), batch[0]);
      assert.deepEqual(b.health(), { ok: true });
    });

    it('applies the time range: newest inclusive, oldest exclusive, 0 unbounded', async () => {
      await b.persist(evs(0, 10));
      assert.deepEqual(ids((await b.findEvents({ ...all, newest: at(7), oldest: at(3) })).events), [7, 6, 5, 4]);
      assert.deepEqual(ids((await b.findEvents({ ...all, newest: at(2) })).events), [2, 1, 0]);
      assert.deepEqual(ids((await b.findEvents({ ...all, oldest: at(7) })).events), [9, 8]);
      assert.deepEqual(ids((await b.findEvents({ ...all, newest: at(5), oldest: at(5) })).events), []);
      assert.deepEqual(ids((await b.findEvents({ ...all, newest: at(5) - 1, oldest: at(4) - 1 })).events), [4]);
    });

    it('cuts at limit and says so', async () => {
      await b.persist(evs(0, 10));
      let r = await b.findEvents({ ...all, limit: 3 });
      assert.deepEqual(ids(r.events), [9, 8, 7]);
      assert.equal(r.isTruncated, true);
      r = await b.findEvents({ ...all, limit: 10 });
      assert.equal(r.events.length, 10);
      assert.equal(r.isTruncated, false, 'exactly limit is not truncated');
      r = await b.findEvents({ ...all, limit: 11 });
      assert.equal(r.isTruncated, false);
      r = await b.findEvents({ ...all, newest: at(7), oldest: at(3), limit: 4 });
      assert.deepEqual(ids(r.events), [7, 6, 5, 4]);
      assert.equal(r.isTruncated, false);
      r = await b.findEvents({ ...all, newest: at(7), oldest: at(3), limit: 2 });
      assert.deepEqual(ids(r.events), [7, 6]);
      assert.equal(r.isTruncated, true);
    });

    it('orders by event time, not arrival, and by arrival for equal times', async () => {
      await b.persist([ev(5), ev(1), ev(9)]);
      await b.persist([ev(3), ev(7), ev(0)]);
      // same time as event 7, stored later: comes first
      await b.persist([ev(70, { timeUs: at(7) })]);
      const r = await b.findEvents(all);
      assert.deepEqual(ids(r.events), [9, 70, 7, 5, 3, 1, 0]);
      assert.deepEqual(ids((await b.findEvents({ ...all, limit: 3 })).events), [9, 70, 7]);
    });

    it('uses extentions.timestamp_us for the time, timestamp seconds without it', async () => {
      const a = ev(1, { timeUs: T0 + 250 });
      const c = ev(2, { timeUs: T0 + 750 });
      const noUs = ev(3, { timeUs: T0 + 500 });
      delete noUs.extentions.timestamp_us; // → T0 exactly
      await b.persist([a, c, noUs]);
      assert.deepEqual(ids((await b.findEvents(all)).events), [2, 1, 3]);
      assert.deepEqual(ids((await b.findEvents({ ...all, newest: T0 + 500, oldest: T0 })).events), [1]);
    });

    it('returns only what the filter MATCHes (NO_MATCH and ERROR are left out)', async () => {
      await b.persist(evs(0, 12));
      const block = systemIs('block');
      assert.deepEqual(ids((await b.findEvents({ ...all, filter: block })).events), [9, 6, 3, 0]);
      const erring = predicateFilter('.e.messageCode 0 DIV', (e) => (Number(e.extentions.kmsg_seq) % 2 === 0 ? 'ERROR' : true));
      assert.deepEqual(ids((await b.findEvents({ ...all, filter: erring })).events), [11, 9, 7, 5, 3, 1]);
      const r = await b.findEvents({ ...all, filter: block, limit: 2 });
      assert.deepEqual(ids(r.events), [9, 6]);
      assert.equal(r.isTruncated, true);
      const r2 = await b.findEvents({ ...all, filter: block, newest: at(9), oldest: at(2), limit: 2 });
      assert.deepEqual(ids(r2.events), [9, 6]);
      assert.equal(r2.isTruncated, true, 'event 3 matches too');
      const r3 = await b.findEvents({ ...all, filter: block, newest: at(8), oldest: at(3), limit: 2 });
      assert.deepEqual(ids(r3.events), [6]);
      assert.equal(r3.isTruncated, false);
    });

    it('uses the hints to narrow the search, and the filter still decides', async () => {
      await b.persist(evs(0, 24));
      // hints say system = block: the filter only sees block events
      const f = predicateFilter(".e.system 'block' STRCMP .e.dev_name 'sda' STRCMP AND", (e) => e.system === 'block' && e.dev_name === 'sda', {
        equals: { system: 'block' },
      });
      assert.deepEqual(ids((await b.findEvents({ ...all, filter: f })).events), [12, 0]);
      assert.equal(f.calls, 8, 'evaluated only on the 8 block events');
      // a (deliberately unsound) hint shows what was pushed down
      assert.deepEqual(ids((await b.findEvents({ ...all, filter: hintsOnly({ equals: { dev_name: 'sdb', system: 'nvme' } }) })).events), [17, 5]);
      assert.deepEqual(
        ids((await b.findEvents({ ...all, filter: hintsOnly({ timestampMin: Math.floor(at(20) / SEC), timestampMax: Math.floor(at(21) / SEC) }) })).events),
        [21, 20],
      );
      const none = hintsOnly({ equals: { hostname: 'other-node' } });
      assert.deepEqual((await b.findEvents({ ...all, filter: none })).events, []);
      assert.equal(none.calls, 0);
    });

    it('stores a replayed batch once (idempotent by event_id and event_type)', async () => {
      const batch = evs(0, 5);
      await b.persist(batch);
      await b.persist(batch);
      await b.persist([batch[2]!, ev(5), ev(5)]);
      // the same raw record's synthetic event has the same id but another type: a different event
      await b.persist([{ ...batch[0]!, event_type: 'SCSI_MEDIUM_ERROR' }]);
      const r = await b.findEvents(all);
      assert.deepEqual(ids(r.events), [5, 4, 3, 2, 1, 0, 0]);
      assert.deepEqual(r.events.filter((e) => e.event_id === batch[0]!.event_id).map((e) => e.event_type).sort(), ['BLK_IO_ERROR', 'SCSI_MEDIUM_ERROR']);
    });

    it('accepts an empty batch and finds nothing in an empty store', async () => {
      await b.persist([]);
      assert.deepEqual(await b.findEvents({ ...all, limit: 5 }), { events: [], isTruncated: false });
    });

    it('keeps events over days and years apart', async () => {
      const far = [ev(1, { timeUs: T0 - 400 * DAY }), ev(2, { timeUs: T0 - DAY }), ev(3, { timeUs: T0 }), ev(4, { timeUs: T0 + 3 * DAY })];
      await b.persist([far[2]!, far[0]!, far[3]!, far[1]!]);
      assert.deepEqual(ids((await b.findEvents(all)).events), [4, 3, 2, 1]);
      assert.deepEqual(ids((await b.findEvents({ ...all, newest: T0, oldest: T0 - 2 * DAY })).events), [3, 2]);
      assert.deepEqual(ids((await b.findEvents({ ...all, limit: 1, newest: T0 - 1 })).events), [2]);
    });

    it('shuts down twice without error and refuses writes afterwards', async () => {
      await b.persist(evs(0, 2));
      await b.shutdown();
      await b.shutdown();
      assert.equal(b.health().ok, false);
      await assert.rejects(b.persist(evs(2, 3)));
    });

    if (opts.persistent) {
      it('keeps its events across a restart, and a replay after the restart is stored once', async () => {
        const batch = evs(0, 6);
        await b.persist(batch);
        await b.shutdown();
        b = fx.make();
        await b.start();
        await b.persist(batch.slice(3));
        await b.persist(evs(6, 8));
        const r = await b.findEvents(all);
        assert.deepEqual(ids(r.events), [7, 6, 5, 4, 3, 2, 1, 0]);
      });
    }
  });
}
