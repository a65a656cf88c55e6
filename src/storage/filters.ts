// The PluginFilterLoader and StorageBackend.accepts of the elos
// StorageManager (docs/storage.md "The StorageManager", seed semantics).
//
// Load: every `Filter` entry of a backend is compiled; valid filters are kept
// in order, a broken one is skipped and reported; the result is OK with the
// list (possibly empty) or FAILED when the setup itself fails. A missing or
// empty list is allowed: the backend is loaded and never receives events.
//
// Accept: filters are applied in order; the first MATCH gives OK and stops;
// no match gives NOT_FOUND; an ERROR gives FAILED at once. The seed stops at
// the first error too (its loop evaluates the next filter only while the
// result so far is NO_MATCH), so a later filter that would have matched is
// not tried: an event that makes a filter fail is not stored in that backend,
// and the failure is counted rather than hidden by a luckier filter.
import type { StorageEvent } from '../events/schema.ts';
import type { CompileResult, CompiledFilter } from '../filter/types.ts';
import { MAX_FILTER_LENGTH, MAX_FILTERS_PER_BACKEND } from './config.ts';

export type CompileFn = (source: string) => CompileResult;

/** How long a filter string may be in reports (logs, status, metrics never carry it). */
export const REPORTED_FILTER_CHARS = 200;

/** A filter that did not compile: what status and logs show. */
export interface FilterProblem {
  backend: string;
  /** 0-based index in the backend's `Filter` list */
  index: number;
  /** the filter string, cut to REPORTED_FILTER_CHARS */
  filter: string;
  /** 0-based character offset of the offending token (-1 when the entry is not a string at all) */
  position: number;
  token: string;
  message: string;
}

type FilterLoadResult =
  | {
    ok: true;
    /** the valid filters, in configuration order */
    filters: readonly CompiledFilter[];
    /** each broken entry, skipped */
    problems: readonly FilterProblem[];
    /** set when the backend can never receive an event (no valid filter) */
    warning: string | null;
  }
  | { ok: false; error: string };

type AcceptResult = 'OK' | 'NOT_FOUND' | 'FAILED';

function cutFilter(s: string): string {
  return s.length <= REPORTED_FILTER_CHARS ? s : `${s.slice(0, REPORTED_FILTER_CHARS)}…`;
}

export function describeFilterProblem(p: FilterProblem): string {
  const at = p.position >= 0 ? ` at position ${p.position}${p.token ? ` (token ${JSON.stringify(cutFilter(p.token))})` : ''}` : '';
  return `backend "${p.backend}": filter ${p.index} ${JSON.stringify(p.filter)}${at}: ${p.message}`;
}

export class PluginFilterLoader {
  private readonly compile: CompileFn;

  constructor(compile: CompileFn) {
    this.compile = compile;
  }

  /** Compile a backend's `Filter` entries (null or undefined: the key is missing). */
  load(backend: string, entries: readonly unknown[] | null | undefined): FilterLoadResult {
    if (typeof this.compile !== 'function') return { ok: false, error: `backend "${backend}": no filter compiler` };
    if (entries !== null && entries !== undefined && !Array.isArray(entries)) {
      return { ok: false, error: `backend "${backend}": Filter must be a list of strings` };
    }
    const list = entries ?? [];
    if (list.length > MAX_FILTERS_PER_BACKEND) {
      return { ok: false, error: `backend "${backend}": ${list.length} filters, at most ${MAX_FILTERS_PER_BACKEND} are allowed` };
    }
    const filters: CompiledFilter[] = [];
    const problems: FilterProblem[] = [];
    list.forEach((entry, index) => {
      const problem = (filter: string, position: number, token: string, message: string) =>
        problems.push({ backend, index, filter: cutFilter(filter), position, token: cutFilter(token), message });
      if (typeof entry !== 'string') {
        problem(String(entry), -1, '', 'not a string');
        return;
      }
      if (entry.length > MAX_FILTER_LENGTH) {
        problem(entry, MAX_FILTER_LENGTH, '', `longer than ${MAX_FILTER_LENGTH} characters`);
        return;
      }
      let r: CompileResult;
      try {
        r = this.compile(entry);
      } catch (err) {
        // the compiler promises never to throw; if it does, that one filter is broken, not the backend
        problem(entry, 0, '', `the filter compiler failed: ${(err as Error)?.message ?? String(err)}`);
        return;
      }
      if (r.ok) filters.push(r.filter);
      else problem(entry, r.error.position, r.error.token, r.error.message);
    });
    let warning: string | null = null;
    if (filters.length === 0) {
      const why = entries === null || entries === undefined ? 'has no Filter'
        : list.length === 0 ? 'has an empty Filter list' : 'has no valid filter';
      warning = `backend "${backend}" ${why}: loaded, will never receive events`;
    }
    return { ok: true, filters, problems, warning };
  }
}

/** StorageBackend.accepts: first MATCH wins; NO_MATCH everywhere → NOT_FOUND; the first ERROR → FAILED. */
export function accepts(filters: readonly CompiledFilter[], ev: StorageEvent): AcceptResult {
  for (let i = 0; i < filters.length; i++) {
    let r;
    try {
      r = filters[i]!.evaluate(ev);
    } catch {
      // evaluate promises never to throw; a throw is an evaluation error of this filter
      return 'FAILED';
    }
    if (r === 'MATCH') return 'OK';
    if (r !== 'NO_MATCH') return 'FAILED';
  }
  return 'NOT_FOUND';
}

/**
 * Why accepts() returned FAILED for this event: the failing filter and its
 * error. Only called on the error path (it evaluates again, with details).
 */
export function explainFailure(filters: readonly CompiledFilter[], ev: StorageEvent): { index: number; filter: string; error: string } | null {
  for (let i = 0; i < filters.length; i++) {
    const f = filters[i]!;
    let r: { result: string; error?: string };
    try {
      r = f.evaluateDetailed(ev);
    } catch (err) {
      return { index: i, filter: cutFilter(f.source), error: `evaluation threw: ${(err as Error)?.message ?? String(err)}` };
    }
    if (r.result === 'MATCH') return null;
    if (r.result !== 'NO_MATCH') return { index: i, filter: cutFilter(f.source), error: r.error ?? 'evaluation error' };
  }
  return null;
}
