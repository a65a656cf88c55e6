// The tokenizer of the filter language (docs/filter-language.md). Filter strings come
// from cluster users through CRDs, so the input is bounded before any work is
// done and every failure is a value that names the offending token.
//
// A token ends at whitespace; only a quoted string or regex may contain
// whitespace, and its closing quote must be followed by whitespace or the end
// of the filter (as in elos, `'a'b` is not two tokens). Positions are 0-based
// indices into the JavaScript string (UTF-16 code units).

export const MAX_FILTER_LENGTH = 4096;
const MAX_TOKENS = 512;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export type Token =
  | { kind: 'int'; pos: number; text: string; value: bigint }
  | { kind: 'string'; pos: number; text: string; value: string }
  | { kind: 'regex'; pos: number; text: string; value: string }
  /** `.…`: resolved against the member table by the compiler */
  | { kind: 'path'; pos: number; text: string }
  /** anything else: an operator, or an error the compiler reports with the operator list at hand */
  | { kind: 'word'; pos: number; text: string };

interface TokenError {
  position: number;
  token: string;
  message: string;
}

/**
 * The tokens before the first error, and that error: the compiler reports
 * whichever problem comes first in the filter, a bad token or a type error.
 */
interface TokenizeResult {
  tokens: Token[];
  error: TokenError | null;
}

// The same set as JavaScript's \s: a filter pasted with a no-break space or
// a byte-order mark still splits where the user sees a gap.
function isSpace(c: number): boolean {
  if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) return true;
  if (c < 0xa0) return false;
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029
    || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

function isQuote(c: number): boolean {
  return c === 0x27 /* ' */ || c === 0x22 /* " */;
}

function runEnd(s: string, from: number): number {
  let i = from;
  while (i < s.length && !isSpace(s.charCodeAt(i))) i++;
  return i;
}

const DECIMAL = /^[+-]?[0-9]+$/;
const HEX = /^[+-]?0[xX]/;
const FLOAT = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

function number(text: string, pos: number): Token | TokenError {
  if (DECIMAL.test(text)) {
    const value = BigInt(text);
    if (value < INT64_MIN || value > INT64_MAX) {
      return { position: pos, token: text, message: `integer ${text} is outside the signed 64-bit range ${INT64_MIN}..${INT64_MAX}` };
    }
    return { kind: 'int', pos, text, value };
  }
  if (HEX.test(text)) {
    return { position: pos, token: text, message: `hexadecimal literals are not supported: write the number in decimal` };
  }
  if (FLOAT.test(text)) {
    return { position: pos, token: text, message: `only integers are supported, not ${text}` };
  }
  return { position: pos, token: text, message: `${text} is not a decimal integer` };
}

/** A quoted token starting at `open` (the quote); `start` is where the token text begins (before `r`). */
function quoted(s: string, start: number, open: number, kind: 'string' | 'regex'): Token | TokenError {
  const q = s.charCodeAt(open);
  const close = s.indexOf(s[open] ?? '', open + 1);
  const what = kind === 'string' ? 'string' : 'regex';
  if (close < 0) {
    return {
      position: start,
      token: s.slice(start),
      message: `unterminated ${what}: no closing ${String.fromCharCode(q)} (strings have no escapes; use the other quote to include one)`,
    };
  }
  if (close + 1 < s.length && !isSpace(s.charCodeAt(close + 1))) {
    const end = runEnd(s, close + 1);
    return { position: start, token: s.slice(start, end), message: `a ${what} must be followed by a space or the end of the filter` };
  }
  return { kind, pos: start, text: s.slice(start, close + 1), value: s.slice(open + 1, close) };
}

export function tokenize(source: string): TokenizeResult {
  if (source.length > MAX_FILTER_LENGTH) {
    return {
      tokens: [],
      error: { position: MAX_FILTER_LENGTH, token: '', message: `the filter is ${source.length} characters long; at most ${MAX_FILTER_LENGTH} are allowed` },
    };
  }
  const tokens: Token[] = [];
  let i = 0;
  for (;;) {
    while (i < source.length && isSpace(source.charCodeAt(i))) i++;
    if (i >= source.length) break;
    if (tokens.length >= MAX_TOKENS) {
      return {
        tokens,
        error: { position: i, token: source.slice(i, runEnd(source, i)), message: `the filter has more than ${MAX_TOKENS} tokens` },
      };
    }
    const c = source.charCodeAt(i);
    let t: Token | TokenError;
    if (isQuote(c)) {
      t = quoted(source, i, i, 'string');
    } else if ((c === 0x72 /* r */ || c === 0x52 /* R */) && isQuote(source.charCodeAt(i + 1))) {
      t = quoted(source, i, i + 1, 'regex');
    } else {
      const end = runEnd(source, i);
      const text = source.slice(i, end);
      if ((c >= 0x30 && c <= 0x39) || c === 0x2b /* + */ || c === 0x2d /* - */) t = number(text, i);
      else if (c === 0x2e /* . */) t = FLOAT.test(text) ? number(text, i) : { kind: 'path', pos: i, text };
      else t = { kind: 'word', pos: i, text };
    }
    if (!('kind' in t)) return { tokens, error: t };
    tokens.push(t);
    i = t.pos + t.text.length;
  }
  return { tokens, error: null };
}
