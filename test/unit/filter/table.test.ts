// The filter language as a table: each filter string with its compile result
// (ok, or the position and token of the error) and, when it compiles, its
// result on three realistic storage events. The elos hazards of docs/filter-language.md ("Differences from elos")
// are rows here too. test/fuzz/filter.fuzz.test.ts mutates these rows.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CATALOG, EVENT_TYPES, messageCodeOf } from '../../../src/events/catalog.ts';
import { classificationOf, toElos } from '../../../src/events/elos.ts';
import { StorageEvent } from '../../../src/events/schema.ts';
import { MAX_FILTER_LENGTH } from '../../../src/filter/tokenize.ts';
import { compileFilter } from '../../../src/filter/compile.ts';
import type { FilterResult } from '../../../src/filter/types.ts';
import { classificationBits, messageCode } from '../../../src/filter/evaluate.ts';

/** A block-layer read error on a SCSI disk, straight from /dev/kmsg (messageCode 6001, KERNEL|STORAGE|HARDWARE). */
export const READ_ERROR = StorageEvent.parse({
  hostname: 'node-7.example.com',
  severity: 'error',
  system: 'block',
  timestamp: 1763812345,
  event_id: '0b9f0f3e-7d0a-4d8e-9a57-1f0b3c2a9e11',
  event_type: 'BLK_IO_ERROR',
  dev_wwid: 'naa.5000c500a1b2c3d4',
  dev_name: 'sdb',
  msg: 'I/O error on sdb (READ, sector 2048)',
  extentions: {
    sector: '2048',
    op: 'READ',
    kernel_dev: 'sdb',
    kernel_level: '3',
    kmsg_seq: '48213',
    timestamp_us: '1763812345123456',
    raw_msg: 'I/O error, dev sdb, sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2',
    plugin: 'block',
    source: '/dev/kmsg',
  },
});

/** An ext4 mount, info (messageCode 7500, KERNEL|STORAGE). */
export const MOUNTED = StorageEvent.parse({
  hostname: 'node-7.example.com',
  severity: 'info',
  system: 'fs',
  timestamp: 1763812400,
  event_id: 'c2e1a7d4-5b3f-4e8a-9c6d-2f1e0b9a8c7d',
  event_type: 'FS_MOUNTED',
  dev_wwid: 'uuid.6f1c7e2a-0b9d-4c3e-8a5f-1d2e3c4b5a69',
  dev_name: 'sdc1',
  msg: 'ext4 filesystem on sdc1 mounted (ordered data mode)',
  extentions: {
    kernel_dev: 'sdc1',
    kernel_level: '6',
    kmsg_seq: '48220',
    timestamp_us: '1763812400000001',
    raw_msg: 'EXT4-fs (sdc1): mounted filesystem 6f1c7e2a-0b9d-4c3e-8a5f-1d2e3c4b5a69 r/w with ordered data mode. Quota mode: none.',
    plugin: 'fs',
    source: '/dev/kmsg',
    fs: 'ext4',
  },
});

/**
 * An md member failure replayed from a kernel log file on another node:
 * logged at level 2 (crit → elos FATAL), no kmsg sequence (no KERNEL bit),
 * no microseconds (date from `timestamp`).
 */
export const MD_FAILURE = StorageEvent.parse({
  hostname: 'node-3.example.com',
  severity: 'error',
  system: 'mdraid',
  timestamp: 1763812500,
  event_id: 'e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170',
  event_type: 'MD_DISK_FAILURE',
  dev_wwid: 'md.uuid.3b2a1c0d:9e8f7a6b:5c4d3e2f:1a0b9c8d',
  dev_name: 'md0',
  msg: 'md0: member sdd1 failed, array continues on 1 device',
  extentions: {
    kernel_dev: 'md0',
    member: 'sdd1',
    kernel_level: '2',
    raw_msg: 'md/raid1:md0: Disk failure on sdd1, disabling device.\nmd/raid1:md0: Operation continuing on 1 devices.',
    plugin: 'mdraid',
    source: '/var/log/kern.log',
  },
});

export const EVENTS: readonly StorageEvent[] = [READ_ERROR, MOUNTED, MD_FAILURE];

