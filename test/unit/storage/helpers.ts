// Test doubles for the storage tests: a tiny filter compiler (the real one is
// injected by the agent), a controllable in-memory backend, events, temp dirs.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { StorageEvent } from '../../../src/events/schema.ts';
import type { CompileResult, CompiledFilter, FilterResult } from '../../../src/filter/types.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import type { Backend, BackendPlugin, EventQuery, QueryResult } from '../../../src/storage/types.ts';
import { eventKey } from '../../../src/storage/types.ts';
import type { Ack } from '../../../src/contracts/ack.ts';
import { onAck } from '../../helpers/ack.ts';

export const log = silentLogger();

export function mkEvent(i: number, type = 'DISK_ERROR'): StorageEvent {
  return {
    hostname: 'node1', severity: 'error', system: 'scsi', timestamp: 1_700_000_000 + i,
    event_id: `id-${String(i).padStart(6, '0')}`, event_type: type, dev_wwid: 'wwid', dev_name: 'sda',
    msg: `event ${i}`, extentions: {},
  };
}

export const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

/** How often each filter source was evaluated. */
export const evaluations = new Map<string, number>();

/**
 * The test filter language, one filter per string:
 * - `1 1 EQ`: matches everything (the seed's catch-all)
 * - `none`: matches nothing
 * - `type:X`: matches events of type X
 * - `fail:X`: ERROR on events of type X ("division by zero"), else NO_MATCH
 * - `error`: ERROR on every event
 * - a token `BAD` anywhere: a compile error at its position
 * - anything else: a compile error at 0
 */
export function testCompile(source: string): CompileResult {
  const bad = source.indexOf('BAD');
  if (bad >= 0) return { ok: false, error: { filter: source, position: bad, token: 'BAD', message: 'BAD is not a command' } };
  let fn: (ev: StorageEvent) => FilterResult;
  if (source === '1 1 EQ') fn = () => 'MATCH';
  else if (source === 'none') fn = () => 'NO_MATCH';
  else if (source === 'error') fn = () => 'ERROR';
  else if (source.startsWith('type:')) {
    const t = source.slice(5);
    fn = (ev) => (ev.event_type === t ? 'MATCH' : 'NO_MATCH');
  } else if (source.startsWith('fail:')) {
    const t = source.slice(5);
    fn = (ev) => (ev.event_type === t ? 'ERROR' : 'NO_MATCH');
  } else {
    return { ok: false, error: { filter: source, position: 0, token: source.split(' ')[0] ?? '', message: 'unknown test filter' } };
  }
  const filter: CompiledFilter = {
    source,
    hints: {},
    evaluate(ev) {
      evaluations.set(source, (evaluations.get(source) ?? 0) + 1);
      return fn(ev);
    },
    evaluateDetailed(ev) {
      const result = fn(ev);
      return result === 'ERROR' ? { result, error: 'division by zero at position 0' } : { result };
    },
  };
  return { ok: true, filter };
}

export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll until `cond` holds (fails the test after `ms`). */
export async function until(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** A backend the test controls: failing, slow, down and up again; idempotent by eventKey like the real ones. */
export class FakeBackend implements Backend {
  readonly name: string;
  /** first copies, in the order stored */
  readonly stored: StorageEvent[] = [];
  private readonly keys = new Set<string>();
  duplicates = 0;
  persistCalls = 0;
  /** reject the next N persist calls */
  failNext = 0;
  /** reject every persist while true */
  down = false;
  /** each persist waits this long */
  delayMs = 0;
  /** when set, each persist waits for it */
  gate: Promise<void> | null = null;
  started = false;
  startError: Error | null = null;
  shutdownError: Error | null = null;
  shutdowns = 0;
  /** batch sizes seen */
  readonly batches: number[] = [];

  constructor(name = 'fake') {
    this.name = name;
  }

  async start(): Promise<void> {
    if (this.startError) throw this.startError;
    this.started = true;
  }

  async persist(events: readonly StorageEvent[]): Promise<void> {
    this.persistCalls++;
    this.batches.push(events.length);
    if (this.delayMs > 0) await sleep(this.delayMs);
    if (this.gate) await this.gate;
    if (this.down) throw new Error('backend is down');
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('injected failure');
    }
    for (const ev of events) {
      const k = eventKey(ev);
      if (this.keys.has(k)) {
        this.duplicates++;
        continue;
      }
      this.keys.add(k);
      this.stored.push(ev);
    }
  }

  async findEvents(_q: EventQuery): Promise<QueryResult> {
    return { events: [...this.stored].reverse(), isTruncated: false };
  }

  async shutdown(): Promise<void> {
    this.shutdowns++;
    if (this.shutdownError) throw this.shutdownError;
    this.started = false;
  }

  health() {
    return { ok: !this.down, detail: this.down ? 'down' : undefined };
  }

  storedIds(): string[] {
    return this.stored.map((e) => e.event_id);
  }
}

/** A backend plugin whose instances the test can reach: `instances[name]` is the latest one built for that backend name. */
export function fakeFactory(file = 'fake', setup?: (b: FakeBackend) => void): BackendPlugin<{ Fail?: boolean }> & { instances: Map<string, FakeBackend> } {
  const instances = new Map<string, FakeBackend>();
  return {
    name: file,
    description: 'a test backend',
    options: z.strictObject({ Fail: z.boolean().optional() }),
    instances,
    build(name, config) {
      const b = new FakeBackend(name);
      if (config.Fail) b.startError = new Error('cannot connect to db://user:hunter2@db.example:5432/events');
      setup?.(b);
      instances.set(name, b);
      return b;
    },
  };
}

export async function tmpDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'peripety-storage-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

/** An ack counter for one event: how often its hold ended (released or lost). */
export function counter(): { calls: number; ack: Ack } {
  const c = { calls: 0, ack: onAck(() => void c.calls++) };
  return c;
}
