// The compiler of the filter language (docs/filter-language.md): RPN tokens in, a
// type-checked tree of closures out. Everything elos finds out at run time
// (stack overflow, leftovers, type errors, bad regexes) is a compile error
// here, reported as a value with the position and the token.
//
// Types: int, bool, string, regex. Every path has a type, so the whole
// program is checked before it runs; the evaluator never sees a type error.
//
// Integers are 64-bit signed with overflow → ERROR, as the contract says,
// but most filters compare small members (messageCode, severity) with small
// literals. The compiler therefore tracks an interval for every integer
// value (paths have known ranges, literals are exact) and emits plain
// JavaScript number arithmetic wherever the interval proves the result exact
// (within ±(2^53-1), or within int32 for AND/OR/XOR), and BigInt arithmetic
// with an overflow check only where it does not. The common filters never
// allocate.
//
// AND and OR on bools evaluate their second operand only when the first does
// not decide (left to right, as in C): a REGEX behind a failed STRCMP costs
// nothing, and an error in the skipped operand is not reported.
//
// Regexes run on V8's linear-time engine (the `l` flag), so no pattern can
// backtrack catastrophically; see linearEngine() and docs/filter-language.md.
import { setFlagsFromString } from 'node:v8';
import type { StorageEvent } from '../events/schema.ts';
import {
  EXTENTION_KEY, extentionMember, fail, makeCompiledFilter, MEMBERS,
  type BigFn, type BoolFn, type EqField, type EvalState, type Member, type NumFn, type StrFn,
} from './evaluate.ts';
import { MAX_REGEX_SUBJECT, regexCost } from './cost.ts';
import { tokenize, type Token } from './tokenize.ts';
import type { CompiledFilter, CompileResult, FilterCompileError, FilterHints } from './types.ts';

/** elos' stack size: a filter that needs more is refused instead of crashing elos */
const MAX_STACK = 32;
const MAX_REGEX_LENGTH = 256;
/** the patterns of one filter together: a program's regex work per event stays bounded */
const MAX_REGEX_TOTAL = 512;

const MAX_ERROR_FILTER = 512;
const MAX_ERROR_TOKEN = 100;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);
const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;

/** What a bool being true implies, for FilterHints. */
interface Facts {
  equals: Partial<Record<EqField, string>>;
  tsMin: bigint | null;
  tsMax: bigint | null;
}

/**
 * An integer on the compile-time stack. Exactly one of num/big is set: num
 * when [lo, hi] lies within the safe-integer range (the value is computed
 * exactly as a double), big otherwise.
 */
interface IntEntry {
  ty: 'int';
  tok: Token;
  lo: bigint;
  hi: bigint;
  num: NumFn | null;
  big: BigFn | null;
  /** the value of a literal */
  lit: bigint | null;
  /** the canonical member name of a path */
  member: string | null;
}
interface BoolEntry { ty: 'bool'; tok: Token; fn: BoolFn; facts: Facts | null }
interface StringEntry { ty: 'string'; tok: Token; fn: StrFn; lit: string | null; hintField: EqField | null }
interface RegexEntry {
  ty: 'regex';
  tok: Token;
  re: RegExp;
  /** the pattern when it has no special character: a substring search gives the same answer, faster */
  literal: string | null;
}
type Entry = IntEntry | BoolEntry | StringEntry | RegexEntry;

const COMPARE = ['EQ', 'NE', 'LT', 'LE', 'GT', 'GE'] as const;
type CompareOp = (typeof COMPARE)[number];
const ARITH = ['ADD', 'SUB', 'MUL', 'DIV'] as const;
type ArithOp = (typeof ARITH)[number];
const LOGIC = ['AND', 'OR', 'XOR'] as const;
type LogicOp = (typeof LOGIC)[number];
const OPERATORS: readonly string[] = [...COMPARE, ...LOGIC, 'NOT', ...ARITH, 'STRCMP', 'REGEX'];

function isCompare(op: string): op is CompareOp { return (COMPARE as readonly string[]).includes(op); }
function isArith(op: string): op is ArithOp { return (ARITH as readonly string[]).includes(op); }
function isLogic(op: string): op is LogicOp { return (LOGIC as readonly string[]).includes(op); }

