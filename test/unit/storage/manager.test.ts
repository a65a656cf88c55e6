import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeEach, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { contexts, stored as recorded } from '../../fixtures/backends/recording.ts';
import { StorageError, StorageManager, type StorageManagerOptions } from '../../../src/storage/manager.ts';
import { StorageMetrics } from '../../../src/storage/metrics.ts';
import type { BackendPlugin } from '../../../src/storage/types.ts';
import { counter, evaluations, FakeBackend, fakeFactory, log, mkEvent, range, testCompile, tmpDir, until } from './helpers.ts';
import { NO_ACK } from '../../../src/contracts/ack.ts';
import { onAck } from '../../helpers/ack.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/backends');

const cfg = (plugins: Record<string, unknown>, searchPath?: string) => ({
  root: { elos: { EventLogging: { ...(searchPath !== undefined ? { PluginSearchPath: searchPath } : {}), Plugins: plugins } } },
});

interface Env {
  m: StorageManager;
  fake: ReturnType<typeof fakeFactory>;
  metrics: StorageMetrics;
  stateDir: string;
  opts: StorageManagerOptions;
}

async function env(t: { after: (fn: () => Promise<void>) => void }, extra: Partial<StorageManagerOptions> = {}, setup?: (b: FakeBackend) => void): Promise<Env> {
  const stateDir = await tmpDir(t);
  const fake = fakeFactory('fake', setup);
  const metrics = StorageMetrics.forRegistry(new Registry());
  const opts: StorageManagerOptions = {
    compile: testCompile,
    builtins: { fake: fake as BackendPlugin<unknown> },
    log, metrics, stateDir, hostname: 'node1',
    worker: { maxWaitMs: 1, retryMinMs: 10, retryMaxMs: 40, stopTimeoutMs: 1000 },
    ...extra,
  };
  const m = new StorageManager(opts);
  t.after(async () => {
    await m.stop().catch(() => {});
  });
  return { m, fake, metrics, stateDir, opts };
}

async function started(m: StorageManager, plugins: Record<string, unknown>, searchPath?: string): Promise<void> {
  m.initialize(cfg(plugins, searchPath));
  await m.start();
}

const code = (c: string) => (err: unknown) => err instanceof StorageError && err.code === c;

