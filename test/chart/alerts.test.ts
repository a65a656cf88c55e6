// The chart's alerting rules (charts/peripety/files/prometheus-rules.yaml, the
// PrometheusRule template) against what the code really exports: every metric,
// label name and label value an expression uses must exist in the registries
// the agent and the controller build (test/helpers/promql.ts builds them the
// same way), every alert must carry its annotations and a runbook anchor that
// exists in docs/runbooks.md, and `helm template` must render the file's groups.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { z } from 'zod';
import {
  analyze, CHECK, checkExpr, DEFAULT_RUNBOOK_BASE, exportedCatalog, exportedRegistries, literalValues, type MetricCatalog, ROOT, TARGET_LABELS,
} from '../helpers/promql.ts';
import { helmBinary, template } from './helm.ts';

const RULES_FILE = path.join(ROOT, 'charts/peripety/files/prometheus-rules.yaml');
const RUNBOOKS = path.join(ROOT, 'docs/runbooks.md');

const Labels = z.record(z.string(), z.string());
const RecordingRule = z.strictObject({ record: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/), expr: z.string(), labels: Labels.optional() });
const Duration = z.string().regex(/^([0-9]+(ms|[smhdwy]))+$/);
const AlertingRule = z.strictObject({
  alert: z.string().regex(/^[A-Za-z][A-Za-z0-9]*$/),
  expr: z.string(),
  for: Duration.optional(),
  keep_firing_for: Duration.optional(),
  labels: Labels.optional(),
  annotations: Labels.optional(),
});
const Rule = z.union([RecordingRule, AlertingRule]);
const RuleGroup = z.strictObject({ name: z.string(), interval: Duration.optional(), limit: z.number().optional(), rules: z.array(Rule).min(1) });
const RuleFile = z.strictObject({ groups: z.array(RuleGroup).min(1) });
type RuleFile = z.infer<typeof RuleFile>;
type AlertingRule = z.infer<typeof AlertingRule>;

const rulesText = readFileSync(RULES_FILE, 'utf8');
const ruleFile: RuleFile = RuleFile.parse(parse(rulesText));
const rules = ruleFile.groups.flatMap((g) => g.rules);
const alerts = rules.filter((r): r is AlertingRule => 'alert' in r);

/** The exported metrics plus this file's recording rules (labels: those of the metrics they read). */
function catalogWithRecords(base: MetricCatalog): MetricCatalog {
  const c: MetricCatalog = new Map(base);
  for (const r of rules) {
    if (!('record' in r)) continue;
    const labels = new Set<string>();
    for (const s of analyze(r.expr).selectors) for (const l of (s.name && c.get(s.name)?.labels) || []) labels.add(l);
    for (const l of Object.keys(r.labels ?? {})) labels.add(l);
    c.set(r.record, { labels, source: `recording rule ${r.record}` });
  }
  return c;
}

/**
 * The labels an alert's result carries, roughly: those of every metric it
 * reads and the target labels, less what `without` drops; an aggregation by
 * (…) over every selector keeps only its labels.
 */
function resultLabels(expr: string, catalog: MetricCatalog): Set<string> {
  const refs = analyze(expr);
  let labels = new Set<string>(TARGET_LABELS);
  for (const s of refs.selectors) for (const l of (s.name && catalog.get(s.name)?.labels) || []) labels.add(l);
  for (const g of refs.groupings) {
    if (g.kind === 'without') for (const l of g.labels) labels.delete(l);
    if (g.kind === 'by' && g.scope.length === refs.selectors.length) labels = new Set(g.labels.filter((l) => labels.has(l)));
  }
  return labels;
}

function githubSlug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

const runbookText = readFileSync(RUNBOOKS, 'utf8');
const runbookAnchors = new Set(runbookText.split('\n').flatMap((l) => {
  const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(l);
  return m ? [githubSlug(m[1]!)] : [];
}));

