// Generated events, a capturing logger and config-error lists for the backend tests.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { StorageEvent } from '../../../../src/events/schema.ts';
import type { Logger } from '../../../../src/log/logger.ts';
import { silentLogger } from '../../../../src/log/logger.ts';
import type { BackendContext } from '../../../../src/storage/types.ts';
import type { z } from 'zod';

/** 2025-01-15T12:00:00Z in µs */
export const T0 = Date.UTC(2025, 0, 15, 12) * 1000;
export const SEC = 1_000_000;
export const DAY = 86_400 * SEC;

const SYSTEMS = ['block', 'scsi', 'nvme'] as const;
const DEVS = ['sda', 'sdb', 'sdc', 'nvme0n1'] as const;

/** Event number i at T0 + i s (or `timeUs`), with a unique id. */
export function ev(i: number, o: Partial<StorageEvent> & { timeUs?: number } = {}): StorageEvent {
  const { timeUs = T0 + i * SEC, ...rest } = o;
  const dev = DEVS[i % DEVS.length]!;
  return {
    hostname: 'node-1',
    severity: i % 5 === 0 ? 'warn' : 'error',
    system: SYSTEMS[i % SYSTEMS.length]!,
    timestamp: Math.floor(timeUs / SEC),
    event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    event_type: 'BLK_IO_ERROR',
    dev_wwid: `naa.5000c500a1b2c3d${i % DEVS.length}`,
    dev_name: dev,
    msg: `I/O error on ${dev} (READ, sector ${i * 8}) "quoted" \\ ü`,
    extentions: { timestamp_us: String(timeUs), kernel_dev: dev, raw_msg: `I/O error, dev ${dev}, sector ${i * 8}`, kmsg_seq: String(i) },
    ...rest,
  };
}

export function evs(from: number, to: number, o: (i: number) => Partial<StorageEvent> & { timeUs?: number } = () => ({})): StorageEvent[] {
  const out: StorageEvent[] = [];
  for (let i = from; i < to; i++) out.push(ev(i, o(i)));
  return out;
}

export function ids(list: readonly StorageEvent[]): number[] {
  return list.map((e) => Number(e.extentions.kmsg_seq));
}

export interface TempDir {
  dir: string;
  cleanup(): void;
}

export function tempDir(prefix = 'prpt-storage-'): TempDir {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function context(stateDir: string, log: Logger = silentLogger(), hostname = 'node-1'): BackendContext {
  return { log, stateDir, hostname, env: {} };
}

export interface Captured {
  log: Logger;
  records: { level: number; msg: string; [k: string]: unknown }[];
  warnings(): string[];
}

/** A logger that keeps what it logs (warn and above by default). */
export function capturingLogger(level: pino.Level = 'warn'): Captured {
  const records: Captured['records'] = [];
  const log = pino({ level }, { write: (line: string) => void records.push(JSON.parse(line) as Captured['records'][number]) });
  return { log, records, warnings: () => records.filter((r) => r.level >= 40).map((r) => r.msg) };
}

/** What a backend's Config schema says about a value it must reject, as "path: message" lines. */
export function configIssues(schema: z.ZodType, input: unknown): string[] {
  const r = schema.safeParse(input);
  assert.equal(r.success, false, `should reject ${JSON.stringify(input)}`);
  return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}
