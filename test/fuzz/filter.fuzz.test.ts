// Untrusted filter strings: random token soup (real operators, paths and
// literals mixed with junk, unbalanced quotes, huge numbers, binary) and
// mutated rows of the filter table, through compileFilter and, when they
// compile, through evaluation on sample events. Nothing may throw, every
// compile error must point into the string at the token it names, and every
// evaluation must return one of the three results promptly.
//
// Importing the table runs its tests in this process too; they are fast.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageEvent } from '../../src/events/schema.ts';
import { compileFilter } from '../../src/filter/compile.ts';
import type { FilterResult } from '../../src/filter/types.ts';
import { FUZZ_SEED as SEED, fuzzIterations, rng } from '../helpers/fuzz.ts';
import { EVENTS, READ_ERROR, TABLE } from '../unit/filter/table.test.ts';

const RANDOM = fuzzIterations(100_000);
const MUTATED = Math.max(1, Math.floor(RANDOM / 2));

const OPERATORS = ['EQ', 'NE', 'LT', 'LE', 'GT', 'GE', 'AND', 'OR', 'XOR', 'NOT', 'ADD', 'SUB', 'MUL', 'DIV', 'STRCMP', 'REGEX'];
const BAD_WORDS = ['LDV', 'LDP', 'eq', 'And', 'FOO', 'r', 'R', 'EQEQ', 'NaN', 'Infinity', 'true'];
const MEMBERS = ['date.sec', 'date.tv_sec', 'date.nsec', 'date.tv_nsec', 'source.appName', 'source.fileName', 'source.pid',
  'severity', 'hardwareid', 'classification', 'messageCode', 'payload', 'hostname', 'system', 'event_type', 'event_id',
  'dev_wwid', 'dev_name', 'msg', 'timestamp', 'extentions.op', 'extentions.kmsg_seq', 'extentions.raw_msg',
  'extentions.__proto__', 'extentions.constructor', 'extentions.', 'extentions', 'extensions.op', 'source', 'date', 'foo',
  'MessageCode', 'date.sec.x', 'extentions.a.b'];
const BAD_PATHS = ['.', '..', '.1', '.e', '.e.', '.event', '.x.severity', '.e..severity', '.e.severity.', '.ev.date.', '.event.source.'];
const INTS = ['0', '1', '-1', '2', '3', '16', '128', '145', '6000', '6001', '7000', '1763812400', '9007199254740991', '9007199254740993',
  '9223372036854775807', '-9223372036854775808', '9223372036854775808', '-9223372036854775809', '99999999999999999999999',
  '0x10', '1.5', '1e3', '.5', '+', '-', '007', '-0', '+5', '--1', '1_000', '١٢'];
const STRINGS = ["'sdb'", '"block"', "''", '""', "'a b'", '"it\'s"', "'node-7.example.com'", "'BLK_IO_ERROR'", "'READ'",
  "'abc", '"abc', "'a'b", "'", '"', "'a\"", "'\u0000'", `'${'x'.repeat(300)}'`];
const REGEXES = ["r'sdb'", "r'(a+)+$'", "r'('", "r'(a)\\1'", 'R"x"', "r'[[:digit:]]'", "r''", "r'\\b'", "r'a{99999}'", "r'",
  "r'(?=a)'", "r'\\<x\\>'", "r'[a-'", "r'(?<=on )sd'", "r'^$'", "r'.*'", "r'\\'", `r'${'(a|b)'.repeat(120)}'`, "r'(((a{16}){16}){16})'"];
const JUNK = ['\u0000', '\u00a0', '\ufeff', '\t', '\n', '\r\n', ')', '(', '[', '{', '\\', 'é', '😀', '\ud800', '#', ';', '%s', '${x}'];
const SPACES = [' ', ' ', ' ', '  ', '\t', '\n', '', '\u00a0'];