describe('prometheus-rules.yaml: a Prometheus rule file', () => {
  it('parses as rule groups; group and alert names are unique', () => {
    assert.ok(alerts.length >= 10, `only ${alerts.length} alerts`);
    const groups = ruleFile.groups.map((g) => g.name);
    assert.equal(new Set(groups).size, groups.length, 'duplicate group name');
    const names = alerts.map((a) => a.alert);
    assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), [], 'duplicate alert names');
    for (const n of names) assert.match(n, /^Peripety/, `${n}: alert names start with Peripety`);
  });

  it('every metric, label and label value used is one the agent or the controller registers', async () => {
    const regs = exportedRegistries();
    // what the registries expose is what they serialize
    for (const reg of [regs.agent, regs.controller]) {
      const json = (await reg.getMetricsAsJSON()).map((m) => m.name).sort();
      assert.deepEqual(reg.getMetricsAsArray().map((m) => m.name).sort(), json);
    }
    const catalog = catalogWithRecords(exportedCatalog(regs));
    const problems = rules.flatMap((r) => checkExpr(r.expr, catalog, CHECK).map((p) => `${'alert' in r ? r.alert : r.record}: ${p}`));
    assert.deepEqual(problems, []);
  });

  it('the check catches misspelt metrics, labels and values (it can fail)', () => {
    const catalog = catalogWithRecords(exportedCatalog());
    const bad: [string, RegExp][] = [
      ['rate(peripety_event_total[5m]) > 1', /unknown metric peripety_event_total/],
      ['increase(peripety_kmsg_lost_record_total[15m]) > 0', /unknown metric/],
      ['sum by (devcie) (rate(peripety_device_errors_total[5m]))', /has no label devcie/],
      ['sum without (plugin) (rate(peripety_receiver_dropped_events_total[5m]))', /has no label plugin/],
      ['peripety_events_total{event_type="DISK_FAILED"}', /never "DISK_FAILED"/],
      ['peripety_events_total{event_type=~"MD_DISK_FAILURE|MD_ARRAY_DEGARDED"}', /never "MD_ARRAY_DEGARDED"/],
      ['peripety_events_total{event_type=~"MD_.*"}', /plain values/],
      ['peripety_events_total{system="raid"}', /never "raid"/],
      ['peripety_events_total{system="scsi", event_type="NVME_CONTROLLER_RESET"}', /nvme event, not scsi/],
      ['peripety_events_total{sevrity="error"}', /has no label sevrity/],
      ['rate(peripety_backend_writes_total{result="error"}[5m])', /never "error"/],
      ['rate(peripety_controller_reconciles_total{result="failed"}[5m])', /never "failed"/],
      ['histogram_quantile(0.9, rate(peripety_parse_duration_seconds[5m]))', /unknown metric peripety_parse_duration_seconds$/],
      ['instance:peripety_events:increase5m > 0', /unknown metric/],
      ['(up == 0) and on (jbo) peripety_config_generation', /on \(jbo\)/],
    ];
    for (const [expr, want] of bad) {
      const problems = checkExpr(expr, catalog, CHECK);
      assert.ok(problems.some((p) => want.test(p)), `${expr}: expected a problem matching ${want}, got ${JSON.stringify(problems)}`);
    }
    // and the good forms pass
    for (const expr of [
      'histogram_quantile(0.9, sum by (le) (rate(peripety_parse_duration_seconds_bucket[5m])))',
      'peripety_events_total{system="nvme", event_type=~"NVME_CONTROLLER_RESET|NVME_IO_TIMEOUT"}',
      'max by (job) (peripety_controller_leader) == 0',
    ]) assert.deepEqual(checkExpr(expr, catalog, CHECK), [], expr);
  });

  it('every alert has a severity, a summary, a description and a runbook_url whose anchor is in docs/runbooks.md', () => {
    const catalog = catalogWithRecords(exportedCatalog());
    for (const a of alerts) {
      assert.ok(['critical', 'warning', 'info'].includes(a.labels?.severity ?? ''), `${a.alert}: severity label critical|warning|info`);
      const ann = a.annotations ?? {};
      for (const k of ['summary', 'description', 'runbook_url']) assert.ok((ann[k] ?? '').trim().length > 0, `${a.alert}: annotation ${k}`);
      const url = ann.runbook_url!;
      assert.ok(url.startsWith(`${DEFAULT_RUNBOOK_BASE}#`), `${a.alert}: runbook_url ${url} is ${DEFAULT_RUNBOOK_BASE}#<anchor>`);
      const anchor = url.slice(DEFAULT_RUNBOOK_BASE.length + 1);
      assert.equal(anchor, a.alert.toLowerCase(), `${a.alert}: anchor is the alert name`);
      assert.ok(runbookAnchors.has(anchor), `${a.alert}: docs/runbooks.md has no heading for #${anchor}`);
      // annotation templates: balanced, and only labels the alert's result has
      const labels = resultLabels(a.expr, catalog);
      for (const [k, text] of Object.entries(ann)) {
        assert.equal(text.split('{{').length, text.split('}}').length, `${a.alert}.${k}: unbalanced {{ }}`);
        for (const m of text.matchAll(/\$labels\.([A-Za-z_][A-Za-z0-9_]*)/g)) {
          assert.ok(labels.has(m[1]!), `${a.alert}.${k}: $labels.${m[1]} is not a label of the alert (has ${[...labels].sort().join(', ')})`);
        }
      }
    }
  });

  it('every Peripety* section of docs/runbooks.md belongs to an alert', () => {
    const names = new Set(alerts.map((a) => a.alert.toLowerCase()));
    const sections = [...runbookAnchors].filter((s) => s.startsWith('peripety') && /^peripety[a-z0-9]+$/.test(s));
    assert.deepEqual(sections.filter((s) => !names.has(s)), [], 'runbook sections without an alert');
  });

  it('covers what issue 6 asks for', () => {
    const used = new Set(alerts.flatMap((a) => analyze(a.expr).selectors.flatMap((s) => [
      ...(s.name ? [s.name] : []),
      ...s.matchers.filter((m) => m.label === 'event_type').flatMap((m) => literalValues(m) ?? []),
    ])));
    const want = [
      // disks and paths
      'SCSI_MEDIUM_ERROR', 'SCSI_DEVICE_OFFLINE', 'NVME_DEVICE_REMOVED', 'DM_MPATH_PATH_FAILED', 'DM_MPATH_QUEUE_TIMEOUT',
      'instance:peripety_device_errors:increase15m',
      // arrays, filesystems, NVMe resets
      'MD_DISK_FAILURE', 'MD_ARRAY_DEGRADED', 'FS_REMOUNT_READ_ONLY', 'FS_SHUTDOWN', 'NVME_CONTROLLER_RESET',
      // storms and lost records, agents, backends, controller
      'peripety_events_total', 'peripety_kmsg_lost_records_total', 'peripety_kernel_suppressed_messages_total', 'up',
      'peripety_backend_writes_total', 'peripety_controller_push_failures_total',
    ];
    assert.deepEqual(want.filter((w) => !used.has(w)), []);
  });

  it('the increase rules add first occurrences: a counter series new in the window counts', () => {
    // increase() cannot see a series appear at 1; the recording rules must add "new series" (unless … offset).
    for (const r of rules) {
      if (!('record' in r) || !r.record.includes(':increase')) continue;
      assert.match(r.expr, /unless max_over_time\(/, `${r.record}: also counts series that are new in the window`);
    }
  });
});