function cut(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function describe(e: Entry): string {
  switch (e.ty) {
    case 'int': return 'an integer';
    case 'bool': return 'a bool';
    case 'string': return 'a string';
    case 'regex': return 'a regex';
  }
}

// ---------------------------------------------------------------- regexes

let linear: boolean | null = null;
// A variable, not a literal: the flag is only valid once the engine is on.
const LINEAR_FLAG = 'l';

/**
 * V8's linear-time regexp engine (automaton simulation, no backtracking)
 * accepts the `l` flag once --enable-experimental-regexp-engine is set. The
 * flag only makes the `l` flag available; regexes without it are unaffected.
 * Setting it at run time works on Node 24 (checked by the unit tests). If a
 * future Node drops it, every regex is a compile error instead of a hazard.
 */
function linearEngine(): boolean {
  if (linear === null) {
    try {
      new RegExp('', LINEAR_FLAG);
      linear = true;
    } catch {
      try {
        setFlagsFromString('--enable-experimental-regexp-engine');
        new RegExp('', LINEAR_FLAG);
        linear = true;
      } catch {
        linear = false;
      }
    }
  }
  return linear;
}

/** POSIX ERE syntax elos accepts that JavaScript would silently read as something else. */
function posixHazard(p: string): string | null {
  let inClass = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      const n = p[i + 1];
      if (!inClass && (n === '<' || n === '>')) return 'the GNU word boundaries \\< and \\> are not supported: use \\b';
      i++;
    } else if (inClass) {
      if (c === '[' && p[i + 1] === ':' && /^\[:[a-z]+:\]/.test(p.slice(i, i + 12))) {
        return 'POSIX character classes such as [:digit:] are not supported: use \\d, \\s, \\w or a range such as [0-9]';
      }
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
      if (p[i + 1] === '^') i++;
      if (p[i + 1] === ']') i++; // a leading ] is a literal, in POSIX and here
    }
  }
  return null;
}

function compileRegex(pattern: string): RegExp | string {
  if (pattern.length > MAX_REGEX_LENGTH) return `the regex is ${pattern.length} characters long; at most ${MAX_REGEX_LENGTH} are allowed`;
  const hazard = posixHazard(pattern);
  if (hazard !== null) return hazard;
  if (!linearEngine()) return 'regexes are unavailable: this Node.js has no linear-time regexp engine';
  try {
    return new RegExp(pattern, LINEAR_FLAG);
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    if (text.includes('linear time')) {
      return 'the regex cannot run in linear time: backreferences, lookahead, inline modifiers and large nested counted repetitions are not supported';
    }
    return `invalid regex: ${cut(text.slice(text.lastIndexOf(': ') + 2), 120)}`;
  }
}

// ---------------------------------------------------------------- paths

function resolvePath(text: string): Member | string {
  const m = /^\.(?:event|ev|e)\.(.+)$/s.exec(text);
  if (m === null) {
    if (/^\.(?:event|ev|e)\.?$/.test(text)) return `a path names a member: ${text.replace(/\.?$/, '')}.<member>`;
    if (/^\.[0-9]+$/.test(text)) return 'positional parameters (.1, .2, …) are not supported';
    return `unknown path '${cut(text, 64)}': paths start with .event., .ev. or .e.`;
  }
  const member = m[1] ?? '';
  const found = MEMBERS.get(member);
  if (found !== undefined) return found;
  if (member === 'source') return '.event.source is a structure: use source.appName, source.fileName or source.pid';
  if (member === 'date') return '.event.date is a structure: use date.sec or date.nsec';
  if (member.startsWith('extentions.')) {
    const key = member.slice('extentions.'.length);
    if (EXTENTION_KEY.test(key)) return extentionMember(key);
    return `extentions key '${cut(key, 64)}' is not valid: 1 to 64 letters, digits, '_' or '-'`;
  }
  if (member === 'extentions') return 'extentions needs a key: .event.extentions.<key>';
  if (member.startsWith('extensions')) return `unknown member '${cut(member, 64)}': the field is spelled 'extentions'`;
  const lower = member.toLowerCase();
  for (const name of MEMBERS.keys()) {
    if (name.toLowerCase() === lower) return `unknown member '${cut(member, 64)}': members are case-sensitive (${name})`;
  }
  return `unknown member '${cut(member, 64)}': known members are ${[...MEMBERS.keys()].join(', ')}, extentions.<key>`;
}

// ---------------------------------------------------------------- integers

