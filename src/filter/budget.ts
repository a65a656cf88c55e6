// The storage configuration's filter budget (docs/filter-language.md, "Cost
// budget"): the worst-case cost of every filter of every backend that can
// run, summed, must stay within FILTER_COST_BUDGET. Each filter is already
// bounded on its own (regex length, subject length, tokens); this bounds
// their number × weight, which the per-filter limits allow to reach
// 64 backends × 64 filters × hundreds of ms for one event. Pure: compiles
// the filter strings, reads their static cost, never runs them.
import { compileFilter } from './compile.ts';
import { FILTER_COST_BUDGET } from './cost.ts';
import type { CompileResult } from './types.ts';

interface BudgetBackend {
  name: string;
  /** `Run: never` backends never evaluate their filters: not counted */
  run: string;
  filters: readonly string[] | null;
}

interface FilterCost {
  backend: string;
  index: number;
  filter: string;
  cost: number;
}

interface BudgetReport {
  total: number;
  budget: number;
  /** the most expensive filters, costliest first (at most 3) */
  top: FilterCost[];
}

const SHOWN_FILTER_CHARS = 120;

function show(s: string): string {
  return JSON.stringify(s.length > SHOWN_FILTER_CHARS ? `${s.slice(0, SHOWN_FILTER_CHARS)}…` : s);
}

/** The worst-case cost of a configuration's filters. A filter that does not compile costs nothing (it is skipped when the backend loads). */
function filterBudget(backends: readonly BudgetBackend[], compile: (s: string) => CompileResult = compileFilter): BudgetReport {
  let total = 0;
  const top: FilterCost[] = [];
  for (const b of backends) {
    if (b.run === 'never' || b.filters === null) continue;
    b.filters.forEach((filter, index) => {
      const r = compile(filter);
      const cost = r.ok ? (r.filter.cost ?? 0) : 0;
      total += cost;
      if (top.length < 3 || cost > top[top.length - 1]!.cost) {
        top.push({ backend: b.name, index, filter, cost });
        top.sort((x, y) => y.cost - x.cost);
        if (top.length > 3) top.pop();
      }
    });
  }
  return { total, budget: FILTER_COST_BUDGET, top };
}

/** null when within the budget, else one message naming the costliest backends and filters. */
export function checkFilterBudget(backends: readonly BudgetBackend[], compile?: (s: string) => CompileResult): string | null {
  const r = filterBudget(backends, compile);
  if (r.total <= r.budget) return null;
  const worst = r.top.map((t) => `backend "${t.backend}" filter ${t.index} ${show(t.filter)} (${t.cost.toLocaleString('en-US')})`).join('; ');
  return `the filters' worst-case cost is ${r.total.toLocaleString('en-US')} steps per event, over the budget of ${r.budget.toLocaleString('en-US')} `
    + `(docs/filter-language.md, "Cost budget"; regexes cost the most: shorten them or use STRCMP on fields); the costliest: ${worst}`;
}