const M = 'MATCH';
const N = 'NO_MATCH';
const E = 'ERROR';
type Results = readonly [FilterResult, FilterResult, FilterResult];

export interface Row {
  filter: string;
  /** the error's position and token, or null when the filter compiles */
  error: { position: number; token: string } | null;
  /** on READ_ERROR, MOUNTED, MD_FAILURE */
  results: Results | null;
}

const ok = (filter: string, ...results: Results): Row => ({ filter, error: null, results });
const bad = (filter: string, position: number, token: string): Row => ({ filter, error: { position, token }, results: null });

const PUSHES_40 = Array.from({ length: 40 }, () => '1').join(' ');
const DEPTH_32 = `${Array.from({ length: 32 }, () => '1').join(' ')} ${Array.from({ length: 31 }, () => 'ADD').join(' ')} 32 EQ`;
const TOKENS_515 = `1 1 EQ ${Array.from({ length: 128 }, () => '1 1 EQ AND').join(' ')}`;
const TOKEN_513_AT = TOKENS_515.split(' ').slice(0, 512).join(' ').length + 1;
const TOO_LONG = `1 1 EQ ${'1 1 EQ AND '.repeat(400)}`;
const R200 = 'x'.repeat(200);
const THREE_REGEXES = `.e.msg r'${R200}' REGEX .e.msg r'${R200}' REGEX AND .e.msg r'${R200}' REGEX AND`;
const LONG_KEY = 'k'.repeat(65);

