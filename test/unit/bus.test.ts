// The bus with the real parsers: routing by filter_system, context lines
// enriching held events, expiry by the clock, bounded holding, and receiver
// queues that drop and count instead of growing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Bus, expandFilterSystems, PARSE_TIMED_EVERY, type ParserInstance } from '../../src/agent/bus.ts';
import type { ReceiverSink } from '../../src/contracts/receiver.ts';
import { type Ack, NO_ACK } from '../../src/contracts/ack.ts';
import type { StorageEvent } from '../../src/events/schema.ts';
import { parseKmsgRecord } from '../../src/kmsg/record.ts';
import type { KernelRecord } from '../../src/contracts/record.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { AgentMetrics } from '../../src/metrics/agent-metrics.ts';
import { PARSERS } from '../../src/parsers/index.ts';
import { QueuedReceiver } from '../../src/receivers/queued.ts';

function rec(text: string): KernelRecord {
  const r = parseKmsgRecord(text);
  assert.ok(r.ok);
  return r.record;
}

function setup(parsers?: ParserInstance[], opts: { window?: number; maxHeld?: number } = {}) {
  let now = 0;
  const got: StorageEvent[] = [];
  const metrics = new AgentMetrics();
  const sink: ReceiverSink = { name: 'capture', deliver: (ev, ack) => { got.push(ev); ack.release(); return true; } };
  const bus = new Bus({
    parsers: parsers ?? Object.values(PARSERS).map((p) => ({ name: p.name, parser: p, systems: null, filterType: 'raw' as const })),
    receivers: [sink], metrics, log: silentLogger(), contextWindowMs: opts.window ?? 50, maxHeld: opts.maxHeld ?? 256,
    manualFlush: true, now: () => now,
    synth: { hostname: 'h', bootId: 'boot', bootEpochUs: 1_700_000_000_000_000, resolver: null, source: '/dev/kmsg' },
  });
  const mkAck = (): Ack & { refs: number } => {
    const t = { refs: 1, retain() { t.refs++; }, release() { t.refs--; }, lost() { t.refs--; } };
    return t;
  };
  return { bus, got, metrics, mkAck, tick: (ms: number) => { now += ms; } };
}

