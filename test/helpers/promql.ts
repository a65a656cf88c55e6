// Helpers for the chart's monitoring tests (test/chart/alerts.test.ts,
// test/chart/dashboard.test.ts):
// - a tiny PromQL reader: which metrics an expression selects (with their
//   label matchers) and which label names it groups or matches on. Not a
//   parser of the whole language — it tokenizes and recognizes selectors,
//   function calls and the by/without/on/ignoring/group_left/group_right
//   clauses. Grafana's `$var` / `${var}` are accepted;
// - checkExpr: an expression against a catalog of metrics and label names;
// - the catalog of what peripety really exports, from registries built the way
//   `peripety agent` and `peripety controller` build theirs.

import path from 'node:path';
import { Registry } from 'prom-client';
import { TokenReviewAuthenticator } from '../../src/api/tokenreview.ts';
import { apiServerMetrics } from '../../src/api/server.ts';
import { EventStreamHub } from '../../src/api/stream.ts';
import { ControllerMetrics } from '../../src/controller/metrics.ts';
import { CATALOG, EVENT_TYPES, isEventType } from '../../src/events/catalog.ts';
import { SEVERITIES, SYSTEMS } from '../../src/events/schema.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { AgentMetrics } from '../../src/metrics/agent-metrics.ts';
import { deviceErrors } from '../../src/metrics/device-errors.ts';
import { listenerMetrics, senderMetrics } from '../../src/multicast/metrics.ts';
import type { KubeClient } from '../../src/k8s/http.ts';
import { K8sEventsReceiver, type WriteResult as K8sWriteResult } from '../../src/receivers/k8s-events/index.ts';
import { K8sEventsOptions } from '../../src/receivers/k8s-events/options.ts';
import { receiverMetrics, WEBHOOK_RESULTS } from '../../src/receivers/receiver-metrics.ts';
import { StorageMetrics, WRITE_RESULTS } from '../../src/storage/metrics.ts';
import { udevMetrics } from '../../src/udev/collector.ts';

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface Matcher {
  label: string;
  op: MatchOp;
  value: string;
}

export interface Selector {
  /** the metric name, or the value of an `=` __name__ matcher; null for `{job="x"}` */
  name: string | null;
  matchers: Matcher[];
}

export type GroupingKind = 'by' | 'without' | 'on' | 'ignoring' | 'group_left' | 'group_right';

export interface Grouping {
  kind: GroupingKind;
  labels: string[];
  /**
   * The selectors the clause applies to: for by/without the aggregation's
   * argument; for on/ignoring/group_* every selector in the innermost
   * parenthesized expression around the operator (both operands).
   */
  scope: Selector[];
}

export interface PromqlRefs {
  selectors: Selector[];
  groupings: Grouping[];
  /** function and aggregation names called */
  functions: string[];
}

type Token =
  | { t: 'ident'; v: string }
  | { t: 'str'; v: string }
  | { t: 'num'; v: string }
  | { t: 'var'; v: string }
  | { t: 'range' }
  | { t: 'matchers'; m: Matcher[] }
  | { t: '(' }
  | { t: ')' }
  | { t: ',' }
  | { t: 'op'; v: string };

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'atan2']);
const GROUPING = new Set<string>(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);
const NUMBER_WORDS = new Set(['inf', 'nan']);
const IDENT = /[A-Za-z_:][A-Za-z0-9_:]*/y;
const LABEL = /[A-Za-z_][A-Za-z0-9_]*/y;
const VAR = /\$(?:\{[^}]*\}|[A-Za-z0-9_]+)/y;
const NUM = /(?:0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?(?:ms|[smhdwy])?(?:[0-9]+(?:ms|[smhdwy]))*)/y;

export class PromqlSyntaxError extends Error {}

function readString(src: string, i: number): { value: string; end: number } {
  const q = src[i]!;
  let out = '';
  let j = i + 1;
  while (j < src.length) {
    const c = src[j]!;
    if (c === q) return { value: out, end: j + 1 };
    if (c === '\\' && q !== '`') {
      const n = src[j + 1];
      if (n === undefined) break;
      out += n === 'n' ? '\n' : n === 't' ? '\t' : n;
      j += 2;
      continue;
    }
    out += c;
    j++;
  }
  throw new PromqlSyntaxError(`unterminated string at ${i}: ${src.slice(i, i + 40)}`);
}