describe('StorageManager: lifecycle (seed)', () => {
  it('initialize fails when the EventLogging configuration is missing or invalid', async (t) => {
    const { m } = await env(t);
    assert.throws(() => m.initialize({ root: { elos: {} } }), (e: unknown) => code('INVALID_CONFIG')(e) && /EventLogging: missing/.test((e as Error).message));
    assert.throws(() => m.initialize('{'), code('INVALID_CONFIG'));
    assert.throws(() => m.initialize(cfg({ a: { File: 'fake', Run: 'often' } })), code('INVALID_CONFIG'));
    assert.equal(m.currentState, 'new');
    await assert.rejects(m.start(), code('WRONG_STATE'));
  });

  it('start, stop, start again; initialize refused while running', async (t) => {
    const { m, fake } = await env(t);
    await started(m, { a: { File: 'fake', Filter: ['1 1 EQ'] } });
    assert.equal(m.currentState, 'running');
    assert.throws(() => m.initialize(cfg({})), code('WRONG_STATE'));
    await assert.rejects(m.start(), code('WRONG_STATE'));
    const first = fake.instances.get('a')!;
    await m.stop();
    assert.equal(m.currentState, 'stopped');
    assert.equal(first.shutdowns, 1);
    await m.start();
    assert.notEqual(fake.instances.get('a'), first, 'a fresh instance');
    await m.stop();
    await m.deleteMembers();
    assert.equal(m.currentState, 'deleted');
    m.initialize(cfg({}));
  });

  it('a manager whose stop failed is never restarted or reinitialized', async (t) => {
    const { m, fake } = await env(t, {}, (b) => {
      b.shutdownError = new Error('disk gone');
    });
    await started(m, { a: { File: 'fake', Filter: ['1 1 EQ'] }, b: { File: 'fake', Filter: ['1 1 EQ'] } });
    await assert.rejects(m.stop(), (e: unknown) => code('STOP_FAILED')(e) && /disk gone/.test((e as Error).message));
    // it went on after the first error: both were asked to shut down
    assert.equal(fake.instances.get('a')!.shutdowns, 1);
    assert.equal(fake.instances.get('b')!.shutdowns, 1);
    assert.equal(m.currentState, 'failed');
    assert.match(m.status().failure ?? '', /disk gone/);
    await assert.rejects(m.start(), code('FAILED_BEFORE'));
    assert.throws(() => m.initialize(cfg({})), (e: unknown) => code('FAILED_BEFORE')(e) && /create a new manager/.test((e as Error).message));
    // deleteMembers frees what remains (tries the shutdowns again), and the manager stays failed
    fake.instances.get('a')!.shutdownError = null;
    await assert.rejects(m.deleteMembers(), code('STOP_FAILED'));
    assert.equal(fake.instances.get('a')!.shutdowns, 2);
    assert.equal(m.currentState, 'failed');
    await assert.rejects(m.start(), code('FAILED_BEFORE'));
  });

  it('a manager whose delete failed is never reinitialized', async (t) => {
    const { m, fake } = await env(t);
    await started(m, { a: { File: 'fake', Filter: ['1 1 EQ'] } });
    fake.instances.get('a')!.shutdownError = new Error('stuck');
    await assert.rejects(m.deleteMembers(), code('STOP_FAILED'));
    assert.equal(m.currentState, 'failed');
    assert.throws(() => m.initialize(cfg({})), code('FAILED_BEFORE'));
  });

  it('deliver returns false unless running', async (t) => {
    const { m } = await env(t);
    const c = counter();
    assert.equal(m.deliver(mkEvent(1), c.ack), false);
    m.initialize(cfg({}));
    assert.equal(m.deliver(mkEvent(1), c.ack), false);
    await m.start();
    assert.equal(m.deliver(mkEvent(1), c.ack), true);
    assert.equal(c.calls, 1, 'no backend: acknowledged at once');
    await m.stop();
    assert.equal(m.deliver(mkEvent(1), c.ack), false);
    assert.equal(c.calls, 1);
  });
});

describe('StorageManager: start failures (seed)', () => {
  it('an unknown File fails the start and cleans up what was created', async (t) => {
    const { m, fake } = await env(t);
    m.initialize(cfg({ a: { File: 'fake', Filter: ['1 1 EQ'] }, b: { File: 'nosuch' } }));
    await assert.rejects(m.start(), (e: unknown) => code('LOAD_FAILED')(e) && /backend "b": unknown File "nosuch": not a built-in backend \(fake\)/.test((e as Error).message));
    assert.equal(fake.instances.get('a')!.shutdowns, 1);
    assert.equal(m.currentState, 'initialized', 'can be started again after fixing the cause');
    assert.equal(m.deliver(mkEvent(1), NO_ACK), false);
  });

  it('an invalid Config fails the start, naming the backend and the Config path', async (t) => {
    const { m } = await env(t);
    m.initialize(cfg({ a: { File: 'fake', Config: { Fail: 'yes' } } }));
    await assert.rejects(m.start(), (e: unknown) => code('LOAD_FAILED')(e) && /backend "a": invalid Config: Config\.Fail: Invalid input: expected boolean/.test((e as Error).message));
    m.initialize(cfg({ a: { File: 'fake', Config: { Nope: 1 } } }));
    await assert.rejects(m.start(), /backend "a": invalid Config: Config: Unrecognized key: "Nope"/);
  });

  it('a backend whose start() rejects fails the start; the others are shut down; no credentials in the error', async (t) => {
    const { m, fake } = await env(t);
    m.initialize(cfg({ a: { File: 'fake', Filter: ['1 1 EQ'] }, b: { File: 'fake', Config: { Fail: true } } }));
    const err = await m.start().then(() => null, (e: unknown) => e as StorageError);
    assert.ok(err && err.code === 'START_FAILED', String(err));
    assert.match(err.message, /backend "b": start failed: cannot connect to db:\/\/\*\*\*@db\.example/);
    assert.doesNotMatch(err.message, /hunter2/);
    assert.equal(fake.instances.get('a')!.shutdowns, 1);
    assert.equal(fake.instances.get('b')!.shutdowns, 1, 'shutdown is safe after a failed start');
    assert.doesNotMatch(JSON.stringify(m.status()), /hunter2/);
  });

  it('a backend with no or broken filters does not stop the start', async (t) => {
    const { m } = await env(t);
    await started(m, { a: { File: 'fake' }, b: { File: 'fake', Filter: ['BAD'] } });
    assert.equal(m.currentState, 'running');
  });
});

