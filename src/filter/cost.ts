// A static bound on what a filter can cost per event (docs/filter-language.md,
// "Cost budget"). Filters come from cluster users with StorageBackend write
// access; a storage configuration may hold 64 backends × 64 filters, and
// every event runs through all of them on the agent's one event loop. V8's
// linear-time regex engine keeps one thread per automaton state and steps
// every live thread once per subject character, so a REGEX costs at most
// about (states × subject length) steps; everything else a filter does is a
// handful of operations per token. The estimate below is deliberately an
// upper bound of that model, computed from the pattern text alone: it is the
// same on every machine, so a configuration is accepted or refused the same
// way on every node.
//
// Measured on the 2-vCPU test VM (test/hostile/filter-cost-budget.test.ts):
// one step is about 25-30 ns at worst (dense patterns with many captures on
// a 4 KiB subject), far less on typical patterns and subjects.

/** a REGEX subject longer than this is an ERROR, not a silently cut answer */
export const MAX_REGEX_SUBJECT = 4096;

/**
 * The automaton size of a pattern as V8's linear engine builds it, over-
 * estimated: counted repetitions unrolled (`x{m,n}`: n copies), `x+` as `x
 * x*`, alternatives and groups summed, captures adding their two register
 * writes. A character class, an escape or a literal character is one state.
 * Patterns the engine refuses never get here (they are compile errors).
 */
export function regexStates(pattern: string): number {
  let i = 0;
  const n = pattern.length;
  // Saturate instead of overflowing: only "over the budget" matters.
  const cap = (x: number) => Math.min(x, Number.MAX_SAFE_INTEGER);

  function alternation(): number {
    let total = sequence();
    let branches = 1;
    while (i < n && pattern[i] === '|') {
      i++;
      total = cap(total + sequence());
      branches++;
    }
    return cap(total + branches - 1);
  }

  function sequence(): number {
    let total = 0;
    while (i < n && pattern[i] !== '|' && pattern[i] !== ')') total = cap(total + quantified(atom()));
    return total;
  }

  function atom(): number {
    const c = pattern[i];
    if (c === '\\') {
      i += 2;
      return 1;
    }
    if (c === '[') {
      i++;
      if (pattern[i] === '^') i++;
      if (pattern[i] === ']') i++;
      while (i < n && pattern[i] !== ']') i += pattern[i] === '\\' ? 2 : 1;
      i++;
      return 1;
    }
    if (c === '(') {
      i++;
      let capturing = true;
      if (pattern[i] === '?') {
        // (?:…), (?<=…), (?<!…) do not capture; (?<name>…) does
        capturing = pattern[i + 1] === '<' && pattern[i + 2] !== '=' && pattern[i + 2] !== '!';
        i += 2;
        if (capturing) {
          while (i < n && pattern[i] !== '>') i++;
          i++;
        } else if (pattern[i - 1] === '<') i++;
      }
      const inner = alternation();
      if (pattern[i] === ')') i++;
      return cap(inner + (capturing ? 2 : 0));
    }
    i++;
    return 1;
  }

  function quantified(a: number): number {
    const c = pattern[i];
    let r: number;
    if (c === '*') {
      i++;
      r = a + 2;
    } else if (c === '+') {
      i++;
      r = 2 * a + 2;
    } else if (c === '?') {
      i++;
      r = a + 1;
    } else if (c === '{') {
      const m = /^\{(\d{1,9})(,(\d{0,9}))?\}/.exec(pattern.slice(i, i + 22));
      if (m === null) return a; // a literal '{'
      i += m[0].length;
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : m[3] === '' ? lo + 1 : Number(m[3]);
      r = Math.max(hi, 1) * a + Math.max(hi - lo, 0) + 2;
    } else return a;
    if (pattern[i] === '?') i++; // lazy: the same automaton
    return cap(r);
  }

  let total = 0;
  // an unbalanced ')' cannot compile; step over it rather than loop
  while (i < n) {
    total = cap(total + alternation());
    if (i < n) i++;
  }
  return Math.max(1, total);
}

/** The cost of one REGEX operation in steps: a literal pattern is a substring search, one pass. */
export function regexCost(pattern: string, literal: boolean): number {
  return (literal ? 1 : regexStates(pattern)) * MAX_REGEX_SUBJECT;
}

/**
 * The budget of one storage configuration, in steps per event, summed over
 * every filter of every backend that can run: 2048 automaton states × a
 * 4096-character subject. About a quarter of a second of CPU per event in
 * the worst case on the test VM; an ordinary configuration uses a few
 * percent of it (a REGEX such as `I/O error.*sector [0-9]+` is 23 states).
 */
export const FILTER_COST_BUDGET = 2048 * MAX_REGEX_SUBJECT;