function sticky(re: RegExp, src: string, i: number): string | null {
  re.lastIndex = i;
  const m = re.exec(src);
  return m && m[0].length > 0 ? m[0] : null;
}

function readMatchers(src: string, i: number): { m: Matcher[]; end: number } {
  const m: Matcher[] = [];
  let j = i + 1;
  const ws = () => {
    while (j < src.length && /\s/.test(src[j]!)) j++;
  };
  for (;;) {
    ws();
    if (src[j] === '}') return { m, end: j + 1 };
    let label: string | null;
    if (src[j] === '"' || src[j] === "'") {
      // quoted label names (UTF-8 names, Prometheus 3)
      const s = readString(src, j);
      label = s.value;
      j = s.end;
    } else {
      label = sticky(LABEL, src, j);
      if (label === null) throw new PromqlSyntaxError(`expected a label name at ${j}: ${src.slice(j, j + 40)}`);
      j += label.length;
    }
    ws();
    const op = (['=~', '!~', '!=', '='] as const).find((o) => src.startsWith(o, j));
    if (!op) throw new PromqlSyntaxError(`expected a match operator at ${j}: ${src.slice(j, j + 40)}`);
    j += op.length;
    ws();
    const q = src[j];
    if (q !== '"' && q !== "'" && q !== '`') throw new PromqlSyntaxError(`expected a string at ${j}: ${src.slice(j, j + 40)}`);
    const s = readString(src, j);
    j = s.end;
    m.push({ label, op, value: s.value });
    ws();
    if (src[j] === ',') j++;
    else if (src[j] !== '}') throw new PromqlSyntaxError(`expected , or } at ${j}: ${src.slice(j, j + 40)}`);
  }
}

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      const s = readString(src, i);
      out.push({ t: 'str', v: s.value });
      i = s.end;
      continue;
    }
    if (c === '[') {
      const end = src.indexOf(']', i);
      if (end < 0) throw new PromqlSyntaxError(`unterminated [ at ${i}`);
      out.push({ t: 'range' });
      i = end + 1;
      continue;
    }
    if (c === '{') {
      const r = readMatchers(src, i);
      out.push({ t: 'matchers', m: r.m });
      i = r.end;
      continue;
    }
    if (c === '(' || c === ')' || c === ',') {
      out.push({ t: c });
      i++;
      continue;
    }
    if (c === '$') {
      const v = sticky(VAR, src, i);
      if (v === null) throw new PromqlSyntaxError(`bad variable at ${i}`);
      out.push({ t: 'var', v });
      i += v.length;
      continue;
    }
    if (/[0-9.]/.test(c)) {
      const v = sticky(NUM, src, i);
      if (v === null) throw new PromqlSyntaxError(`bad number at ${i}: ${src.slice(i, i + 20)}`);
      out.push({ t: 'num', v });
      i += v.length;
      continue;
    }
    const id = sticky(IDENT, src, i);
    if (id !== null) {
      out.push(NUMBER_WORDS.has(id.toLowerCase()) ? { t: 'num', v: id } : { t: 'ident', v: id });
      i += id.length;
      continue;
    }
    const op = ['==', '!=', '>=', '<=', '=~', '!~'].find((o) => src.startsWith(o, i)) ?? (/[-+*/%^<>@:=]/.test(c) ? c : null);
    if (op === null) throw new PromqlSyntaxError(`unexpected ${JSON.stringify(c)} at ${i}`);
    out.push({ t: 'op', v: op });
    i += op.length;
  }
  return out;
}

function matchParens(tokens: Token[]): Map<number, number> {
  const pairs = new Map<number, number>();
  const stack: number[] = [];
  tokens.forEach((tok, i) => {
    if (tok.t === '(') stack.push(i);
    else if (tok.t === ')') {
      const open = stack.pop();
      if (open === undefined) throw new PromqlSyntaxError('unbalanced )');
      pairs.set(open, i);
      pairs.set(i, open);
    }
  });
  if (stack.length > 0) throw new PromqlSyntaxError('unbalanced (');
  return pairs;
}