export const TABLE: readonly Row[] = [
  // the seed's strings, unchanged
  ok('.event.messageCode 1000 GT', M, M, M),
  ok('.event.severity 1 GT', M, M, N),
  ok('.e.messageCode 42 EQ', N, N, N),
  ok('1 1 EQ', M, M, M),

  // every path and alias: elos members
  ok('.event.date.sec 1763812345 EQ', M, N, N),
  ok('.event.date.tv_sec 1763812400 EQ', N, M, N),
  ok('.ev.date.sec 1763812500 EQ', N, N, M),
  ok('.event.date.nsec 123456000 EQ', M, N, N),
  ok('.event.date.tv_nsec 1000 EQ', N, M, N),
  ok('.e.date.nsec 0 EQ', N, N, M),
  ok(".event.source.appName 'peripety/block' STRCMP", M, N, N),
  ok(".e.source.appName r'^peripety/(fs|mdraid)$' REGEX", N, M, M),
  ok(".event.source.fileName '/dev/kmsg' STRCMP", M, M, N),
  ok(".e.source.fileName r'kern\\.log$' REGEX", N, N, M),
  ok('.event.source.pid 0 GT', M, M, M),
  ok('.e.source.pid 0 LE', N, N, N),
  ok('.event.severity 2 EQ', M, N, N),
  ok('.event.severity 3 LE', M, N, M),
  ok('.e.severity 1 EQ', N, N, M),
  ok(".event.hardwareid 'node-7.example.com' STRCMP", M, M, N),
  ok('.e.classification 145 EQ', M, N, N),
  ok('.e.classification 16 AND 16 EQ', M, M, M),
  ok('.e.classification 128 AND 128 EQ', M, N, M),
  ok('.e.classification 1 AND 0 NE', M, M, N),
  ok('.e.classification 128 AND', M, N, M),
  ok('.e.classification 1 AND', M, M, N),
  ok('.e.classification 1 AND 0 EQ', N, N, M),
  ok('.event.messageCode 6001 EQ', M, N, N),
  ok('.e.messageCode 7500 EQ', N, M, N),
  ok('.e.messageCode 6400 EQ', N, N, M),
  ok(".event.payload r'sdb' REGEX", M, N, N),
  ok('.e.payload .e.msg STRCMP', M, M, M),
  // every path: storage-event members
  ok(".event.hostname 'node-3.example.com' STRCMP", N, N, M),
  ok(".event.system 'block' STRCMP", M, N, N),
  ok(".ev.system 'fs' STRCMP", N, M, N),
  ok(".event.event_type 'MD_DISK_FAILURE' STRCMP", N, N, M),
  ok(".e.event_id '0b9f0f3e-7d0a-4d8e-9a57-1f0b3c2a9e11' STRCMP", M, N, N),
  ok(".e.dev_wwid r'^naa\\.' REGEX", M, N, N),
  ok(".e.dev_name 'md0' STRCMP", N, N, M),
  ok(".event.msg r'mounted' REGEX", N, M, N),
  ok('.event.timestamp 1763812400 GE', N, M, M),
  ok('.e.timestamp 1763812400 LT', M, N, N),
  ok(".e.extentions.op 'READ' STRCMP", M, N, N),
  ok(".e.extentions.kmsg_seq '' STRCMP", N, N, M),
  ok(".e.extentions.kmsg_seq '48213' STRCMP", M, N, N),
  ok(".e.extentions.no_such_key '' STRCMP", M, M, M),
  ok(".e.extentions.kernel_level '2' STRCMP", N, N, M),
  ok(".e.extentions.sector r'^[0-9]+$' REGEX", M, N, N),
  ok(".e.extentions.constructor '' STRCMP", M, M, M),
  ok(".e.extentions.__proto__ '' STRCMP", M, M, M),
  ok(".e.extentions.kernel-dev '' STRCMP", M, M, M),

  // comparisons
  ok('.e.severity 2 NE', N, M, M),
  ok('.e.severity 3 LT', M, N, M),
  ok('.e.severity 4 GE', N, M, N),
  ok('.e.severity 2 GT', N, M, N),
  ok('.e.severity 2 LE', M, N, M),
  ok('2 .e.severity GT', N, N, M),
  ok('.e.messageCode .e.messageCode EQ', M, M, M),
  // logic on bools
  ok('.e.severity 2 EQ .e.severity 1 EQ OR', M, N, M),
  ok(".e.severity 2 EQ .e.system 'fs' STRCMP XOR", M, M, N),
  ok(".e.system 'fs' STRCMP NOT", M, N, M),
  ok('.e.severity 1 GT NOT', N, N, M),
  ok('1 1 EQ 0 1 EQ EQ', N, N, N),
  ok('1 1 EQ 2 2 EQ EQ', M, M, M),
  ok('.e.severity 2 EQ .e.classification 128 AND 128 EQ NE', N, N, M),
  ok('1 1 EQ 1 1 EQ AND 1 1 EQ AND', M, M, M),
  // bitwise and arithmetic on integers
  ok('12 10 XOR 6 EQ', M, M, M),
  ok('12 10 OR 14 EQ', M, M, M),
  ok('12 10 AND 8 EQ', M, M, M),
  ok('-1 255 AND 255 EQ', M, M, M),
  ok('.e.classification -1 AND .e.classification EQ', M, M, M),
  ok('.e.classification -129 AND 17 EQ', M, M, N),
  ok('.e.classification 9223372036854775807 AND 145 EQ', M, N, N),
  ok('.e.messageCode 100 DIV 60 EQ', M, N, N),
  ok('.e.messageCode 1 ADD 6002 EQ', M, N, N),
  ok('.e.messageCode 1 SUB 7499 EQ', N, M, N),
  ok('.e.severity 1000 MUL 2000 EQ', M, N, N),
  ok('-7 2 DIV -3 EQ', M, M, M),
  ok('7 -2 DIV -3 EQ', M, M, M),
  ok('-7 -2 DIV 3 EQ', M, M, M),
  ok('3037000499 3037000499 MUL 9223372030926249001 EQ', M, M, M),
  ok('9223372036854775807 9223372036854775806 SUB 1 EQ', M, M, M),
  ok('-9223372036854775808 0 LT', M, M, M),
  ok('9223372036854775807 9223372036854775807 EQ', M, M, M),
  ok('.e.timestamp 1000000 MUL 1763812345000000 EQ', M, N, N),
  ok('.e.date.sec 1000000 MUL .e.date.nsec 1000 DIV ADD 1763812400000001 EQ', N, M, N),
  ok(DEPTH_32, M, M, M),
  // strings
  ok("'abc' 'abc' STRCMP", M, M, M),
  ok("'abc' 'ABC' STRCMP", N, N, N),
  ok('"it\'s" "it\'s" STRCMP', M, M, M),
  ok("'a b  c' 'a b  c' STRCMP", M, M, M),
  ok("'sdb' .e.dev_name STRCMP", M, N, N),
  // regexes
  ok(".e.msg r'READ|WRITE' REGEX", M, N, N),
  ok('.e.msg R"sector [0-9]+" REGEX', M, N, N),
  ok(".e.msg r'' REGEX", M, M, M),
  ok("'' r'^$' REGEX", M, M, M),
  ok(".e.dev_name r'^sd[a-z]+$' REGEX", M, N, N),
  ok(".e.extentions.raw_msg r'md/raid1:md0' REGEX", N, N, M),
  ok(".e.msg r'(a+)+$' REGEX", N, N, N),
  ok(".e.msg r'\\bsdb\\b' REGEX", M, N, N),
  ok(".e.msg r'(?<=on )sd' REGEX", M, M, N),
  // whitespace
  ok('1 1 EQ\t\n 1 1 EQ AND', M, M, M),
  ok('  1   1 EQ  ', M, M, M),
  ok('+5 5 EQ', M, M, M),
  ok('-0 0 EQ', M, M, M),
  ok('007 7 EQ', M, M, M),
  // storage-specific filters from the docs
  ok(".e.dev_name 'sdb' STRCMP .e.messageCode 6001 EQ AND", M, N, N),
  ok('.e.classification 128 AND 0 NE .e.severity 2 LE AND', M, N, M),
  ok(".e.system 'mdraid' STRCMP .e.system 'dm' STRCMP OR .e.system 'multipath' STRCMP OR", N, N, M),
  ok('.event.messageCode 6000 GE .event.messageCode 7000 LT AND', M, N, M),

  // runtime errors: ERROR for the event, the process lives
  ok('1 0 DIV 0 EQ', E, E, E),
  ok('1 0 DIV', E, E, E),
  ok('10 .e.severity 2 SUB DIV 5 EQ', E, M, N),
  ok('9223372036854775807 1 ADD 0 GT', E, E, E),
  ok('-9223372036854775808 1 SUB 0 LT', E, E, E),
  ok('-9223372036854775808 -1 DIV 0 GT', E, E, E),
  ok('-9223372036854775808 -1 MUL 0 GT', E, E, E),
  ok('4294967296 4294967296 MUL 0 GT', E, E, E),
  ok('.e.timestamp 1000000000000 MUL 0 GT', E, E, E),
  // AND/OR decide left to right: a skipped operand is not evaluated
  ok('1 0 DIV 0 EQ 1 1 EQ OR', E, E, E),
  ok('1 1 EQ 1 0 DIV 0 EQ OR', M, M, M),
  ok('0 1 EQ 1 0 DIV 0 EQ AND', N, N, N),
  ok(".e.system 'fs' STRCMP 10 .e.severity 4 SUB DIV 0 EQ AND", N, E, N),

  // compile errors: the elos hazards
  bad(PUSHES_40, 64, '1'),
  bad('0 1 EQ 1 1 EQ 1 1 EQ AND', 4, 'EQ'),
  bad('1', 0, '1'),
  bad('.e.messageCode', 0, '.e.messageCode'),
  bad("'abc'", 0, "'abc'"),
  bad("r'abc'", 0, "r'abc'"),
  bad('1 2', 0, '1'),
  bad('1 1 EQ 2', 4, 'EQ'),
  bad('.e.msg 1 EQ', 9, 'EQ'),
  bad("'a' 'b' EQ", 8, 'EQ'),
  bad(".e.msg r'(' REGEX", 7, "r'('"),
  bad(".e.msg r'(a)\\1' REGEX", 7, "r'(a)\\1'"),
  bad(".e.msg r'(?=a)' REGEX", 7, "r'(?=a)'"),
  bad(".e.msg r'[[:digit:]]+' REGEX", 7, "r'[[:digit:]]+'"),
  bad(".e.msg r'\\<sdb\\>' REGEX", 7, "r'\\<sdb\\>'"),
  bad(`.e.msg r'${'a'.repeat(257)}' REGEX`, 7, `r'${'a'.repeat(98)}…`),
  bad(THREE_REGEXES, THREE_REGEXES.lastIndexOf("r'"), `r'${R200.slice(0, 98)}…`),
  bad('LDV', 0, 'LDV'),
  bad('.e.severity 1 LDP', 14, 'LDP'),
  bad('1 1 eq', 4, 'eq'),
  bad('1 1 FOO', 4, 'FOO'),
  bad('0x10 16 EQ', 0, '0x10'),
  bad('.e.severity 1.5 GT', 12, '1.5'),
  bad('1e3 1000 EQ', 0, '1e3'),
  bad('.5 1 EQ', 0, '.5'),
  bad('9223372036854775808 0 GT', 0, '9223372036854775808'),
  bad('-9223372036854775809 0 LT', 0, '-9223372036854775809'),
  bad('99999999999999999999999999 1 EQ', 0, '99999999999999999999999999'),
  bad('- 1 EQ', 0, '-'),
  bad('12abc 1 EQ', 0, '12abc'),
  bad(".e.msg 'abc STRCMP", 7, "'abc STRCMP"),
  bad('.e.msg "abc\' STRCMP', 7, '"abc\' STRCMP'),
  bad(".e.msg r'abc REGEX", 7, "r'abc REGEX"),
  bad(".e.msg 'a'b STRCMP", 7, "'a'b"),
  bad("1 1 EQ 'abc", 7, "'abc"),
  bad(".e.msg 1 EQ 'abc", 9, 'EQ'),
  bad('.event.source 1 EQ', 0, '.event.source'),
  bad(".event.source 'x' STRCMP", 0, '.event.source'),
  bad('.event.date 0 GT', 0, '.event.date'),
  bad('.e.foo 1 EQ', 0, '.e.foo'),
  bad('.e.MessageCode 1 EQ', 0, '.e.MessageCode'),
  bad(".e.extensions.op 'READ' STRCMP", 0, '.e.extensions.op'),
  bad(".e.extentions 'x' STRCMP", 0, '.e.extentions'),
  bad(".e.extentions.a.b 'x' STRCMP", 0, '.e.extentions.a.b'),
  bad(`.e.extentions.${LONG_KEY} '' STRCMP`, 0, `.e.extentions.${LONG_KEY}`),
  bad('.event 1 EQ', 0, '.event'),
  bad('.x.severity 1 EQ', 0, '.x.severity'),
  bad('.1 1 EQ', 0, '.1'),
  bad('.e.severity NOT', 12, 'NOT'),
  bad('NOT', 0, 'NOT'),
  bad('1 EQ', 2, 'EQ'),
  bad('1 1 EQ 1 AND', 9, 'AND'),
  bad("'a' 1 ADD", 6, 'ADD'),
  bad("'a' 'a' AND", 8, 'AND'),
  bad(".e.msg 'x' REGEX", 11, 'REGEX'),
  bad("r'x' .e.msg REGEX", 12, 'REGEX'),
  bad(".e.msg r'x' STRCMP", 12, 'STRCMP'),
  bad('1 1 EQ 1 1 EQ LT', 14, 'LT'),
  bad(".e.severity '2' STRCMP", 16, 'STRCMP'),
  bad('1 1 EQ)', 4, 'EQ)'),
  bad('.e.severity 1 GT\u0000', 14, 'GT\u0000'),
  bad('', 0, ''),
  bad('   ', 3, ''),
  bad(TOO_LONG, MAX_FILTER_LENGTH, ''),
  bad(TOKENS_515, TOKEN_513_AT, '1'),
];

