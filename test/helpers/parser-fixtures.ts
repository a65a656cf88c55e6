// The line fixtures of test/fixtures/lines/<name>.jsonl as kernel messages:
// each row's `line` is a raw /dev/kmsg record or a dmesg line.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDmesgLine, parseKmsgRecord } from '../../src/kmsg/record.ts';

export function fixtureMessages(name: string): string[] {
  const file = path.resolve(import.meta.dirname, `../fixtures/lines/${name}.jsonl`);
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((row) => {
    const { line } = JSON.parse(row) as { line: string };
    const p = /^\d+,\d+,\d+,[^;]*;/.test(line) ? parseKmsgRecord(`${line}\n`) : parseDmesgLine(line);
    assert.ok(p.ok);
    return p.record.message;
  });
}