/** Selectors, grouping clauses and function names of one PromQL expression. */
export function analyze(expr: string): PromqlRefs {
  const tokens = tokenize(expr);
  const parens = matchParens(tokens);
  const selectorAt = new Map<number, Selector>();
  const functions: string[] = [];
  const clauses: { kind: GroupingKind; labels: string[]; at: number; listEnd: number }[] = [];
  const skip = new Set<number>();
  for (let i = 0; i < tokens.length; i++) {
    if (skip.has(i)) continue;
    const tok = tokens[i]!;
    const next = tokens[i + 1];
    if (tok.t === 'ident' && GROUPING.has(tok.v)) {
      const labels: string[] = [];
      let listEnd = i;
      if (next?.t === '(') {
        const close = parens.get(i + 1)!;
        for (let j = i + 2; j < close; j++) {
          const l = tokens[j]!;
          if (l.t === 'ident' || l.t === 'str') labels.push(l.v);
          else if (l.t !== ',') throw new PromqlSyntaxError(`unexpected token in ${tok.v} (...)`);
          skip.add(j);
        }
        listEnd = close;
        skip.add(i + 1);
        skip.add(close);
      }
      clauses.push({ kind: tok.v as GroupingKind, labels, at: i, listEnd });
      continue;
    }
    if (tok.t === 'ident' && KEYWORDS.has(tok.v)) continue;
    if (tok.t === 'ident' && next?.t === '(') {
      functions.push(tok.v);
      continue;
    }
    if (tok.t === 'ident' && AGGREGATIONS.has(tok.v) && next?.t === 'ident' && (next.v === 'by' || next.v === 'without')) {
      functions.push(tok.v);
      continue;
    }
    if (tok.t === 'ident') {
      const matchers = next?.t === 'matchers' ? next.m : [];
      if (next?.t === 'matchers') skip.add(i + 1);
      selectorAt.set(i, { name: tok.v, matchers });
      continue;
    }
    if (tok.t === 'matchers') {
      const nameMatcher = tok.m.find((m) => m.label === '__name__' && m.op === '=');
      selectorAt.set(i, { name: nameMatcher?.value ?? null, matchers: tok.m.filter((m) => m !== nameMatcher) });
    }
  }
  const within = (from: number, to: number): Selector[] =>
    [...selectorAt].filter(([i]) => i > from && i < to).map(([, s]) => s);
  const groupings: Grouping[] = clauses.map((c) => {
    if (c.kind === 'by' || c.kind === 'without') {
      // `agg by (…) (args)` or `agg (args) by (…)`
      const before = tokens[c.at - 1];
      let argOpen: number;
      if (before?.t === 'ident' && AGGREGATIONS.has(before.v)) argOpen = c.listEnd + 1;
      else if (before?.t === ')') argOpen = parens.get(c.at - 1)!;
      else throw new PromqlSyntaxError(`${c.kind} (...) without an aggregation`);
      if (tokens[argOpen]?.t !== '(') throw new PromqlSyntaxError(`${c.kind} (...) without an argument list`);
      return { kind: c.kind, labels: c.labels, scope: within(argOpen, parens.get(argOpen)!) };
    }
    // innermost ( ) around the operator, else the whole expression
    let from = -1;
    let to = tokens.length;
    for (const [open, close] of parens) {
      if (open < close && open < c.at && close > c.at && open > from) {
        from = open;
        to = close;
      }
    }
    return { kind: c.kind, labels: c.labels, scope: within(from, to) };
  });
  return { selectors: [...selectorAt.values()], groupings, functions };
}

/** The metric names an expression selects (null names left out), sorted, unique. */
export function metricNames(expr: string): string[] {
  return [...new Set(analyze(expr).selectors.flatMap((s) => (s.name ? [s.name] : [])))].sort();
}

/**
 * The values a matcher can match when it is written as `=` "A" or `=~` "A|B|C"
 * of plain names; null for anything else (negative matchers, real regexes).
 */
export function literalValues(m: Matcher): string[] | null {
  if (m.op === '=') return [m.value];
  if (m.op === '=~' && /^[A-Za-z0-9_.:-]+(\|[A-Za-z0-9_.:-]+)*$/.test(m.value)) return m.value.split('|');
  return null;
}

// ---------------------------------------------------------------------------
// Checking expressions against the metrics a program exports.

export interface MetricInfo {
  /** label names the metric carries (not counting the scrape's target labels) */
  labels: ReadonlySet<string>;
  /** where it comes from, for messages: agent, controller, prometheus, a recording rule */
  source: string;
}

export type MetricCatalog = Map<string, MetricInfo>;