describe('bus', () => {
  it('expands filter systems, with dm as the device-mapper family', () => {
    assert.deepEqual([...expandFilterSystems(['dm'])].sort(), ['dm', 'lvm', 'multipath']);
    assert.equal(expandFilterSystems(['*']).size, 8);
    assert.deepEqual([...expandFilterSystems(['fs', 'nope'])], ['fs']);
  });

  it('routes by filter_system: the seed multipath section with filter_system = "dm" still sees multipath lines', () => {
    const { bus, got, mkAck } = setup([{ name: 'mpath', parser: PARSERS.multipath!, systems: ['dm'], filterType: 'raw' }]);
    bus.ingest(rec('4,1,10,-;device-mapper: multipath: 253:0: Failing path 8:16.\n'), mkAck());
    bus.ingest(rec('3,2,20,-;md/raid1:md0: Disk failure on sdb1, disabling device.\n'), mkAck());
    assert.deepEqual(got.map((e) => e.event_type), ['DM_MPATH_PATH_FAILED']);
    assert.equal(got[0]!.extentions.plugin, 'mpath');
  });

  it('a parser with filter_system excluding a system does not see it', () => {
    const { bus, got, mkAck, metrics } = setup([{ name: 'fs', parser: PARSERS.fs!, systems: ['fs'], filterType: 'raw' }]);
    bus.ingest(rec('3,1,10,-;I/O error, dev sdb, sector 8\n'), mkAck());
    bus.ingest(rec('6,2,10,-;usb 1-1: new high-speed USB device number 2 using xhci_hcd\n'), mkAck());
    assert.equal(got.length, 0);
    return metrics.registry.getSingleMetricAsString('peripety_records_unclassified_total').then((s) => assert.match(s, / 1$/m));
  });

  it('holds a SCSI failure until its CDB line arrives and merges it; the ack is held meanwhile', () => {
    const { bus, got, mkAck } = setup();
    const t1 = mkAck();
    bus.ingest(rec('6,1,10,-;sd 2:0:0:0: [sdb] tag#7 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_SENSE cmd_age=0s\n'), t1);
    t1.release();
    assert.equal(got.length, 0, 'held for context');
    assert.equal(t1.refs, 1, 'the held event keeps its record in flight');
    const t2 = mkAck();
    bus.ingest(rec('6,2,11,-;sd 2:0:0:0: [sdb] tag#7 CDB: Read(10) 28 00 00 00 08 00 00 00 08 00\n'), t2);
    t2.release();
    assert.equal(t2.refs, 0, 'a merged context line is done at once');
    bus.drain();
    assert.equal(got.length, 1);
    assert.equal(got[0]!.event_type, 'SCSI_CMD_FAILED');
    assert.match(got[0]!.extentions.cdb ?? '', /^Read\(10\) 28 00/);
    assert.equal(t1.refs, 0);
  });

  it('releases held events after the context window, and a lone CDB line makes nothing', () => {
    const { bus, got, mkAck, tick, metrics } = setup(undefined, { window: 50 });
    bus.ingest(rec('6,1,10,-;sd 2:0:0:0: [sdb] tag#1 CDB: Read(10) 28 00 00 00 08 00 00 00 08 00\n'), mkAck());
    bus.ingest(rec('6,2,10,-;sd 2:0:0:0: [sdb] tag#2 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s\n'), mkAck());
    tick(30);
    bus.flushExpired(30 - 50);
    assert.equal(got.length, 0);
    tick(30);
    bus.flushExpired(60 - 50);
    assert.deepEqual(got.map((e) => e.event_type), ['SCSI_CMD_FAILED']);
    return metrics.registry.getSingleMetricAsString('peripety_context_lines_orphaned_total').then((s) => assert.match(s, / 1$/m));
  });

  it('never holds more than max_held events', () => {
    const { bus, got, mkAck } = setup(undefined, { maxHeld: 4 });
    for (let i = 0; i < 10; i++) bus.ingest(rec(`6,${i},10,-;sd 2:0:0:${i}: [sd${i}] tag#0 FAILED Result: hostbyte=DID_OK driverbyte=DRIVER_OK cmd_age=0s\n`), mkAck());
    assert.equal(bus.heldCount, 4);
    assert.equal(got.length, 6);
    bus.drain();
    assert.equal(got.length, 10);
  });

  it('emits KMSG_OVERRUN with the count and feeds the suppressed-messages metric', async () => {
    const { bus, got, mkAck, metrics } = setup();
    bus.overrun(17, 100, 118, mkAck());
    assert.equal(got[0]!.event_type, 'KMSG_OVERRUN');
    assert.equal(got[0]!.extentions.lost, '17');
    assert.equal(got[0]!.severity, 'warn');
    bus.ingest(rec('4,200,10,-;blk_print_req_error: 14 callbacks suppressed\n'), mkAck());
    assert.equal(got[1]!.event_type, 'KERNEL_LOG_SUPPRESSED');
    assert.match(await metrics.registry.getSingleMetricAsString('peripety_kernel_suppressed_messages_total'), / 14$/m);
  });

  it('a throwing parser loses nothing else', () => {
    const boom: ParserInstance = { name: 'boom', parser: { name: 'boom', systems: ['block'], parse() { throw new Error('bug'); } }, systems: null, filterType: 'raw' };
    const { bus, got, mkAck } = setup([boom, { name: 'block', parser: PARSERS.block!, systems: null, filterType: 'raw' }]);
    bus.ingest(rec('3,1,10,-;I/O error, dev sdb, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0\n'), mkAck());
    assert.deepEqual(got.map((e) => e.event_type), ['BLK_IO_ERROR']);
  });

  it('times a sample of raw records into peripety_parse_duration_seconds (the first record, then one in PARSE_TIMED_EVERY)', async () => {
    const { bus, mkAck, metrics } = setup();
    const scrape = async (suffix: string) => {
      const line = (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`peripety_parse_duration_seconds_${suffix} `));
      assert.ok(line, `peripety_parse_duration_seconds_${suffix} is scraped`);
      return Number(line.split(' ')[1]);
    };
    assert.equal(await scrape('count'), 0);
    bus.ingest(rec('3,1,10,-;I/O error, dev sdb, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0\n'), mkAck());
    assert.equal(await scrape('count'), 1, 'a quiet node has a sample from its first record');
    const n = 3 * PARSE_TIMED_EVERY;
    for (let i = 0; i < n; i++) {
      const line = i % 2 === 0 ? 'I/O error, dev sdb, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0' : 'usb 1-1: new high-speed USB device number 2 using xhci_hcd';
      bus.ingest(rec(`3,${i + 2},10,-;${line}\n`), mkAck());
    }
    assert.equal(await scrape('count'), 4);
    const sum = await scrape('sum');
    assert.ok(sum > 0 && sum < 1, `plausible time spent: ${sum} s`);
    assert.equal(await scrape('bucket{le="+Inf"}'), 4);
  });
});

class StuckReceiver extends QueuedReceiver {
  written = 0;
  protected write(batch: StorageEvent[]): Promise<void> {
    this.written += batch.length;
    return new Promise(() => {}); // never completes: a receiver whose peer hangs
  }
}

describe('receiver queues', () => {
  it('a receiver that never completes drops and counts instead of growing', async () => {
    const metrics = new AgentMetrics();
    const r = new StuckReceiver('stuck', 100, { log: silentLogger(), metrics }, 10);
    const ev = { hostname: 'h', severity: 'info', system: 'block', timestamp: 0, event_id: 'x', event_type: 'X', dev_wwid: '', dev_name: '', msg: '', extentions: {} } satisfies StorageEvent;
    let accepted = 0;
    for (let i = 0; i < 10_000; i++) if (r.deliver(ev, NO_ACK)) accepted++;
    await new Promise((res) => setImmediate(res));
    assert.ok(accepted <= 110, `accepted ${accepted}`);
    assert.ok(r.depth <= 100);
    assert.match(await metrics.registry.getSingleMetricAsString('peripety_receiver_dropped_events_total'), new RegExp(`receiver="stuck"} ${10_000 - accepted}$`, 'm'));
  });
});