function intEntry(tok: Token, lo: bigint, hi: bigint, fn: { num: NumFn } | { big: BigFn }): IntEntry {
  if ('num' in fn) return { ty: 'int', tok, lo, hi, num: fn.num, big: null, lit: null, member: null };
  if (lo >= SAFE_MIN && hi <= SAFE_MAX) {
    const f = fn.big;
    return { ty: 'int', tok, lo, hi, num: (ev) => Number(f(ev)), big: null, lit: null, member: null };
  }
  return { ty: 'int', tok, lo, hi, num: null, big: fn.big, lit: null, member: null };
}

function literalInt(tok: Token, v: bigint): IntEntry {
  const e = v >= SAFE_MIN && v <= SAFE_MAX
    ? intEntry(tok, v, v, { num: ((n) => () => n)(Number(v)) })
    : intEntry(tok, v, v, { big: () => v });
  e.lit = v;
  return e;
}

function toBig(e: IntEntry): BigFn {
  if (e.big !== null) return e.big;
  const lit = e.lit;
  if (lit !== null) return () => lit;
  const f = e.num;
  if (f === null) throw new Error('an integer entry without a reader'); // unreachable: intEntry sets one
  return (ev) => BigInt(f(ev));
}

const bmin = (...xs: bigint[]): bigint => xs.reduce((a, b) => (b < a ? b : a));
const bmax = (...xs: bigint[]): bigint => xs.reduce((a, b) => (b > a ? b : a));
const babs = (x: bigint): bigint => (x < 0n ? -x : x);
const bitLength = (x: bigint): bigint => BigInt((x < 0n ? -x - 1n : x).toString(2).length);

function arithBounds(op: ArithOp, a: IntEntry, b: IntEntry): [bigint, bigint] {
  switch (op) {
    case 'ADD': return [a.lo + b.lo, a.hi + b.hi];
    case 'SUB': return [a.lo - b.hi, a.hi - b.lo];
    case 'MUL': {
      const p = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi];
      return [bmin(...p), bmax(...p)];
    }
    case 'DIV': {
      // Truncating division never grows the magnitude (except INT64_MIN / -1).
      if (a.lo >= 0n && b.lo >= 0n) return [0n, a.hi];
      const m = bmax(babs(a.lo), babs(a.hi));
      return [-m, m];
    }
  }
}

function arith(op: ArithOp, a: IntEntry, b: IntEntry, tok: Token, st: EvalState): IntEntry {
  const [lo, hi] = arithBounds(op, a, b);
  const zero = `division by zero (DIV at position ${tok.pos})`;
  const fa = a.num;
  const fb = b.num;
  if (fa !== null && fb !== null && lo >= SAFE_MIN && hi <= SAFE_MAX) {
    // Both operands and every possible result are safe integers, so double
    // arithmetic is exact; Math.trunc of a quotient of safe integers is too.
    switch (op) {
      case 'ADD': return intEntry(tok, lo, hi, { num: (ev) => fa(ev) + fb(ev) });
      case 'SUB': return intEntry(tok, lo, hi, { num: (ev) => fa(ev) - fb(ev) });
      case 'MUL': return intEntry(tok, lo, hi, { num: (ev) => fa(ev) * fb(ev) });
      case 'DIV': return intEntry(tok, lo, hi, {
        num: (ev) => {
          const x = fa(ev);
          const d = fb(ev);
          if (d === 0) {
            fail(st, zero);
            return 0;
          }
          return Math.trunc(x / d);
        },
      });
    }
  }
  const ga = toBig(a);
  const gb = toBig(b);
  const overflow = `integer overflow (${op} at position ${tok.pos}): the result is outside the signed 64-bit range`;
  const mayOverflow = lo < INT64_MIN || hi > INT64_MAX;
  const check = (r: bigint): bigint => {
    if (mayOverflow && (r < INT64_MIN || r > INT64_MAX)) {
      fail(st, overflow);
      return 0n;
    }
    return r;
  };
  const clo = bmax(lo, INT64_MIN);
  const chi = bmin(hi, INT64_MAX);
  switch (op) {
    case 'ADD': return intEntry(tok, clo, chi, { big: (ev) => check(ga(ev) + gb(ev)) });
    case 'SUB': return intEntry(tok, clo, chi, { big: (ev) => check(ga(ev) - gb(ev)) });
    case 'MUL': return intEntry(tok, clo, chi, { big: (ev) => check(ga(ev) * gb(ev)) });
    case 'DIV': return intEntry(tok, clo, chi, {
      big: (ev) => {
        const x = ga(ev);
        const d = gb(ev);
        if (d === 0n) {
          fail(st, zero);
          return 0n;
        }
        return check(x / d);
      },
    });
  }
}

