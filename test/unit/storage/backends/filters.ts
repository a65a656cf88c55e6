// Hand-built CompiledFilters for the backend tests: they must not depend on
// the filter compiler, and a predicate with chosen hints shows what a backend
// pushes down (the hints) and what it leaves to the filter (the predicate).
import type { StorageEvent } from '../../../../src/events/schema.ts';
import type { CompiledFilter, FilterHints, FilterResult } from '../../../../src/filter/types.ts';

export interface CountingFilter extends CompiledFilter {
  /** how many events evaluate() saw */
  calls: number;
}

/** A filter that MATCHes when `pred` is true, NO_MATCH when false, ERROR when it returns 'ERROR'. */
export function predicateFilter(source: string, pred: (ev: StorageEvent) => boolean | 'ERROR', hints: FilterHints = {}): CountingFilter {
  const f: CountingFilter = {
    source,
    hints,
    calls: 0,
    evaluate(ev: StorageEvent): FilterResult {
      f.calls++;
      const r = pred(ev);
      return r === 'ERROR' ? 'ERROR' : r ? 'MATCH' : 'NO_MATCH';
    },
    evaluateDetailed(ev: StorageEvent) {
      const result = f.evaluate(ev);
      return result === 'ERROR' ? { result, error: 'predicate error' } : { result };
    },
  };
  return f;
}

/** `.event.system '<system>' STRCMP`, with the hint the compiler would give. */
export function systemIs(system: string): CountingFilter {
  return predicateFilter(`.event.system '${system}' STRCMP`, (ev) => ev.system === system, { equals: { system } });
}

/** Matches everything but claims (unsoundly, on purpose) the given hints: what comes back shows what was pushed down. */
export function hintsOnly(hints: FilterHints): CountingFilter {
  return predicateFilter('1 1 EQ', () => true, hints);
}