export interface CheckOptions {
  /** labels every scraped series gets from its target (job, instance, namespace, pod, …) */
  targetLabels: ReadonlySet<string>;
  /** the values a label may take on a metric, where they are a known set (undefined: any) */
  domain?: (metric: string, label: string) => ReadonlySet<string> | undefined;
  /** more checks on one selector (e.g. event_type consistent with system) */
  selector?: (sel: Selector) => string[];
}

/** What is wrong with an expression: unknown metrics, labels or values. Empty when nothing. */
export function checkExpr(expr: string, catalog: MetricCatalog, opts: CheckOptions): string[] {
  let refs: PromqlRefs;
  try {
    refs = analyze(expr);
  } catch (err) {
    return [`does not parse: ${(err as Error).message}`];
  }
  const problems: string[] = [];
  const labelsOf = (s: Selector): ReadonlySet<string> | null => (s.name === null ? null : catalog.get(s.name)?.labels ?? null);
  const has = (s: Selector, label: string): boolean => opts.targetLabels.has(label) || (labelsOf(s)?.has(label) ?? false);
  if (refs.selectors.length === 0) problems.push('selects no metric');
  for (const s of refs.selectors) {
    if (s.name === null) {
      problems.push(`a selector without a metric name: {${s.matchers.map((m) => m.label).join(',')}}`);
      continue;
    }
    if (!catalog.has(s.name)) {
      problems.push(`unknown metric ${s.name}`);
      continue;
    }
    for (const m of s.matchers) {
      if (!has(s, m.label)) {
        problems.push(`${s.name} has no label ${m.label}`);
        continue;
      }
      const dom = opts.domain?.(s.name, m.label);
      if (!dom) continue;
      const values = literalValues(m);
      if (values === null) {
        problems.push(`${s.name}{${m.label}${m.op}"${m.value}"}: write = "A" or =~ "A|B" of plain values for a label with a known value set`);
        continue;
      }
      for (const v of values) if (!dom.has(v)) problems.push(`${s.name}{${m.label}="${v}"}: ${m.label} is never "${v}"`);
    }
    problems.push(...(opts.selector?.(s) ?? []));
  }
  for (const g of refs.groupings) {
    const known = g.scope.filter((s) => labelsOf(s) !== null);
    if (g.labels.length > 0 && g.scope.length === 0) problems.push(`${g.kind} (${g.labels.join(', ')}) applies to no metric`);
    for (const l of g.labels) {
      if (g.kind === 'by' || g.kind === 'without') {
        for (const s of known) if (!has(s, l)) problems.push(`${g.kind} (${l}): ${s.name} has no label ${l}`);
      } else if (known.length > 0 && !known.some((s) => has(s, l))) {
        problems.push(`${g.kind} (${l}): no metric in scope has label ${l}`);
      }
    }
  }
  return problems;
}

/**
 * The catalog entries of a prom-client registry: every metric with its label
 * names; histograms and summaries as the series Prometheus scrapes
 * (_bucket with le, _sum, _count; quantile on a summary).
 */
export function catalogOf(metrics: readonly object[], source: string, into: MetricCatalog = new Map()): MetricCatalog {
  for (const m of metrics) {
    if (!('name' in m) || typeof m.name !== 'string') throw new Error('not a prom-client metric');
    const labelNames = 'labelNames' in m && Array.isArray(m.labelNames) ? m.labelNames.filter((l): l is string => typeof l === 'string') : [];
    const type = 'type' in m && typeof m.type === 'string' ? m.type : '';
    const labels = new Set(labelNames);
    const add = (name: string, extra: string[] = []) => into.set(name, { labels: new Set([...labels, ...extra]), source });
    if (type === 'histogram') {
      add(`${m.name}_bucket`, ['le']);
      add(`${m.name}_sum`);
      add(`${m.name}_count`);
    } else if (type === 'summary') {
      add(m.name, ['quantile']);
      add(`${m.name}_sum`);
      add(`${m.name}_count`);
    } else {
      add(m.name);
    }
  }
  return into;
}

// ---------------------------------------------------------------------------
// The metrics peripety really exports, built the way the programs build them.

export interface ExportedRegistries {
  /** `peripety agent` (and `peripety receive`): AgentMetrics' registry with every module's metrics on it */
  agent: Registry;
  /** `peripety controller`: ControllerMetrics' own registry (with prom-client's default process metrics) */
  controller: Registry;
}