function bitwise(op: LogicOp, a: IntEntry, b: IntEntry, tok: Token): IntEntry {
  let lo: bigint;
  let hi: bigint;
  if (a.lo >= 0n && b.lo >= 0n) {
    lo = 0n;
    hi = op === 'AND' ? bmin(a.hi, b.hi) : 2n ** bitLength(bmax(a.hi, b.hi)) - 1n;
  } else if (op === 'AND' && (a.lo >= 0n || b.lo >= 0n)) {
    lo = 0n;
    hi = a.lo >= 0n ? a.hi : b.hi;
  } else {
    // Two's complement: operands within [-2^k, 2^k) give a result within it.
    const k = bmax(bitLength(a.lo), bitLength(a.hi), bitLength(b.lo), bitLength(b.hi));
    lo = -(2n ** k);
    hi = 2n ** k - 1n;
  }
  const fa = a.num;
  const fb = b.num;
  const int32 = (e: IntEntry): boolean => e.lo >= INT32_MIN && e.hi <= INT32_MAX;
  if (fa !== null && fb !== null && int32(a) && int32(b)) {
    // JavaScript's bitwise operators work on int32, which sign-extends to
    // the same 64-bit result.
    switch (op) {
      case 'AND': return intEntry(tok, lo, hi, { num: (ev) => fa(ev) & fb(ev) });
      case 'OR': return intEntry(tok, lo, hi, { num: (ev) => fa(ev) | fb(ev) });
      case 'XOR': return intEntry(tok, lo, hi, { num: (ev) => fa(ev) ^ fb(ev) });
    }
  }
  const ga = toBig(a);
  const gb = toBig(b);
  switch (op) {
    case 'AND': return intEntry(tok, lo, hi, { big: (ev) => ga(ev) & gb(ev) });
    case 'OR': return intEntry(tok, lo, hi, { big: (ev) => ga(ev) | gb(ev) });
    case 'XOR': return intEntry(tok, lo, hi, { big: (ev) => ga(ev) ^ gb(ev) });
  }
}

// Specialized for a literal on either side: the common filters compare a
// member with a constant, and one closure call less is a third of the cost.
function compareNum(op: CompareOp, fa: NumFn, fb: NumFn, a: IntEntry, b: IntEntry): BoolFn {
  if (b.lit !== null) {
    const c = Number(b.lit);
    switch (op) {
      case 'EQ': return (ev) => fa(ev) === c;
      case 'NE': return (ev) => fa(ev) !== c;
      case 'LT': return (ev) => fa(ev) < c;
      case 'LE': return (ev) => fa(ev) <= c;
      case 'GT': return (ev) => fa(ev) > c;
      case 'GE': return (ev) => fa(ev) >= c;
    }
  }
  if (a.lit !== null) {
    const c = Number(a.lit);
    switch (op) {
      case 'EQ': return (ev) => c === fb(ev);
      case 'NE': return (ev) => c !== fb(ev);
      case 'LT': return (ev) => c < fb(ev);
      case 'LE': return (ev) => c <= fb(ev);
      case 'GT': return (ev) => c > fb(ev);
      case 'GE': return (ev) => c >= fb(ev);
    }
  }
  switch (op) {
    case 'EQ': return (ev) => fa(ev) === fb(ev);
    case 'NE': return (ev) => fa(ev) !== fb(ev);
    case 'LT': return (ev) => fa(ev) < fb(ev);
    case 'LE': return (ev) => fa(ev) <= fb(ev);
    case 'GT': return (ev) => fa(ev) > fb(ev);
    case 'GE': return (ev) => fa(ev) >= fb(ev);
  }
}

// The same six closures as compareNum's last switch, kept apart on purpose:
// closures made from one function literal share its type feedback, so one
// copy for numbers and bigints would make every comparison polymorphic.
function compareBig(op: CompareOp, fa: BigFn, fb: BigFn): BoolFn {
  switch (op) {
    case 'EQ': return (ev) => fa(ev) === fb(ev);
    case 'NE': return (ev) => fa(ev) !== fb(ev);
    case 'LT': return (ev) => fa(ev) < fb(ev);
    case 'LE': return (ev) => fa(ev) <= fb(ev);
    case 'GT': return (ev) => fa(ev) > fb(ev);
    case 'GE': return (ev) => fa(ev) >= fb(ev);
  }
}