function check(row: Row): void {
  const r = compileFilter(row.filter);
  const label = JSON.stringify(row.filter.length > 80 ? `${row.filter.slice(0, 80)}…` : row.filter);
  if (row.error !== null) {
    assert.equal(r.ok, false, `${label} should not compile`);
    if (r.ok) return;
    assert.deepEqual({ position: r.error.position, token: r.error.token }, row.error, `${label}: ${r.error.message}`);
    assert.ok(r.error.message.length > 0);
    return;
  }
  assert.equal(r.ok, true, `${label} should compile: ${r.ok ? '' : JSON.stringify(r.error)}`);
  if (!r.ok || row.results === null) return;
  const got = EVENTS.map((ev) => r.filter.evaluate(ev));
  assert.deepEqual(got, [...row.results], label);
  EVENTS.forEach((ev, i) => {
    const d = r.filter.evaluateDetailed(ev);
    assert.equal(d.result, got[i]);
    assert.equal(d.error !== undefined, d.result === 'ERROR', `${label}: an error reason exactly when ERROR`);
  });
}

describe('filter language table', () => {
  it('has at least 120 rows', () => {
    assert.ok(TABLE.length >= 120, `${TABLE.length} rows`);
  });
  for (const row of TABLE) {
    const name = row.filter.length > 70 ? `${row.filter.slice(0, 70)}… (${row.filter.length} chars)` : row.filter;
    it(JSON.stringify(name), () => check(row));
  }
});