/**
 * The agent's registry as `peripety agent` fills it: AgentMetrics, the
 * StorageManager's metrics, the device-errors receiver, the journald/webhook,
 * multicast, udev, k8s-events and stream metrics, the API server's
 * connection and request refusals, and the control API's TokenReview
 * counters (Kubernetes mode) — each created through the code's own
 * per-registry factory or constructor. A client that is never called stands
 * in for the API server.
 */
export function exportedRegistries(): ExportedRegistries {
  const log = silentLogger();
  const agent = new AgentMetrics();
  const r = agent.registry;
  StorageMetrics.forRegistry(r);
  deviceErrors(r);
  receiverMetrics(r);
  senderMetrics(r);
  listenerMetrics(r);
  udevMetrics(r);
  const unused = (): never => {
    throw new Error('no API server in this test');
  };
  const client = { request: unused } as unknown as KubeClient;
  new K8sEventsReceiver('k8s-events', K8sEventsOptions.parse({ node_name: 'n1' }), 100, { log, metrics: agent, client });
  new TokenReviewAuthenticator({ client: { request: unused }, log, registry: r });
  new EventStreamHub({ registry: r });
  apiServerMetrics(r);
  const controller = new ControllerMetrics(() => 0, () => 0, () => false);
  return { agent: r, controller: controller.registry };
}

/** Labels the PodMonitor/ServiceMonitor scrape adds to every series (the chart's PodMonitor adds `node`). */
export const TARGET_LABELS: ReadonlySet<string> = new Set(['job', 'instance', 'namespace', 'pod', 'container', 'endpoint', 'service', 'node']);

/** The catalog of everything scraped from peripety, plus Prometheus' own `up`. */
export function exportedCatalog(regs: ExportedRegistries = exportedRegistries()): MetricCatalog {
  const c: MetricCatalog = new Map();
  catalogOf(regs.agent.getMetricsAsArray(), 'agent', c);
  catalogOf(regs.controller.getMetricsAsArray(), 'controller', c);
  c.set('up', { labels: new Set(), source: 'prometheus' });
  return c;
}

// ---------------------------------------------------------------------------
// Label values that are fixed sets in the code.

/** The k8s-events receiver's write results (the type checks each one is a real WriteResult). */
const K8S_WRITE_RESULTS = ['ok', 'conflict', 'not_found', 'rejected', 'error'] as const satisfies readonly K8sWriteResult[];
/** src/controller/controller.ts reconcile(): result 'success', or 'error' when the reconcile threw. */
const RECONCILE_RESULTS = ['success', 'error'];

/** Label values that are fixed sets in the code. */
function domain(metric: string, label: string): ReadonlySet<string> | undefined {
  if (label === 'event_type') return new Set(EVENT_TYPES);
  if (label === 'system') return new Set(SYSTEMS);
  if (label === 'severity' && metric.includes('peripety_events')) return new Set(SEVERITIES);
  if (label === 'result') {
    if (metric === 'peripety_backend_writes_total') return new Set(WRITE_RESULTS);
    if (metric === 'peripety_k8s_event_writes_total') return new Set(K8S_WRITE_RESULTS);
    if (metric === 'peripety_webhook_requests_total') return new Set(WEBHOOK_RESULTS);
    if (metric.startsWith('peripety_controller_reconcile')) return new Set(RECONCILE_RESULTS);
  }
  return undefined;
}

/** An event_type matcher next to a system matcher must name types of that system. */
function consistentSystem(sel: Selector): string[] {
  const sys = sel.matchers.find((m) => m.label === 'system');
  const types = sel.matchers.find((m) => m.label === 'event_type');
  if (!sys || !types) return [];
  const systems = literalValues(sys);
  const names = literalValues(types);
  if (!systems || !names) return [];
  return names.filter((t) => isEventType(t) && !systems.includes(CATALOG[t].system))
    .map((t) => `${sel.name}: ${t} is a ${isEventType(t) ? CATALOG[t].system : '?'} event, not ${systems.join('|')}`);
}

export const CHECK: CheckOptions = { targetLabels: TARGET_LABELS, domain, selector: consistentSystem };

// ---------------------------------------------------------------------------
// Paths and constants of the chart's monitoring files.

export const ROOT = path.resolve(import.meta.dirname, '../..');
/** Where the rule file's runbook links point (templates/prometheusrule.yaml replaces it with runbookBaseUrl). */
export const DEFAULT_RUNBOOK_BASE = 'https://github.com/peripety/peripety/blob/main/docs/runbooks.md';

export function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
