// A real PostgreSQL server goes away under load and comes back: the
// StorageManager spools what the backend could not take and replays it in
// order; afterwards every event is in the table, in delivery order, none twice.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import type { StorageEvent } from '../../src/events/schema.ts';
import { compileFilter } from '../../src/filter/compile.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { BACKEND_SPECS } from '../../src/storage/backends/index.ts';
import { StorageManager } from '../../src/storage/manager.ts';
import { StorageMetrics } from '../../src/storage/metrics.ts';
import { isRoot } from '../helpers/faults.ts';
import { type PostgresServer, requirePostgres, startPostgres } from '../helpers/postgres.ts';
import { onAck } from '../helpers/ack.ts';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

function event(i: number): StorageEvent {
  const us = 1_796_000_000_000_000 + i * 1000;
  return {
    hostname: 'node-a', severity: 'error', system: 'block', timestamp: Math.floor(us / 1e6),
    event_id: `00000000-0000-5000-8000-${String(i).padStart(12, '0')}`, event_type: 'BLK_IO_ERROR',
    dev_wwid: 'naa.5000c500a1b2c3d4', dev_name: 'sdb', msg: `I/O error on sdb, sector ${i * 8}`,
    extentions: { seq: String(i), op: 'READ', sector: String(i * 8), timestamp_us: String(us) },
  };
}

describe('PostgreSQL outage under load', { skip: !isRoot() && 'NOT ROOT: needs a throwaway PostgreSQL cluster' }, () => {
  it('every event is in the table after the server comes back: in order, none twice', { timeout: 120_000 }, async (t) => {
    if (!requirePostgres(t)) return;
    const pg: PostgresServer = await startPostgres();
    cleanup.push(() => pg.destroy());
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'prpt-pg-outage-'));
    cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
    const manager = new StorageManager({
      compile: compileFilter, builtins: BACKEND_SPECS, log: silentLogger(), metrics: StorageMetrics.forRegistry(new Registry()),
      stateDir, hostname: 'node-a',
      // short timeouts and retries, so the test sees several failed attempts and a quick recovery
      worker: { retryMinMs: 200, retryMaxMs: 1000, persistTimeoutMs: 5000 },
    });
    manager.initialize({ root: { elos: { EventLogging: { Plugins: {
      pg: { File: 'postgres', Run: 'always', Filter: ['.event.messageCode 6000 GE'], Config: { ConnectionString: pg.url, ConnectTimeoutMs: 1000, StatementTimeoutMs: 3000 } },
    } } } } });
    await manager.start();
    cleanup.push(async () => {
      await manager.stop().catch(() => {});
      await manager.deleteMembers().catch(() => {});
    });

    const total = 6000;
    let acked = 0;
    let refused = 0;
    // ~2000 events/s for 3 s; the server is down from 0.6 s to 2.0 s
    let sent = 0;
    const outage = (async () => {
      await sleep(600);
      await pg.stop('fast');
      await sleep(1400);
      await pg.start();
    })();
    const started = Date.now();
    let maxSpool = 0;
    while (sent < total) {
      maxSpool = Math.max(maxSpool, manager.status().backends[0]!.spoolBytes);
      for (let k = 0; k < 100 && sent < total; k++) {
        if (manager.deliver(event(sent), onAck(() => acked++))) sent++;
        else {
          refused++;
          sent++;
        }
      }
      await sleep(Math.max(0, started + (sent / total) * 3000 - Date.now()));
    }
    await outage;
    const st = manager.status().backends[0]!;
    t.diagnostic(`delivered ${total}; spool peaked at ${maxSpool} bytes; at the end of the load: queue ${st.queueDepth}, spool ${st.spoolBytes} bytes, dropped ${st.dropped}`);
    assert.equal(refused, 0, 'the manager took every event');
    assert.ok(maxSpool > 0, 'the outage made the backend spool (else this test proves nothing)');

    // wait for the replay to finish
    const deadline = Date.now() + 60_000;
    let rows: { seq: string }[] = [];
    while (Date.now() < deadline) {
      rows = await pg.query<{ seq: string }>("SELECT extentions->>'seq' AS seq FROM peripety_events ORDER BY id");
      if (rows.length >= total) break;
      await sleep(250);
    }
    const seqs = rows.map((r) => Number(r.seq));
    const twice = seqs.length - new Set(seqs).size;
    const missing = total - new Set(seqs).size;
    let outOfOrder = 0;
    for (let i = 1; i < seqs.length; i++) if (seqs[i]! < seqs[i - 1]!) outOfOrder++;
    t.diagnostic(`after recovery: ${seqs.length} rows, missing ${missing}, stored twice ${twice}, out of order ${outOfOrder}; acknowledged ${acked}`);
    assert.equal(missing, 0, 'events missing from the table');
    assert.equal(twice, 0, 'events stored twice');
    assert.equal(outOfOrder, 0, 'events stored out of delivery order');
    assert.equal(acked, total, 'every event acknowledged once');
    assert.equal(manager.status().backends[0]!.dropped, 0);
  });
});