describe('filter compile errors', () => {
  it('carry the filter (cut), a position within it, the token and a message', () => {
    const r = compileFilter(TOO_LONG);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.ok(r.error.filter.length <= 513);
    assert.match(r.error.message, /at most 4096/);
  });
  it('name the reason', () => {
    const cases: Array<[string, RegExp]> = [
      [PUSHES_40, /more than 32 values/],
      ['0 1 EQ 1 1 EQ 1 1 EQ AND', /2 values remain/],
      ['1', /must end with an operator/],
      ['.e.msg 1 EQ', /use STRCMP/],
      [".e.msg r'(' REGEX", /invalid regex/],
      [".e.msg r'(a)\\1' REGEX", /linear time/],
      ['LDV', /internal elos opcode/],
      ['0x10 1 EQ', /hexadecimal/],
      ['1.5 1 EQ', /only integers/],
      ['9223372036854775808 1 EQ', /64-bit/],
      [".e.msg 'abc STRCMP", /unterminated string/],
      ['.event.source 1 EQ', /structure/],
      ['.e.MessageCode 1 EQ', /case-sensitive \(messageCode\)/],
      ['.e.severity NOT', /0 EQ/],
      ['1 1 eq', /upper case \(EQ\)/],
    ];
    for (const [filter, message] of cases) {
      const r = compileFilter(filter);
      assert.equal(r.ok, false, filter);
      if (!r.ok) assert.match(r.error.message, message, filter);
    }
  });
  it('are values for input that is not a string', () => {
    const r = compileFilter(42 as unknown as string);
    assert.equal(r.ok, false);
  });
});