function sampleEvents(): StorageEvent[] {
  return [
    ...EVENTS,
    StorageEvent.parse({ ...READ_ERROR, msg: `${'a'.repeat(10000)}b` }),
    StorageEvent.parse({
      hostname: '', severity: 'warn', system: 'nvme', timestamp: Number.MAX_SAFE_INTEGER, event_id: '', event_type: '',
      dev_wwid: '', dev_name: '', msg: '', extentions: { timestamp_us: 'junk', op: 'ſ', kernel_level: '-1', '__proto__': 'x' },
    }),
    StorageEvent.parse({ ...READ_ERROR, timestamp: Number.MIN_SAFE_INTEGER, extentions: { timestamp_us: '1e300', op: 'write' } }),
  ];
}

const RESULTS: readonly FilterResult[] = ['MATCH', 'NO_MATCH', 'ERROR'];

describe('fuzzing the filter language', () => {
  it(`${RANDOM} random token strings and ${MUTATED} mutated table rows (seed ${SEED})`, () => {
    const rand = rng(SEED);
    const int = (n: number): number => Math.floor(rand() * n);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
    const events = sampleEvents();

    const token = (): string => {
      switch (int(10)) {
        case 0: case 1: case 2: return pick(OPERATORS);
        case 3: return pick(BAD_WORDS);
        case 4: case 5: return `${pick(['.event.', '.ev.', '.e.'])}${pick(MEMBERS)}`;
        case 6: return rand() < 0.8 ? pick(INTS) : String(int(2 ** 31) - 2 ** 30);
        case 7: return pick(STRINGS);
        case 8: return rand() < 0.5 ? pick(REGEXES) : pick(BAD_PATHS);
        default: return rand() < 0.5 ? pick(JUNK) : String.fromCharCode(...Array.from({ length: 1 + int(6) }, () => int(0x10000)));
      }
    };
    const randomFilter = (): string => {
      const r = rand();
      const n = r < 0.01 ? 500 + int(100) : r < 0.02 ? 4000 : int(24);
      let s = '';
      for (let i = 0; i < n; i++) s += (i > 0 ? pick(SPACES) : '') + token();
      return s;
    };
    const base = TABLE.map((row) => row.filter).filter((f) => f.length < 2000);
    const mutate = (s: string): string => {
      const at = int(s.length + 1);
      switch (int(8)) {
        case 0: return s.slice(0, at);
        case 1: return s.slice(0, at) + pick([' ', '']) + token() + pick([' ', '']) + s.slice(at);
        case 2: return s.slice(0, at) + s.slice(at + 1 + int(12));
        case 3: return s.slice(0, at) + String.fromCharCode(int(0x10000)) + s.slice(at + 1);
        case 4: return `${s} ${pick(base)} ${pick(OPERATORS)}`;
        case 5: {
          const parts = s.split(' ');
          const i = int(parts.length);
          const j = int(parts.length);
          [parts[i], parts[j]] = [parts[j] ?? '', parts[i] ?? ''];
          return parts.join(' ');
        }
        case 6: return s.replace(/-?\d+/g, () => pick(INTS));
        default: return s.replace(/['"]/, '');
      }
    };

    let compiled = 0;
    let evaluated = 0;
    let slowest = 0;
    const tally: Record<FilterResult, number> = { MATCH: 0, NO_MATCH: 0, ERROR: 0 };
    for (let i = 0; i < RANDOM + MUTATED; i++) {
      const source = i < RANDOM ? randomFilter() : mutate(pick(base));
      const r = compileFilter(source);
      if (!r.ok) {
        const e = r.error;
        assert.ok(Number.isInteger(e.position) && e.position >= 0 && e.position <= source.length, `position ${e.position} in ${JSON.stringify(source)}`);
        assert.ok(e.message.length > 0);
        assert.ok(e.filter.length <= 513 && e.token.length <= 101);
        const shown = e.token.length === 101 && e.token.endsWith('…') ? e.token.slice(0, 100) : e.token;
        assert.ok(source.startsWith(shown, e.position), `token ${JSON.stringify(e.token)} at ${e.position} in ${JSON.stringify(source)}`);
        continue;
      }
      compiled++;
      assert.equal(r.filter.source, source);
      for (const ev of events) {
        const t0 = performance.now();
        const result = r.filter.evaluate(ev);
        slowest = Math.max(slowest, performance.now() - t0);
        assert.ok(RESULTS.includes(result), `${result} from ${source}`);
        const d = r.filter.evaluateDetailed(ev);
        assert.equal(d.result, result, source);
        assert.equal(d.error !== undefined, result === 'ERROR', source);
        tally[result]++;
        evaluated++;
      }
    }
    assert.ok(compiled > 1000, `${compiled} filters compiled`);
    assert.ok(tally.MATCH > 0 && tally.NO_MATCH > 0 && tally.ERROR > 0, JSON.stringify(tally));
    assert.ok(slowest < 1000, `slowest evaluation ${slowest} ms`);
    console.log(`filter fuzz: seed ${SEED}, ${compiled} compiled, ${evaluated} evaluations ${JSON.stringify(tally)}, slowest ${slowest.toFixed(1)} ms`);
  });

  // The compiler picks number or BigInt arithmetic from value ranges; a
  // wrong range would give wrong answers near 2^31, 2^53 and 2^63. A BigInt
  // reference decides what every random integer expression must give.
  it(`${RANDOM} random integer expressions agree with a BigInt reference (seed ${SEED})`, () => {
    const rand = rng(SEED ^ 0x5bd1e995);
    const int = (n: number): number => Math.floor(rand() * n);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
    const MIN = -(2n ** 63n);
    const MAX = 2n ** 63n - 1n;
    const edges = [0n, 1n, -1n, 2n, 3n, -7n, 16n, 145n, 2n ** 31n - 1n, 2n ** 31n, -(2n ** 31n), -(2n ** 31n) - 1n, 2n ** 32n,
      2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 62n, MAX, MIN, MAX - 1n, MIN + 1n, 3037000499n, 3037000500n];
    // READ_ERROR's values (table.test.ts checks them against toElos)
    const paths: Array<[string, bigint]> = [['.e.severity', 2n], ['.e.messageCode', 6001n], ['.e.classification', 145n],
      ['.e.timestamp', 1763812345n], ['.e.date.sec', 1763812345n], ['.e.date.nsec', 123456000n]];
    type Expr = { rpn: string; value: bigint | null };
    const leaf = (): Expr => {
      const r = rand();
      if (r < 0.3) {
        const [p, v] = pick(paths);
        return { rpn: p, value: v };
      }
      const v = r < 0.7 ? pick(edges) : BigInt(int(2 ** 31)) * BigInt(int(2 ** 31)) * (rand() < 0.5 ? -1n : 1n) + BigInt(int(1000));
      const c = v < MIN ? MIN : v > MAX ? MAX : v;
      return { rpn: String(c), value: c };
    };
    const expr = (depth: number): Expr => {
      if (depth === 0 || rand() < 0.3) return leaf();
      const a = expr(depth - 1);
      const b = expr(depth - 1);
      const op = pick(['ADD', 'SUB', 'MUL', 'DIV', 'AND', 'OR', 'XOR']);
      let value: bigint | null = null;
      if (a.value !== null && b.value !== null) {
        const x = a.value;
        const y = b.value;
        switch (op) {
          case 'ADD': value = x + y; break;
          case 'SUB': value = x - y; break;
          case 'MUL': value = x * y; break;
          case 'DIV': value = y === 0n ? null : x / y; break;
          case 'AND': value = x & y; break;
          case 'OR': value = x | y; break;
          default: value = x ^ y;
        }
        if (value !== null && (value < MIN || value > MAX)) value = null;
      }
      return { rpn: `${a.rpn} ${b.rpn} ${op}`, value };
    };
    let errors = 0;
    for (let i = 0; i < RANDOM; i++) {
      const e = expr(1 + int(5));
      const cmp = pick(['EQ', 'LE', 'GE']);
      const filter = `${e.rpn} ${e.value ?? 0n} ${cmp}`;
      const r = compileFilter(filter);
      assert.equal(r.ok, true, `${filter}: ${r.ok ? '' : r.error.message}`);
      if (!r.ok) continue;
      const got = r.filter.evaluateDetailed(READ_ERROR);
      if (e.value === null) errors++;
      assert.equal(got.result, e.value === null ? 'ERROR' : 'MATCH', `${filter} ${got.error ?? ''}`);
    }
    assert.ok(errors > 0 && errors < RANDOM);
  });
});