describe('templates/prometheusrule.yaml', () => {
  it('renders the file\'s groups as a PrometheusRule when enabled (runbook URLs moved to runbookBaseUrl), nothing by default', { timeout: 20 * 60_000 }, async (t) => {
    try {
      await helmBinary();
    } catch (err) {
      t.skip(`no helm: ${(err as Error).message.slice(0, 500)}`);
      return;
    }
    const rulesOf = async (set: string[]) => (await template({ set })).filter((o) => o.kind === 'PrometheusRule');

    assert.deepEqual(await rulesOf([]), [], 'no PrometheusRule with default values');

    const [rule, ...more] = await rulesOf(['monitoring.prometheusRule.enabled=true', 'monitoring.prometheusRule.labels.release=kube-prometheus']);
    assert.equal(more.length, 0);
    const pr = z.looseObject({
      apiVersion: z.literal('monitoring.coreos.com/v1'),
      metadata: z.looseObject({ name: z.string(), namespace: z.literal('peripety-system'), labels: z.record(z.string(), z.string()) }),
      spec: RuleFile,
    }).parse(rule);
    assert.equal(pr.metadata.labels.release, 'kube-prometheus', 'labels from monitoring.prometheusRule.labels');
    assert.equal(pr.metadata.labels['app.kubernetes.io/managed-by'], 'Helm', 'the chart\'s common labels');
    assert.deepEqual(pr.spec, ruleFile, 'the groups of files/prometheus-rules.yaml, unchanged with the default runbookBaseUrl');

    const base = 'https://wiki.example.com/storage/peripety-runbooks';
    const moved = z.looseObject({ spec: RuleFile }).parse((await rulesOf(['monitoring.prometheusRule.enabled=true', `monitoring.prometheusRule.runbookBaseUrl=${base}`]))[0]);
    const expected = structuredClone(ruleFile);
    for (const r of expected.groups.flatMap((g) => g.rules)) {
      if ('alert' in r && r.annotations?.runbook_url) r.annotations.runbook_url = r.annotations.runbook_url.replace(`${DEFAULT_RUNBOOK_BASE}#`, `${base}#`);
    }
    assert.deepEqual(moved.spec, expected);
    const urls = moved.spec.groups.flatMap((g) => g.rules).flatMap((r) => ('alert' in r ? [r.annotations?.runbook_url ?? ''] : []));
    assert.ok(urls.length > 0 && urls.every((u) => u.startsWith(`${base}#peripety`)), urls.join(' '));
  });
});