const REVERSED: Record<CompareOp, CompareOp> = { EQ: 'EQ', NE: 'NE', LT: 'GT', LE: 'GE', GT: 'LT', GE: 'LE' };

/** `.event.timestamp <v> op` (or `<v> .event.timestamp op`, reversed) as bounds. */
function timestampFacts(op: CompareOp, a: IntEntry, b: IntEntry): Facts | null {
  let rel = op;
  let v: bigint;
  if (a.member === 'timestamp' && b.lit !== null) v = b.lit;
  else if (b.member === 'timestamp' && a.lit !== null) {
    v = a.lit;
    rel = REVERSED[op];
  } else return null;
  switch (rel) {
    case 'EQ': return { equals: {}, tsMin: v, tsMax: v };
    case 'GE': return { equals: {}, tsMin: v, tsMax: null };
    case 'GT': return { equals: {}, tsMin: v + 1n, tsMax: null };
    case 'LE': return { equals: {}, tsMin: null, tsMax: v };
    case 'LT': return { equals: {}, tsMin: null, tsMax: v - 1n };
    case 'NE': return null;
  }
}

function mergeFacts(a: Facts | null, b: Facts | null): Facts | null {
  if (a === null) return b;
  if (b === null) return a;
  // Both hold when AND is true; a contradiction means no match at all, so
  // keeping either value is still sound.
  return {
    equals: { ...b.equals, ...a.equals },
    tsMin: a.tsMin === null ? b.tsMin : b.tsMin === null ? a.tsMin : bmax(a.tsMin, b.tsMin),
    tsMax: a.tsMax === null ? b.tsMax : b.tsMax === null ? a.tsMax : bmin(a.tsMax, b.tsMax),
  };
}

function hintsOf(f: Facts | null): FilterHints {
  const h: FilterHints = {};
  if (f === null) return h;
  if (Object.keys(f.equals).length > 0) h.equals = Object.freeze({ ...f.equals });
  if (f.tsMin !== null && f.tsMin >= SAFE_MIN && f.tsMin <= SAFE_MAX) h.timestampMin = Number(f.tsMin);
  if (f.tsMax !== null && f.tsMax >= SAFE_MIN && f.tsMax <= SAFE_MAX) h.timestampMax = Number(f.tsMax);
  return h;
}

// ---------------------------------------------------------------- operators

function unknownWord(w: string): string {
  if (w === 'LDV' || w === 'LDP') return `${w} is an internal elos opcode, not a command`;
  const upper = w.toUpperCase();
  if (OPERATORS.includes(upper)) return `unknown operator '${cut(w, 64)}': operators are upper case (${upper})`;
  return `unknown operator '${cut(w, 64)}': operators are ${OPERATORS.join(' ')}`;
}