describe('StorageManager: filters (seed)', () => {
  beforeEach(() => evaluations.clear());

  it('an empty or missing Filter: loaded and started, receives nothing, reported', async (t) => {
    const { m, fake } = await env(t);
    await started(m, { missing: { File: 'fake' }, empty: { File: 'fake', Filter: [] } });
    const c = counter();
    m.deliver(mkEvent(1), c.ack);
    assert.equal(c.calls, 1);
    const st = m.status();
    for (const b of st.backends) {
      assert.equal(b.loaded, true);
      assert.equal(b.started, true);
      assert.match(b.filters.warning ?? '', /will never receive events/);
    }
    await m.stop();
    assert.equal(fake.instances.get('missing')!.persistCalls, 0);
    assert.equal(fake.instances.get('empty')!.persistCalls, 0);
  });

  it('a broken filter among good ones is skipped and reported; the others work', async (t) => {
    const { m, fake, metrics } = await env(t);
    await started(m, { a: { File: 'fake', Filter: ['type:A', 'x BAD', 'type:B'] } });
    const st = m.status().backends[0]!;
    assert.deepEqual([st.filters.configured, st.filters.valid], [3, 2]);
    assert.deepEqual(st.filters.broken.map((p) => [p.index, p.filter, p.position, p.token]), [[1, 'x BAD', 2, 'BAD']]);
    assert.match(st.lastError ?? '', /filter 1 "x BAD" at position 2/);
    assert.match(await metrics.registry.metrics(), /peripety_backend_filter_errors_total\{backend="a",kind="compile"\} 1/);
    for (const [i, type] of [[1, 'A'], [2, 'B'], [3, 'C']] as const) m.deliver(mkEvent(i, type), NO_ACK);
    await m.stop();
    assert.deepEqual(fake.instances.get('a')!.stored.map((e) => e.event_type), ['A', 'B']);
  });

  it('the first match wins: the second filter is not evaluated', async (t) => {
    const { m, fake } = await env(t);
    await started(m, { a: { File: 'fake', Filter: ['1 1 EQ', 'type:DISK_ERROR'] } });
    m.deliver(mkEvent(1), NO_ACK);
    assert.equal(evaluations.get('1 1 EQ'), 1);
    assert.equal(evaluations.get('type:DISK_ERROR'), undefined);
    await m.stop();
    assert.equal(fake.instances.get('a')!.stored.length, 1, 'stored once');
  });

  it('an evaluation error: FAILED for that event in that backend, counted, not stored; other backends still get it', async (t) => {
    const { m, fake, metrics } = await env(t);
    await started(m, { picky: { File: 'fake', Filter: ['fail:BROKEN', '1 1 EQ'] }, all: { File: 'fake', Filter: ['1 1 EQ'] } });
    const c = counter();
    m.deliver(mkEvent(1, 'BROKEN'), c.ack);
    m.deliver(mkEvent(2, 'FINE'), NO_ACK);
    await until(() => c.calls === 1, 2000, 'ack');
    const st = m.status().backends.find((b) => b.name === 'picky')!;
    assert.equal(st.evalErrors, 1);
    assert.match(st.lastError ?? '', /event not stored: filter 0 "fail:BROKEN": division by zero/);
    assert.match(await metrics.registry.metrics(), /peripety_backend_filter_errors_total\{backend="picky",kind="eval"\} 1/);
    await m.stop();
    assert.deepEqual(fake.instances.get('picky')!.stored.map((e) => e.event_type), ['FINE']);
    assert.deepEqual(fake.instances.get('all')!.stored.map((e) => e.event_type), ['BROKEN', 'FINE']);
  });

  it('the ack is released once, after every accepting backend stored the event', async (t) => {
    const { m, fake } = await env(t);
    await started(m, { a: { File: 'fake', Filter: ['1 1 EQ'] }, b: { File: 'fake', Filter: ['1 1 EQ'] } });
    const gate = Promise.withResolvers<void>();
    fake.instances.get('b')!.gate = gate.promise;
    const c = counter();
    m.deliver(mkEvent(1), c.ack);
    await until(() => fake.instances.get('a')!.stored.length === 1);
    assert.equal(c.calls, 0, 'b has not stored it yet');
    gate.resolve();
    await until(() => c.calls === 1);
    await m.stop();
    assert.equal(c.calls, 1);
  });
});

