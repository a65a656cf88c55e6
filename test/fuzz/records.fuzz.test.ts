// Bad input: random and mutated kernel records (truncated, missing fields,
// huge, binary, invalid escapes) through the record parsers, the
// classifier, every parser and the synthesizer. No exception may escape and
// no single input may take long (a regex that backtracks would).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { synthesize } from '../../src/agent/synthesize.ts';
import { classify } from '../../src/kmsg/classify.ts';
import { parseKmsgRecord } from '../../src/kmsg/record.ts';
import { parseTextLine } from '../../src/logtext/formats.ts';
import { readText } from '../../src/logtext/reader.ts';
import { PARSERS } from '../../src/parsers/index.ts';
import { isContext } from '../../src/contracts/parser.ts';
import { ROOT } from '../helpers/agent.ts';
import { FUZZ_SEED as SEED, fuzzIterations, rng } from '../helpers/fuzz.ts';

const ITERATIONS = fuzzIterations(200_000);

function corpus(): string[] {
  const lines: string[] = [];
  const dir = path.join(ROOT, 'test/fixtures/lines');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.jsonl'))) {
    for (const row of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (row.trim()) lines.push((JSON.parse(row) as { line: string }).line);
    }
  }
  // Whole raw records, continuation lines included (test/fixtures/README.md).
  lines.push(...readFileSync(path.join(ROOT, 'test/fixtures/kmsg-sample.txt'), 'utf8').split(/\n(?! )/));
  return lines;
}

describe('fuzzing the record and event parsers', () => {
  it(`${ITERATIONS} random and mutated records (seed ${SEED})`, (t) => {
    const rand = rng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const base = corpus();
    assert.ok(base.length > 30, 'a corpus of real lines');
    const pieces = ['\\x', '\\xZZ', '\\x0', '\\x00', '\\xff', ';', ',', '\n ', '\n SUBSYSTEM=', '\n DEVICE=+scsi:', '=', '(', ')', '[', ']', ':', '%s', '\u0000', '\uffff', 'é', '-', ' ', '99999999999999999999999', '-1', 'dev ', 'device ', 'md/raid', 'sd ', 'ata1.00: ', 'EXT4-fs error (device ', 'XFS (', 'BTRFS error (device ', 'device-mapper: multipath: ', '253:', 'tag#', 'I/O error, dev '];
    const mutate = (s: string): string => {
      switch (Math.floor(rand() * 9)) {
        case 0: return s.slice(0, Math.floor(rand() * s.length)); // truncated
        case 1: { const i = Math.floor(rand() * s.length); return s.slice(0, i) + pick(pieces) + s.slice(i); }
        case 2: { const i = Math.floor(rand() * s.length); return s.slice(0, i) + s.slice(i + 1 + Math.floor(rand() * 10)); } // missing bytes
        case 3: return s.replace(/\d+/g, () => pick(['0', '4294967296', '99999999999999999999999999', '-5', '']));
        case 4: return s + pick(pieces).repeat(1 + Math.floor(rand() * 20000)); // huge
        case 5: return Array.from({ length: Math.floor(rand() * 300) }, () => String.fromCharCode(Math.floor(rand() * 256))).join(''); // binary
        case 6: return s.replace(/[;,]/, ''); // a missing prefix separator
        case 7: return `${pick(['3', '6', '11', '999', ''])},${Math.floor(rand() * 1e6)},${Math.floor(rand() * 1e9)},${pick(['-', 'c', '+', ''])};${pick(base).replace(/^\d+,\d+,\d+,[^;]*;/, '')}`;
        default: return pick(base).slice(0, 40) + s.slice(Math.floor(rand() * s.length)); // spliced
      }
    };
    let worstMs = 0;
    let worstInput = '';
    let events = 0;
    const ctx = { hostname: 'fuzz', bootId: 'b', bootEpochUs: 0, resolver: null, source: 'fuzz' };
    for (let i = 0; i < ITERATIONS; i++) {
      let input = pick(base);
      const rounds = 1 + Math.floor(rand() * 3);
      for (let r = 0; r < rounds; r++) input = mutate(input);
      const start = performance.now();
      // the text reader of `prpt parse` in place of the dmesg line parser it replaced
      const text = parseTextLine(input, { year: 2025 });
      const results = [parseKmsgRecord(input), text.kind === 'kernel' ? { ok: true as const, record: text.value.record } : { ok: false as const, error: text.kind }];
      if (i % 50 === 0) {
        for (const item of readText(input, { year: 2025 })) {
          if (item.kind === 'kernel') results.push({ ok: true, record: item.value.record });
          else if (item.kind === 'error') results.push({ ok: false, error: item.error });
        }
      }
      for (const res of results) {
        if (!res.ok) {
          assert.equal(typeof res.error, 'string');
          continue;
        }
        const system = classify(res.record) ?? 'block';
        for (const p of Object.values(PARSERS)) {
          const out = p.parse({ ...res.record, system });
          if (out && !isContext(out)) {
            const ev = synthesize({ ...res.record, system }, out, p.name, ctx);
            assert.equal(typeof JSON.stringify(ev), 'string');
            events++;
          }
        }
      }
      const ms = performance.now() - start;
      if (ms > worstMs) {
        worstMs = ms;
        worstInput = input;
      }
    }
    t.diagnostic(`seed ${SEED}: ${ITERATIONS} inputs, ${events} events, slowest input ${worstMs.toFixed(2)} ms (${worstInput.length} chars)`);
    // a generous bound: a catastrophic regex takes seconds on these inputs, a linear one well under a millisecond per KiB
    assert.ok(worstMs < 1000, `an input took ${worstMs} ms: ${JSON.stringify(worstInput.slice(0, 200))}`);
  });
});
