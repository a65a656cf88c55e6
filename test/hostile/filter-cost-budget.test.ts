// Hostile input, storage filters: filter strings come from cluster users
// with StorageBackend write access. Each filter is bounded on its own
// (256-character regexes, 512 in all, 4096-character subjects), but a
// configuration may hold 64 backends × 64 filters, and every event runs
// through all of them on the agent's event loop. A configuration whose
// filters together could cost more than the documented budget per event is
// refused before anything starts, with an error that names the backend and
// the filter; an ordinary configuration is accepted.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StorageEvent } from '../../src/events/schema.ts';
import { validateStorageBackend } from '../../src/crd/validate.ts';
import { compileFilter } from '../../src/filter/compile.ts';
import { DEFAULT_STORAGE_CONFIG, parseStorageConfig } from '../../src/storage/config.ts';
import { ROOT } from '../helpers/agent.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hostile-filter-'));
const procs: { kill(sig: NodeJS.Signals): boolean }[] = [];
after(() => {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

// Captures inside a counted repetition: the linear engine's most expensive
// shape within the per-regex limits. Two of them fill the 512-character total.
const HEAVY = '(?:(.*)(.*)(.*)(.*)){0,15}'.repeat(9).slice(0, 234);
const WORST = `.e.msg r'${HEAVY}b' REGEX .e.msg r'${HEAVY}c' REGEX OR`;

function event(msg: string): StorageEvent {
  return {
    hostname: 'node-h', severity: 'error', system: 'block', timestamp: 1763812345, event_id: 'e-1', event_type: 'BLK_IO_ERROR',
    dev_wwid: '', dev_name: 'sdb', msg, extentions: {},
  };
}

function storageDoc(backends: number, filters: string[]) {
  const Plugins: Record<string, unknown> = {};
  for (let b = 0; b < backends; b++) Plugins[`b${b}`] = { File: 'memory', Filter: filters };
  return { root: { elos: { EventLogging: { Plugins } } } };
}

describe('the filters of one storage configuration have a cost budget', () => {
  it('64 backends × 64 worst-case filters are refused, naming a backend and a filter', () => {
    const c = compileFilter(WORST);
    assert.ok(c.ok, c.ok ? '' : c.error.message);
    // what one such filter costs on one 4 KiB message (no match: both regexes run)
    const ev = event('a'.repeat(4095));
    c.filter.evaluate(ev);
    const t0 = performance.now();
    assert.equal(c.filter.evaluate(ev), 'NO_MATCH');
    const ms = performance.now() - t0;
    console.log(`# one worst-case filter on a 4 KiB message: ${ms.toFixed(0)} ms; 64 × 64 of them: ~${(ms * 4096 / 1000 / 60).toFixed(1)} min per event`);

    const r = parseStorageConfig(storageDoc(64, Array.from({ length: 64 }, () => WORST)));
    assert.equal(r.ok, false, 'a configuration that can cost minutes per event must be refused');
    assert.ok(!r.ok);
    assert.match(r.error, /^storage config: the filters' worst-case cost is [\d,]+ steps per event, over the budget of 8,388,608 \(docs\/filter-language\.md, "Cost budget"/);
    assert.match(r.error, /the costliest: backend "b\d+" filter \d+ "\.e\.msg r'\(\?:\(\.\*\)/);
  });

  it('even one backend with one worst-case filter is over the budget', () => {
    const r = parseStorageConfig(storageDoc(1, [WORST]));
    assert.ok(!r.ok, 'one filter that costs most of a second per event');
    assert.match(r.error, /backend "b0" filter 0/);
  });

  it('Run: never backends do not count; ordinary configurations are accepted', () => {
    const never = storageDoc(1, [WORST]);
    (never.root.elos.EventLogging.Plugins.b0 as { Run?: string }).Run = 'never';
    assert.ok(parseStorageConfig(never).ok);
    assert.ok(parseStorageConfig(DEFAULT_STORAGE_CONFIG).ok);
    // 64 × 64 filters on fields and codes (no regex) cost almost nothing
    const cheap = [
      ".event.system 'block' STRCMP .event.severity 3 LE AND",
      '.event.messageCode 6000 GE .event.messageCode 7000 LT AND',
      ".event.hostname 'node-7' STRCMP NOT",
    ];
    const big = parseStorageConfig(storageDoc(64, Array.from({ length: 64 }, (_, i) => cheap[i % cheap.length]!)));
    assert.ok(big.ok, big.ok ? '' : big.error);
    // a realistic mix with regexes
    const mixed = parseStorageConfig(storageDoc(16, [
      ".e.msg r'I/O error.*sector [0-9]+' REGEX",
      ".e.dev_name r'^(sd|nvme|dm-)[a-z0-9]*$' REGEX .event.severity 4 LE AND",
      ".e.msg r'Remounting filesystem read-only' REGEX",
      '1 1 EQ',
    ]));
    assert.ok(mixed.ok, mixed.ok ? '' : mixed.error);
  });

  it('the agent refuses the over-budget file at start: exit 1 with the reason, within seconds', async () => {
    const storage = path.join(tmp, 'storage.json');
    writeFileSync(storage, JSON.stringify(storageDoc(64, Array.from({ length: 64 }, () => WORST))));
    const conf = path.join(tmp, 'agent.toml');
    writeFileSync(conf, '[main]\napi_listen = "off"\nmulticast = false\n[kmsg]\ntype = "collector"\nstart = "end"\n[stdout]\ntype = "receiver"\n');
    const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'peripety'), 'agent', '--config', conf, '--storage-config', storage, '--state-dir', path.join(tmp, 'state')], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(proc);
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    proc.stdout.resume();
    const code = await Promise.race([new Promise<number | null>((r) => proc.on('exit', (c) => r(c))), sleep(30_000).then(() => 'still running')]);
    assert.equal(code, 1, `the agent with 64 × 64 worst-case filters: ${String(code)}; stderr: ${err.slice(-1500)}`);
    assert.match(err, /storage\.json: storage config: the filters' worst-case cost is [\d,]+ steps per event, over the budget/);
  });

  it('a StorageBackend resource that alone is over the budget is refused by the controller, on spec.filters', () => {
    const resource = {
      apiVersion: 'peripety.io/v1alpha1', kind: 'StorageBackend', metadata: { name: 'greedy', namespace: 'peripety-system' },
      spec: { backend: 'memory', filters: [WORST] },
    };
    const v = validateStorageBackend(resource);
    assert.equal(v.ok, false);
    assert.ok(v.problems.some((p) => p.path === 'spec.filters' && /over the budget of 8,388,608/.test(p.message) && /backend "greedy" filter 0/.test(p.message)), JSON.stringify(v.problems));
    const fine = validateStorageBackend({ ...resource, spec: { backend: 'memory', filters: [".e.msg r'I/O error.*sector [0-9]+' REGEX"] } });
    assert.equal(fine.ok, true, JSON.stringify(fine.problems));
  });
});