describe('StorageManager: Run modes and lifecycle commands', () => {
  it('Run never: skipped (not even created); Run trigger: loaded, started only on command', async (t) => {
    const { m, fake } = await env(t);
    await started(m, {
      off: { File: 'fake', Run: 'never', Filter: ['1 1 EQ'], Config: { Bogus: 1 } },
      later: { File: 'fake', Run: 'trigger', Filter: ['1 1 EQ'] },
    });
    assert.equal(fake.instances.has('off'), false);
    const later = fake.instances.get('later')!;
    assert.equal(later.started, false);
    let st = m.status().backends;
    assert.deepEqual(st.map((b) => [b.name, b.run, b.loaded, b.started]), [['off', 'never', false, false], ['later', 'trigger', true, false]]);
    const c = counter();
    m.deliver(mkEvent(1), c.ack);
    assert.equal(c.calls, 1, 'no started backend accepted it');
    await assert.rejects(m.findEvents({ filter: null, newest: 0, oldest: 0, limit: 0 }, 'later'), code('NOT_STARTED'));
    await assert.rejects(m.startBackend('off'), code('WRONG_STATE'));
    await assert.rejects(m.startBackend('nosuch'), code('UNKNOWN_BACKEND'));

    await m.startBackend('later');
    assert.equal(later.started, true);
    m.deliver(mkEvent(2), NO_ACK);
    await until(() => later.stored.length === 1);
    st = m.status().backends;
    assert.equal(st[1]!.started, true);

    await m.stopBackend('later');
    assert.equal(later.shutdowns, 1);
    m.deliver(mkEvent(3), NO_ACK);
    await m.startBackend('later');
    const again = fake.instances.get('later')!;
    assert.notEqual(again, later, 'a fresh instance after a stop');
    m.deliver(mkEvent(4), NO_ACK);
    await until(() => again.stored.length === 1);
    assert.equal(again.stored[0]!.event_id, mkEvent(4).event_id);
  });

  it('findEvents: the named backend, else the first started one', async (t) => {
    const { m, fake } = await env(t);
    await started(m, {
      idle: { File: 'fake', Run: 'trigger', Filter: ['1 1 EQ'] },
      first: { File: 'fake', Filter: ['type:A'] },
      second: { File: 'fake', Filter: ['1 1 EQ'] },
    });
    m.deliver(mkEvent(1, 'A'), NO_ACK);
    m.deliver(mkEvent(2, 'B'), NO_ACK);
    await until(() => fake.instances.get('second')!.stored.length === 2);
    const q = { filter: null, newest: 0, oldest: 0, limit: 0 };
    assert.deepEqual((await m.findEvents(q)).events.map((e) => e.event_type), ['A']);
    assert.deepEqual((await m.findEvents(q, 'second')).events.map((e) => e.event_type), ['B', 'A']);
    await assert.rejects(m.findEvents(q, 'nosuch'), code('UNKNOWN_BACKEND'));
  });

  it('status reports queue, spool, drops and write errors of a backend that is down', async (t) => {
    const { m, fake } = await env(t, {}, (b) => {
      b.down = true;
    });
    await started(m, { a: { File: 'fake', Filter: ['1 1 EQ'] } });
    for (const i of range(5)) m.deliver(mkEvent(i), NO_ACK);
    await until(() => (m.status().backends[0]!.spoolBytes > 0), 2000, 'spooled');
    const st = m.status().backends[0]!;
    assert.equal(st.up, false);
    assert.deepEqual(st.health, { ok: false, detail: 'down' });
    assert.match(st.writeError ?? '', /backend is down/);
    fake.instances.get('a')!.down = false;
    await until(() => fake.instances.get('a')!.stored.length === 5, 3000, 'replayed');
    await until(() => m.status().backends[0]!.up);
  });
});

