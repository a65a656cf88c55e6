// The line fixtures of test/fixtures/lines/<name>.jsonl as kernel records:
// each row's `line` is a raw /dev/kmsg record or a dmesg line.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { KernelRecord } from '../../src/contracts/record.ts';
import { parseKmsgRecord } from '../../src/kmsg/record.ts';
import { bareRecord, parseTextLine } from '../../src/logtext/formats.ts';

/** One fixture line as a record: a /dev/kmsg record, else dmesg text read as `prpt parse` reads it (a known prefix, else the bare message). */
export function fixtureRecord(line: string): KernelRecord {
  if (/^\d+,\d+,\d+,[^;]*;/.test(line)) {
    const p = parseKmsgRecord(line.endsWith('\n') ? line : `${line}\n`);
    assert.ok(p.ok, `record did not parse: ${p.ok ? '' : p.error}`);
    return p.record;
  }
  const t = parseTextLine(line, { year: 2025 });
  assert.notEqual(t.kind, 'other', `read as another program's line: ${line}`);
  const rec = t.kind === 'kernel' ? t.value.record : bareRecord(line);
  assert.ok(rec !== null && rec.message.trim() !== '', `record did not parse: empty message in ${line}`);
  return rec;
}

export function fixtureMessages(name: string): string[] {
  const file = path.resolve(import.meta.dirname, `../fixtures/lines/${name}.jsonl`);
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((row) => fixtureRecord((JSON.parse(row) as { line: string }).line).message);
}