describe('regex safety', () => {
  const ATTACK = StorageEvent.parse({ ...READ_ERROR, msg: `${'a'.repeat(4000)}b` });
  const attacks: Array<[string, FilterResult]> = [
    ['(a+)+$', N], ['(a|aa)+$', N], ['^(a|a)*$', N], ['(a*)*c', N], ['^(\\w+\\s?)+!$', N], ['^(([a-z])+.)+[A-Z]([a-z])+$', N], ['(a+)+b$', M],
  ];
  for (const [pattern, expected] of attacks) {
    it(`r'${pattern}' on 4,000 a's and a b returns promptly`, () => {
      const r = compileFilter(`.e.msg r'${pattern}' REGEX`);
      assert.equal(r.ok, true);
      if (!r.ok) return;
      const t0 = performance.now();
      const result = r.filter.evaluate(ATTACK);
      const ms = performance.now() - t0;
      assert.equal(result, expected);
      assert.ok(ms < 1000, `${ms} ms`);
    });
  }
  it('runs on the linear-time engine, enabled at run time', () => {
    assert.equal(compileFilter(".e.msg r'x' REGEX").ok, true);
    const flags = 'l';
    assert.doesNotThrow(() => new RegExp('(a+)+$', flags));
    assert.throws(() => new RegExp('(a)\\1', flags), /linear time/);
  });
  it('is an ERROR for a subject longer than 4096 characters', () => {
    const r = compileFilter(".e.msg r'b$' REGEX");
    assert.equal(r.ok, true);
    if (!r.ok) return;
    const d = r.filter.evaluateDetailed(StorageEvent.parse({ ...READ_ERROR, msg: `${'a'.repeat(4096)}b` }));
    assert.equal(d.result, 'ERROR');
    assert.match(d.error ?? '', /longer than 4096/);
    assert.equal(r.filter.evaluate(StorageEvent.parse({ ...READ_ERROR, msg: `${'a'.repeat(4095)}b` })), 'MATCH');
  });
});