describe('StorageManager: flush', () => {
  // batches would wait a minute and a failed write a minute before its retry:
  // only the flush makes these events reach the backend within the test
  const slow = { worker: { maxWaitMs: 60_000, maxBatch: 1000, retryMinMs: 60_000, retryMaxMs: 60_000, stopTimeoutMs: 1000 } };

  it('writes what is queued at once and counts it per backend', async (t) => {
    const { m, fake } = await env(t, slow);
    await started(m, { a: { File: 'fake', Filter: ['1 1 EQ'] }, b: { File: 'fake', Filter: ['type:B'] }, idle: { File: 'fake', Run: 'trigger', Filter: ['1 1 EQ'] } });
    for (const i of range(5)) m.deliver(mkEvent(i), NO_ACK);
    m.deliver(mkEvent(5, 'B'), NO_ACK);
    assert.equal(fake.instances.get('a')!.stored.length, 0, 'still batching');
    const r = await m.flush(5000);
    assert.deepEqual(r.map((x) => [x.backend, x.flushed, x.written, x.queueDepth, x.error]), [['a', true, 6, 0, null], ['b', true, 1, 0, null]], 'the started backends only');
    assert.equal(fake.instances.get('a')!.stored.length, 6);
    assert.equal(fake.instances.get('b')!.stored.length, 1);
    assert.deepEqual((await m.flush(5000, 'b')).map((x) => [x.backend, x.written]), [['b', 0]], 'nothing left');
  });

  it('a backend that is down: not flushed by the deadline, nothing lost; once up, the flush writes the spool at once', async (t) => {
    const { m, fake } = await env(t, slow, (b) => {
      b.down = true;
    });
    await started(m, { a: { File: 'fake', Filter: ['1 1 EQ'] } });
    for (const i of range(4)) m.deliver(mkEvent(i), NO_ACK);
    const late = await m.flush(300);
    assert.equal(late.length, 1);
    assert.equal(late[0]!.flushed, false);
    assert.equal(late[0]!.written, 0);
    assert.match(late[0]!.error ?? '', /backend is down/);
    const b = fake.instances.get('a')!;
    assert.ok(b.persistCalls >= 1, 'the flush tried the backend');
    b.down = false;
    const t0 = Date.now();
    const ok = await m.flush(10_000);
    assert.deepEqual(ok.map((x) => [x.flushed, x.written, x.queueDepth, x.error]), [[true, 4, 0, null]]);
    assert.ok(Date.now() - t0 < 10_000, 'not the 60 s retry');
    assert.deepEqual(b.storedIds(), range(4).map((i) => mkEvent(i).event_id), 'in order');
  });

  it('refuses an unknown or stopped backend and a manager that is not running', async (t) => {
    const { m } = await env(t);
    await assert.rejects(m.flush(100), code('WRONG_STATE'));
    await started(m, { a: { File: 'fake', Filter: ['1 1 EQ'] }, later: { File: 'fake', Run: 'trigger', Filter: ['1 1 EQ'] } });
    await assert.rejects(m.flush(100, 'nosuch'), code('UNKNOWN_BACKEND'));
    await assert.rejects(m.flush(100, 'later'), code('NOT_STARTED'));
  });

  it('status: startedAt and starts follow stop and start commands', async (t) => {
    const { m } = await env(t);
    await started(m, { a: { File: 'fake', Filter: ['1 1 EQ'] } });
    let st = m.status().backends[0]!;
    assert.equal(st.starts, 1);
    assert.ok(st.startedAt !== null && !Number.isNaN(Date.parse(st.startedAt)));
    await m.stopBackend('a');
    st = m.status().backends[0]!;
    assert.equal(st.startedAt, null);
    assert.equal(st.starts, 1);
    await m.startBackend('a');
    assert.equal(m.status().backends[0]!.starts, 2);
  });
});