function binary(op: string, a: Entry, b: Entry, tok: Token, st: EvalState): Entry | string {
  const got = `got ${describe(a)} and ${describe(b)}`;
  if (a.ty === 'regex' || (b.ty === 'regex' && op !== 'REGEX')) {
    return `${op} cannot take a regex: a regex is only the second operand of REGEX (<string> r'…' REGEX)`;
  }
  if (isCompare(op)) {
    if (a.ty === 'int' && b.ty === 'int') {
      const fa = a.num;
      const fb = b.num;
      const fn = fa !== null && fb !== null ? compareNum(op, fa, fb, a, b) : compareBig(op, toBig(a), toBig(b));
      return { ty: 'bool', tok, fn, facts: timestampFacts(op, a, b) };
    }
    if (a.ty === 'bool' && b.ty === 'bool' && (op === 'EQ' || op === 'NE')) {
      const fa = a.fn;
      const fb = b.fn;
      return { ty: 'bool', tok, fn: op === 'EQ' ? (ev) => fa(ev) === fb(ev) : (ev) => fa(ev) !== fb(ev), facts: null };
    }
    if (a.ty === 'string' || b.ty === 'string') return `${op} compares integers, not strings: use STRCMP for string equality (${got})`;
    return `${op} compares two integers${op === 'EQ' || op === 'NE' ? ' or two bools' : ''} (${got})`;
  }
  if (isLogic(op)) {
    if (a.ty === 'int' && b.ty === 'int') return bitwise(op, a, b, tok);
    if (a.ty === 'bool' && b.ty === 'bool') {
      const fa = a.fn;
      const fb = b.fn;
      switch (op) {
        case 'AND': return { ty: 'bool', tok, fn: (ev) => fa(ev) && fb(ev), facts: mergeFacts(a.facts, b.facts) };
        case 'OR': return { ty: 'bool', tok, fn: (ev) => fa(ev) || fb(ev), facts: null };
        case 'XOR': return { ty: 'bool', tok, fn: (ev) => fa(ev) !== fb(ev), facts: null };
      }
    }
    return `${op} takes two integers (bitwise) or two bools (logical) (${got})`;
  }
  if (isArith(op)) {
    if (a.ty === 'int' && b.ty === 'int') return arith(op, a, b, tok, st);
    return `${op} takes two integers (${got})`;
  }
  if (op === 'STRCMP') {
    if (a.ty !== 'string' || b.ty !== 'string') return `STRCMP compares two strings (${got})`;
    let facts: Facts | null = null;
    if (a.hintField !== null && b.lit !== null) facts = { equals: { [a.hintField]: b.lit }, tsMin: null, tsMax: null };
    else if (b.hintField !== null && a.lit !== null) facts = { equals: { [b.hintField]: a.lit }, tsMin: null, tsMax: null };
    const fa = a.fn;
    const fb = b.fn;
    const ca = a.lit;
    const cb = b.lit;
    const fn: BoolFn = cb !== null ? (ev) => fa(ev) === cb : ca !== null ? (ev) => ca === fb(ev) : (ev) => fa(ev) === fb(ev);
    return { ty: 'bool', tok, fn, facts };
  }
  // REGEX
  if (a.ty !== 'string' || b.ty !== 'regex') return `REGEX takes a string and a regex literal: <string> r'…' REGEX (${got})`;
  const fa = a.fn;
  const re = b.re;
  const literal = b.literal;
  const tooLong = `the REGEX subject is longer than ${MAX_REGEX_SUBJECT} characters (REGEX at position ${tok.pos})`;
  const fn: BoolFn = literal !== null
    ? (ev) => {
      const s = fa(ev);
      if (s.length > MAX_REGEX_SUBJECT) {
        fail(st, tooLong);
        return false;
      }
      return s.includes(literal);
    }
    : (ev) => {
      const s = fa(ev);
      if (s.length > MAX_REGEX_SUBJECT) {
        fail(st, tooLong);
        return false;
      }
      return re.test(s);
    };
  return { ty: 'bool', tok, fn, facts: null };
}

// ---------------------------------------------------------------- driver

function compileError(source: string, position: number, token: string, message: string): CompileResult {
  const error: FilterCompileError = { filter: cut(source, MAX_ERROR_FILTER), position, token: cut(token, MAX_ERROR_TOKEN), message };
  return { ok: false, error };
}