describe('runtime errors', () => {
  it('give the reason and the position', () => {
    const r = compileFilter('.e.severity 1 0 DIV GT');
    assert.equal(r.ok, true);
    if (!r.ok) return;
    assert.deepEqual(r.filter.evaluateDetailed(READ_ERROR), { result: 'ERROR', error: 'division by zero (DIV at position 16)' });
    // the state of one evaluation does not leak into the next
    const s = compileFilter('10 .e.severity 2 SUB DIV 5 EQ');
    assert.equal(s.ok, true);
    if (!s.ok) return;
    assert.equal(s.filter.evaluate(READ_ERROR), 'ERROR');
    assert.deepEqual(s.filter.evaluateDetailed(MOUNTED), { result: 'MATCH' });
  });
  it('never throw, even on what is not a StorageEvent', () => {
    const r = compileFilter(".e.hostname 'x' STRCMP .e.messageCode 0 GE .e.extentions.op '' STRCMP AND OR");
    assert.equal(r.ok, true);
    if (!r.ok) return;
    for (const junk of [{}, { extentions: null }, { hostname: 1, extentions: {} }, null, 'event']) {
      const d = r.filter.evaluateDetailed(junk as unknown as StorageEvent);
      assert.equal(d.result, 'ERROR', JSON.stringify(junk));
      assert.ok(d.error);
    }
    const t = compileFilter('.e.timestamp 0 GT');
    assert.equal(t.ok, true);
    if (t.ok) assert.equal(t.filter.evaluate({ ...READ_ERROR, timestamp: 1.5 }), 'ERROR');
  });
});

describe('the elos view computed by filters agrees with toElos', () => {
  for (const ev of EVENTS) {
    it(`${ev.event_type}`, () => {
      const elos = toElos(ev);
      const checks = [
        `.e.date.sec ${elos.date.sec} EQ`,
        `.e.date.nsec ${elos.date.nsec} EQ`,
        `.e.source.pid ${elos.source.pid} EQ`,
        `.e.severity ${elos.severity} EQ`,
        `.e.classification ${elos.classification} EQ`,
        `.e.messageCode ${elos.messageCode} EQ`,
        `.e.source.appName '${elos.source.appName}' STRCMP`,
        `.e.source.fileName '${elos.source.fileName}' STRCMP`,
        `.e.hardwareid '${elos.hardwareid}' STRCMP`,
        `.e.payload '${elos.payload}' STRCMP`,
      ];
      for (const f of checks) {
        const r = compileFilter(f);
        assert.equal(r.ok, true, f);
        if (r.ok) assert.equal(r.filter.evaluate(ev), 'MATCH', f);
      }
    });
  }
  it('classification and messageCode for every catalog type, op and source', () => {
    const ops = [undefined, '', 'READ', 'read', 'Read', 'READA', 'WRITE', 'write', 'WRITE_SAME', 'wr', 'R', 'FLUSH', 'DISCARD',
      'ıead', 'wrıte', 'ſ', 'ﬀ', 'Ｒead', 'rEAD\u0130'];
    for (const type of [...EVENT_TYPES, '', 'NOT_A_TYPE', 'constructor', 'toString']) {
      for (const op of ops) {
        const exts: Array<Record<string, string>> = [{}, { kmsg_seq: '1' }, { source: '/dev/kmsg' }, { source: 'netlink:uevent' }];
        for (const ext of exts) {
          const extentions: Record<string, string> = { ...ext };
          if (op !== undefined) extentions.op = op;
          const ev = { ...READ_ERROR, event_type: type, extentions };
          assert.equal(messageCode(ev), messageCodeOf(type, op), `${type} ${op}`);
          assert.equal(BigInt(classificationBits(ev)), classificationOf(ev), `${type} ${JSON.stringify(ext)}`);
        }
      }
    }
    assert.ok(EVENT_TYPES.every((t) => CATALOG[t].messageCode < 2 ** 31));
  });
});