describe('StorageManager: module backends under PluginSearchPath', () => {
  it('loads an ES module exporting a BackendFactory (default export), validating its Config', async (t) => {
    const { m, stateDir } = await env(t);
    await started(m, { rec: { File: 'recording.ts', Filter: ['1 1 EQ'], Config: { Label: 'x' } } }, FIXTURES);
    m.deliver(mkEvent(7), NO_ACK);
    await until(() => (recorded.get('rec')?.length ?? 0) === 1);
    assert.equal(contexts.get('rec')!.stateDir, stateDir);
    assert.equal(contexts.get('rec')!.hostname, 'node1');
    await m.stop();
    m.initialize(cfg({ rec: { File: 'recording.ts', Config: { Nope: true } } }, FIXTURES));
    await assert.rejects(m.start(), /backend "rec": invalid Config: Config: Unrecognized key: "Nope"/);
    m.initialize(cfg({ rec: { File: 'recording.ts', Config: { FailStart: true } } }, FIXTURES));
    await assert.rejects(m.start(), code('START_FAILED'));
  });

  it('takes the named export `backend` too', async (t) => {
    const { m } = await env(t);
    await started(m, { n: { File: 'named-export.ts', Filter: ['1 1 EQ'] } }, FIXTURES);
    assert.equal(m.status().backends[0]!.started, true);
  });

  const refused: [string, string, RegExp][] = [
    ['a module that does not export the interface', 'not-a-backend.ts', /does not export a backend/],
    ['a path with ..', '../backends/recording.ts', /escapes PluginSearchPath/],
    ['an absolute path', path.join(FIXTURES, 'recording.ts'), /absolute path/],
    ['a missing file', 'nosuch.ts', /no module "nosuch.ts" under PluginSearchPath/],
    ['a file that is not an ES module', 'backend_json.so', /unknown File "backend_json.so"/],
  ];
  for (const [what, file, re] of refused) {
    it(`start fails on ${what}`, async (t) => {
      const { m } = await env(t);
      m.initialize(cfg({ x: { File: file } }, FIXTURES));
      await assert.rejects(m.start(), (e: unknown) => code('LOAD_FAILED')(e) && re.test((e as Error).message));
    });
  }

  it('start fails on a module file without PluginSearchPath', async (t) => {
    const { m } = await env(t);
    m.initialize(cfg({ x: { File: 'recording.ts' } }));
    await assert.rejects(m.start(), /no PluginSearchPath is configured/);
  });

  it('start fails on a symbolic link pointing outside PluginSearchPath; one pointing inside works', async (t) => {
    const dir = await tmpDir(t);
    const search = path.join(dir, 'backends');
    await mkdir(path.join(search, 'impl'), { recursive: true });
    await symlink(path.join(FIXTURES, 'recording.ts'), path.join(search, 'out.ts'));
    await writeFile(path.join(search, 'impl', 'plain.mjs'), `
      const schema = { safeParse: (v) => ({ success: true, data: v }) };
      export default {
        file: 'plain.mjs', configSchema: schema,
        create: (name) => ({ name, start: async () => {}, persist: async () => {}, findEvents: async () => ({ events: [], isTruncated: false }), shutdown: async () => {}, health: () => ({ ok: true }) }),
      };
    `);
    await symlink(path.join(search, 'impl', 'plain.mjs'), path.join(search, 'in.mjs'));
    const { m } = await env(t);
    m.initialize(cfg({ x: { File: 'out.ts' } }, search));
    await assert.rejects(m.start(), (e: unknown) => code('LOAD_FAILED')(e) && /resolves outside PluginSearchPath/.test((e as Error).message));
    m.initialize(cfg({ x: { File: 'in.mjs' }, y: { File: 'impl/plain.mjs' } }, search));
    await m.start();
    assert.deepEqual(m.status().backends.map((b) => b.started), [true, true]);
  });

  it('a symlinked search path itself is fine (compared by real paths)', async (t) => {
    const dir = await tmpDir(t);
    await symlink(FIXTURES, path.join(dir, 'link'));
    const { m } = await env(t);
    await started(m, { n: { File: 'named-export.ts' } }, path.join(dir, 'link'));
    assert.equal(m.currentState, 'running');
  });
});

