// The contract of the filter language (docs/filter-language.md) for its users: the
// StorageManager (accepts), the backends (findEvents) and the query API.
// The implementation lives beside this file (tokenizer, compiler, evaluator).
import type { StorageEvent } from '../events/schema.ts';

export type FilterResult = 'MATCH' | 'NO_MATCH' | 'ERROR';

/** Why a filter string did not compile: a value for the user, never a throw. */
export interface FilterCompileError {
  /** the filter string as given (cut to a bounded length) */
  filter: string;
  /** 0-based character offset of the offending token in the filter string */
  position: number;
  /** the offending token as written ('' at the end of the input) */
  token: string;
  /** one sentence: what is wrong and, where it helps, what would be right */
  message: string;
}

/**
 * Conditions every MATCH implies, for backends that can push them into an
 * index (sqlite, postgres) before running the full filter on what remains.
 * Sound, not complete: an empty object is always a correct answer.
 */
export interface FilterHints {
  /** `.event.<field> '<value>' STRCMP` in a top-level AND chain */
  equals?: Partial<Record<'hostname' | 'system' | 'event_type' | 'event_id' | 'dev_wwid' | 'dev_name', string>>;
  /** bounds on `.event.timestamp` (seconds) from top-level comparisons with literals, inclusive */
  timestampMin?: number;
  timestampMax?: number;
}

export interface CompiledFilter {
  /** the source string */
  readonly source: string;
  readonly hints: FilterHints;
  /** worst-case steps per event (src/filter/cost.ts), for the storage configuration's budget; compileFilter always sets it */
  readonly cost?: number;
  /** Bounded in time and memory; never throws. */
  evaluate(ev: StorageEvent): FilterResult;
  /** As evaluate, with the reason when the result is ERROR (e.g. "division by zero at position 12"). */
  evaluateDetailed(ev: StorageEvent): { result: FilterResult; error?: string };
}

export type CompileResult = { ok: true; filter: CompiledFilter } | { ok: false; error: FilterCompileError };