function compile(source: string): CompileResult {
  const { tokens, error: tokenError } = tokenize(source);
  const st: EvalState = { error: null };
  const stack: Entry[] = [];
  let regexTotal = 0;
  // worst-case steps per event (src/filter/cost.ts): one per token, plus each regex's automaton × subject
  let cost = tokens.length;
  const err = (tok: Token, message: string): CompileResult => compileError(source, tok.pos, tok.text, message);

  for (const tok of tokens) {
    if (tok.kind !== 'word') {
      if (stack.length >= MAX_STACK) {
        return err(tok, `more than ${MAX_STACK} values on the stack: combine values with operators before pushing more`);
      }
      switch (tok.kind) {
        case 'int':
          stack.push(literalInt(tok, tok.value));
          break;
        case 'string':
          stack.push({ ty: 'string', tok, fn: ((s) => () => s)(tok.value), lit: tok.value, hintField: null });
          break;
        case 'regex': {
          regexTotal += tok.value.length;
          if (regexTotal > MAX_REGEX_TOTAL) return err(tok, `the regexes of one filter may have at most ${MAX_REGEX_TOTAL} characters in all`);
          const re = compileRegex(tok.value);
          if (typeof re === 'string') return err(tok, re);
          const literal = /[\\^$.|?*+()[\]{}]/.test(tok.value) ? null : tok.value;
          cost += regexCost(tok.value, literal !== null);
          stack.push({ ty: 'regex', tok, re, literal });
          break;
        }
        case 'path': {
          const m = resolvePath(tok.text);
          if (typeof m === 'string') return err(tok, m);
          if (m.type === 'int') {
            const e = intEntry(tok, m.lo, m.hi, { num: m.read(st) });
            e.member = m.name;
            stack.push(e);
          } else {
            stack.push({ ty: 'string', tok, fn: m.read(st), lit: null, hintField: m.hintField });
          }
          break;
        }
      }
      continue;
    }
    const op = tok.text;
    if (!OPERATORS.includes(op)) return err(tok, unknownWord(op));
    const arity = op === 'NOT' ? 1 : 2;
    if (stack.length < arity) {
      return err(tok, `${op} needs ${arity} operand${arity > 1 ? 's' : ''} and the stack holds ${stack.length}`);
    }
    const b = stack.pop();
    if (b === undefined) return err(tok, `${op} has no operand`); // unreachable: the length was checked
    if (arity === 1) {
      if (b.ty !== 'bool') {
        return err(tok, b.ty === 'int'
          ? "NOT is logical and takes a bool; to test an integer for zero write '<int> 0 EQ'"
          : `NOT takes a bool (got ${describe(b)})`);
      }
      const f = b.fn;
      stack.push({ ty: 'bool', tok, fn: (ev) => !f(ev), facts: null });
      continue;
    }
    const a = stack.pop();
    if (a === undefined) return err(tok, `${op} has one operand`); // unreachable: the length was checked
    const r = binary(op, a, b, tok, st);
    if (typeof r === 'string') return err(tok, r);
    stack.push(r);
  }

  if (tokenError !== null) return compileError(source, tokenError.position, tokenError.token, tokenError.message);
  const top = stack[stack.length - 1];
  if (top === undefined) return compileError(source, source.length, '', 'the filter is empty');
  const first = stack[0];
  if (stack.length > 1 && first !== undefined) {
    return err(first.tok, `${stack.length} values remain at the end of the filter and exactly one must: this value is never used (missing AND or OR?)`);
  }
  if (top.tok.kind !== 'word') {
    return err(top.tok, 'a filter is a single value: it must end with an operator (a lone value is neither a match nor a no-match)');
  }
  let root: BoolFn;
  switch (top.ty) {
    case 'bool':
      root = top.fn;
      break;
    case 'int': {
      // elos: an integer result matches when it is not zero (`.e.classification 16 AND`).
      const f = top.num;
      const g = top.big;
      root = f !== null ? (ev) => f(ev) !== 0 : g !== null ? (ev) => g(ev) !== 0n : () => false;
      break;
    }
    default:
      return err(top.tok, `the filter's result is ${describe(top)}: it must be a bool or an integer`);
  }
  const hints = Object.freeze(top.ty === 'bool' ? hintsOf(top.facts) : {});
  return { ok: true, filter: makeCompiledFilter(source, hints, root, st, cost) };
}

/**
 * Compile a filter string. Never throws: any problem, including input that
 * is not a string at all, is a FilterCompileError.
 */
export function compileFilter(source: string): CompileResult {
  if (typeof source !== 'string') return compileError('', 0, '', 'the filter must be a string');
  try {
    return compile(source);
  } catch (e) {
    return compileError(source, 0, '', `internal error while compiling: ${(e instanceof Error ? e.message : String(e)).slice(0, 200)}`);
  }
}

/**
 * Whether `ev` matches, for backends that scan events one by one (memory,
 * jsonl); a null filter matches everything. The hints are necessary
 * conditions of a MATCH: checking them first is only a shortcut; the filter
 * decides.
 */
export function matchesFilter(filter: CompiledFilter | null, ev: StorageEvent): boolean {
  if (filter === null) return true;
  const h = filter.hints;
  if (h.equals !== undefined) {
    for (const [field, value] of Object.entries(h.equals)) {
      if (value !== undefined && ev[field as keyof typeof h.equals] !== value) return false;
    }
  }
  if (h.timestampMin !== undefined && ev.timestamp < h.timestampMin) return false;
  if (h.timestampMax !== undefined && ev.timestamp > h.timestampMax) return false;
  return filter.evaluate(ev) === 'MATCH';
}
