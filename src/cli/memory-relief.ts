// Memory given back after a storm (issue 14, docs/performance.md "Memory").
//
// Under a kernel-log storm the agent's V8 heap and glibc's arenas grow; when
// the storm is over nothing shrinks them: V8 collects only when JavaScript
// allocates (an idle agent hardly does, so the old generation keeps the
// storm's garbage and its committed pages), and glibc keeps freed chunks in
// its arenas (Node never calls malloc_trim). Measured: 100,000 lines at 10k/s
// left the agent at its peak RSS 20 s later, with two thirds of the V8 heap
// garbage and ~19 MB free inside glibc's arenas.
//
// So, every CHECK_MS, the agent looks at how busy its event loop was since
// the last look (event-loop utilisation) and at its resident size. When it
// went quiet (utilisation under QUIET_ELU) and its RSS is at least
// GROWTH_BYTES above what it was after the last relief (or at the start), it
// runs one full garbage collection (V8 then releases the old generation's
// free pages) and malloc_trim(0) (glibc's free pages back to the kernel).
// The collection blocks the loop for tens of milliseconds, acceptable only
// because the loop is idle then; during a storm it never runs. Both counted:
// peripety_memory_reliefs_total, peripety_memory_released_bytes_total.
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../log/logger.ts';
import { perRegistry } from '../metrics/per-registry.ts';

export const CHECK_MS = 5_000;
/** event-loop utilisation over a CHECK_MS window under which the agent counts as quiet */
export const QUIET_ELU = 0.05;
/** growth of the RSS since the last relief that makes one worth doing */
export const GROWTH_BYTES = 16 * 1024 * 1024;

export interface ReliefState {
  /** RSS after the last relief (or at the start) */
  baselineRss: number;
}

/** Pure: whether to give memory back now, given the last window's loop utilisation and the RSS. */
export function reliefDue(state: ReliefState, elu: number, rss: number): boolean {
  return elu < QUIET_ELU && rss >= state.baselineRss + GROWTH_BYTES;
}

const reliefMetrics = perRegistry((registry: Registry) => ({
  reliefs: new Counter({ name: 'peripety_memory_reliefs_total', help: 'Times the agent gave memory back after a busy period (a full GC and malloc_trim while its event loop was idle)', registers: [registry] }),
  released: new Counter({ name: 'peripety_memory_released_bytes_total', help: 'Resident bytes the memory reliefs gave back (RSS before minus after)', registers: [registry] }),
}));

/** The process-level actions, replaceable in tests. */
export interface ReliefActions {
  rss(): number;
  /** event-loop utilisation since the previous call (0..1) */
  elu(): number;
  /** a full, synchronous garbage collection */
  gc(): void;
  /** glibc's malloc_trim(0); false when the addon cannot be loaded */
  trim(): boolean;
}

/** The real actions: process.memoryUsage.rss, performance.eventLoopUtilization, V8's gc, the memory addon's trim. */
export async function processActions(): Promise<ReliefActions> {
  // gc() without starting node with --expose-gc: the flag, then a fresh
  // context's global `gc` (V8 installs it in contexts made after the flag).
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (opts?: { type?: 'major' | 'minor'; flavor?: 'regular' | 'last-resort' }) => void;
  let trim: (() => number) | null = null;
  try {
    const { loadMemoryNative } = await import('../native/memory.ts');
    const native = loadMemoryNative();
    trim = () => native.trim();
  } catch {
    trim = null; // no addon: V8's part still works
  }
  let last = performance.eventLoopUtilization();
  return {
    rss: () => process.memoryUsage.rss(),
    elu: () => {
      const now = performance.eventLoopUtilization();
      const d = performance.eventLoopUtilization(now, last);
      last = now;
      return d.utilization;
    },
    // "last-resort": V8's memory-reducing full collection (it also frees the
    // pages V8 keeps pooled for reuse); a regular one leaves those mapped
    // until V8's own memory reducer runs about 8 s later
    gc: () => gc({ type: 'major', flavor: 'last-resort' }),
    trim: () => (trim ? (trim(), true) : false),
  };
}

/**
 * Starts the periodic check; returns its stop function. The timer never
 * keeps the process alive.
 */
export function startMemoryRelief(opts: { log: Logger; registry: Registry; actions: ReliefActions; intervalMs?: number }): () => void {
  const { log, actions } = opts;
  const m = reliefMetrics(opts.registry);
  const state: ReliefState = { baselineRss: actions.rss() };
  actions.elu(); // start the first window now
  const timer = setInterval(() => {
    const elu = actions.elu();
    const before = actions.rss();
    if (!reliefDue(state, elu, before)) {
      // the RSS may also go down on its own (V8's memory reducer): follow it
      if (before < state.baselineRss) state.baselineRss = before;
      return;
    }
    const t0 = performance.now();
    actions.gc();
    const trimmed = actions.trim();
    const after = actions.rss();
    state.baselineRss = after;
    m.reliefs.inc();
    if (before > after) m.released.inc(before - after);
    log.info({ rssBeforeMiB: +(before / 1048576).toFixed(1), rssAfterMiB: +(after / 1048576).toFixed(1), ms: Math.round(performance.now() - t0), mallocTrim: trimmed }, 'memory given back after a busy period');
  }, opts.intervalMs ?? CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