describe('StorageManager: metrics and configuration switches', () => {
  it('one StorageMetrics per registry; two managers share it without registering twice', async (t) => {
    const registry = new Registry();
    const metrics = StorageMetrics.forRegistry(registry);
    assert.equal(StorageMetrics.forRegistry(registry), metrics);
    const a = await env(t, { metrics });
    const b = await env(t, { metrics });
    await started(a.m, { x: { File: 'fake', Filter: ['1 1 EQ'] } });
    await started(b.m, { x: { File: 'fake', Filter: ['1 1 EQ'] }, y: { File: 'fake', Run: 'trigger' } });
    const text = await registry.metrics();
    assert.match(text, /peripety_backend_up\{backend="x"\} 1/);
    assert.match(text, /peripety_backend_up\{backend="y"\} 0/);
    assert.match(text, /peripety_backend_queue_depth\{backend="x"\} 0/);
    assert.match(text, /peripety_backend_spool_bytes\{backend="x"\} 0/);
    await a.m.stop();
    await b.m.stop();
    assert.doesNotMatch(await registry.metrics(), /peripety_backend_up\{/, 'series of stopped backends disappear');
  });

  it('switching managers: the new one starts, the old one stops; nothing is lost even with the backend down', async (t) => {
    const { m: oldM, fake, stateDir, opts } = await env(t, {}, (b) => {
      b.down = true;
    });
    await started(oldM, { local: { File: 'fake', Filter: ['1 1 EQ'] } });
    const c = Array.from({ length: 40 }, () => counter());
    for (const i of range(20)) oldM.deliver(mkEvent(i), c[i]!.ack);
    const fresh = fakeFactory('fake');
    const newM = new StorageManager({ ...opts, builtins: { fake: fresh as BackendPlugin<unknown> }, stateDir });
    t.after(() => newM.stop().catch(() => {}));
    await started(newM, { local: { File: 'fake', Filter: ['1 1 EQ'] } });
    // the agent moves the bus over, then stops the old manager
    for (const i of range(20, 20)) newM.deliver(mkEvent(i), c[i]!.ack);
    await oldM.stop();
    await until(() => fresh.instances.get('local')!.stored.length === 40, 5000, 'everything in the new backend');
    assert.ok(c.every((x) => x.calls === 1));
    assert.equal(fake.instances.get('local')!.stored.length, 0);
    assert.deepEqual(new Set(fresh.instances.get('local')!.storedIds()), new Set(range(40).map((i) => mkEvent(i).event_id)));
  });
});

describe('StorageManager: events a backend that keeps events drops hold the kernel position', () => {
  it('events a durable backend drops are acknowledged as lost; replayReady follows the running durable backends', async (t) => {
    const { opts, stateDir } = await env(t);
    // no usable spool: what a failing backend holds stays in memory until it is dropped
    await writeFile(path.join(stateDir, 'spool'), 'not a directory');
    const keep = fakeFactory('keep', (b) => (b.down = true));
    const volatile = { ...fakeFactory('volatile', (b) => (b.down = true)), durable: false };
    const m = new StorageManager({ ...opts, builtins: { keep: keep as BackendPlugin<unknown>, volatile: volatile as BackendPlugin<unknown> } });
    t.after(async () => {
      await m.stop().catch(() => {});
    });
    await started(m, { k: { File: 'keep', Filter: ['1 1 EQ'] }, v: { File: 'volatile', Filter: ['1 1 EQ'] } });
    assert.equal(m.replayReady(), true, 'fresh workers are up');
    const lost: (boolean | undefined)[] = [];
    for (const i of range(5)) assert.equal(m.deliver(mkEvent(i), onAck((l) => void lost.push(l))), true);
    await until(() => !m.replayReady(), 5000, 'the failing durable backend is not ready');
    await m.stopBackend('v');
    assert.equal(lost.length, 0, 'the durable backend still holds them');
    await m.stopBackend('k');
    assert.deepEqual(lost, [true, true, true, true, true], 'dropped by the durable backend: lost');
    assert.equal(m.replayReady(), false, 'no durable backend runs: the hold waits');
    await m.startBackend('v');
    assert.equal(m.replayReady(), false, 'a non-durable backend does not count');
    await m.startBackend('k');
    assert.equal(m.replayReady(), true, 'the durable backend runs again and is up');
    // dropped by the non-durable one only: a plain acknowledgement
    const lost2: (boolean | undefined)[] = [];
    await m.stopBackend('k');
    m.deliver(mkEvent(9), onAck((l) => void lost2.push(l)));
    await m.stopBackend('v');
    assert.deepEqual(lost2, [false]);
  });
});
