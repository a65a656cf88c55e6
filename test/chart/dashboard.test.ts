// The chart's Grafana dashboard (charts/peripety/files/dashboard.json, the
// dashboard ConfigMap template): it parses, every panel queries the
// ${datasource} variable, ids are unique, every query uses metrics, labels and
// label values the agent and the controller really export, agent panels follow
// the node variable, and `helm template` ships it in a ConfigMap for Grafana's
// sidecar only when asked.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { analyze, CHECK, checkExpr, exportedCatalog, isRecord, ROOT } from '../helpers/promql.ts';
import { helmBinary, template } from './helm.ts';

const DASHBOARD_FILE = path.join(ROOT, 'charts/peripety/files/dashboard.json');
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

const Datasource = z.object({ type: z.string(), uid: z.string() });
const Target = z.looseObject({ refId: z.string(), expr: z.string().min(1), datasource: Datasource.optional() });
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: z.infer<typeof Datasource>;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: z.infer<typeof Target>[];
  panels?: Panel[];
}
const Panel: z.ZodType<Panel> = z.lazy(() => z.looseObject({
  id: z.number().int(),
  type: z.string(),
  title: z.string(),
  datasource: Datasource.optional(),
  gridPos: z.object({ x: z.number().int().min(0), y: z.number().int().min(0), w: z.number().int().min(1).max(24), h: z.number().int().min(1) }),
  targets: z.array(Target).optional(),
  panels: z.array(Panel).optional(),
}));
const Variable = z.looseObject({ name: z.string(), type: z.string() });
const Dashboard = z.looseObject({
  uid: z.string().min(1),
  title: z.string().min(1),
  schemaVersion: z.number().int(),
  panels: z.array(Panel),
  templating: z.object({ list: z.array(Variable) }),
});

const dashboardText = readFileSync(DASHBOARD_FILE, 'utf8');
const dashboard = Dashboard.parse(JSON.parse(dashboardText));
const allPanels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queries = allPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

/** Grafana's interval and range macros, as Prometheus would see them. */
const grafanaExpr = (expr: string): string => expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m');

describe('dashboard.json', () => {
  it('parses; schemaVersion ≥ 39; a ${datasource} variable of type prometheus and a node variable from label values', () => {
    assert.ok(dashboard.schemaVersion >= 39, `schemaVersion ${dashboard.schemaVersion}`);
    const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    const ds = z.looseObject({ type: z.literal('datasource'), query: z.literal('prometheus') }).safeParse(vars.get('datasource'));
    assert.ok(ds.success, 'a datasource variable: {type: datasource, query: prometheus}');
    const node = z.looseObject({
      type: z.literal('query'),
      datasource: z.object({ type: z.literal('prometheus'), uid: z.literal('${datasource}') }),
      definition: z.string(),
      query: z.object({ query: z.string() }),
      includeAll: z.literal(true),
      multi: z.literal(true),
    }).parse(vars.get('node'));
    assert.equal(node.definition, node.query.query);
    const m = /^label_values\((.+),\s*node\)$/.exec(node.definition);
    assert.ok(m, `node variable: label_values(<agent metric>, node), got ${node.definition}`);
    const sel = analyze(m[1]!).selectors;
    assert.ok(sel.length === 1 && exportedCatalog().get(sel[0]!.name ?? '')?.source === 'agent', `${m[1]} is an agent metric`);
  });

  it('every panel and every query uses the ${datasource} variable; ids are unique; panels stay on the 24-column grid', () => {
    const ids = allPanels.map((p) => p.id);
    assert.deepEqual(ids.filter((id, i) => ids.indexOf(id) !== i), [], 'duplicate panel ids');
    for (const p of allPanels) {
      assert.deepEqual(p.datasource, DATASOURCE, `${p.title}: datasource`);
      for (const t of p.targets ?? []) assert.deepEqual(t.datasource ?? p.datasource, DATASOURCE, `${p.title} ${t.refId}: datasource`);
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title}: gridPos beyond 24 columns`);
      if (p.type !== 'row') assert.ok((p.targets ?? []).length > 0, `${p.title}: no query`);
      const refs = (p.targets ?? []).map((t) => t.refId);
      assert.equal(new Set(refs).size, refs.length, `${p.title}: duplicate refId`);
    }
    // no two panels overlap
    const cells = new Set<string>();
    for (const p of allPanels) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          const k = `${x},${y}`;
          assert.ok(!cells.has(k), `${p.title} overlaps another panel at ${k}`);
          cells.add(k);
        }
      }
    }
  });

  it('every query uses metrics, labels and label values the agent or the controller registers', () => {
    const catalog = exportedCatalog();
    const problems = queries.flatMap((q) => checkExpr(grafanaExpr(q.expr), catalog, CHECK).map((p) => `${q.panel}: ${p}`));
    assert.deepEqual(problems, []);
    // the check can fail: a misspelt metric in a Grafana-style query is caught
    assert.ok(checkExpr(grafanaExpr('sum by (node) (rate(peripety_event_total{node=~"$node"}[$__rate_interval]))'), catalog, CHECK).length > 0);
  });

  it('every agent metric is filtered by the node variable (node=~"$node")', () => {
    const catalog = exportedCatalog();
    const missing = queries.flatMap((q) => analyze(grafanaExpr(q.expr)).selectors
      .filter((s) => s.name !== null && catalog.get(s.name)?.source === 'agent')
      .filter((s) => !s.matchers.some((m) => m.label === 'node' && m.op === '=~' && m.value === '$node'))
      .map((s) => `${q.panel}: ${s.name}`));
    assert.deepEqual(missing, []);
  });

  it('shows what issue 6 asks for', () => {
    const used = new Set(queries.flatMap((q) => analyze(grafanaExpr(q.expr)).selectors.map((s) => s.name)));
    const want = [
      'peripety_events_total', 'peripety_device_errors_total', 'peripety_kmsg_lost_records_total', 'peripety_kernel_suppressed_messages_total',
      'peripety_backend_writes_total', 'peripety_backend_queue_depth', 'peripety_receiver_dropped_events_total', 'peripety_plugin_up',
      'peripety_config_generation', 'peripety_controller_reconciles_total', 'peripety_controller_push_failures_total',
    ];
    assert.deepEqual(want.filter((w) => !used.has(w)), []);
    const bySystemAndNode = queries.some((q) => analyze(q.expr).groupings.some((g) => g.kind === 'by' && g.labels.includes('node') && g.labels.includes('system')));
    assert.ok(bySystemAndNode, 'events by system per node');
  });
});

describe('templates/dashboard-configmap.yaml', () => {
  it('renders the dashboard in a ConfigMap for the Grafana sidecar when enabled, nothing by default', { timeout: 20 * 60_000 }, async (t) => {
    try {
      await helmBinary();
    } catch (err) {
      t.skip(`no helm: ${(err as Error).message.slice(0, 500)}`);
      return;
    }
    const ConfigMap = z.looseObject({
      kind: z.literal('ConfigMap'),
      metadata: z.looseObject({ name: z.string(), namespace: z.string(), labels: z.record(z.string(), z.string()) }),
      data: z.record(z.string(), z.string()),
    });
    const dashboards = (docs: unknown[]) => docs.flatMap((d) => {
      const cm = ConfigMap.safeParse(d);
      if (!cm.success) return [];
      const json = Object.values(cm.data.data).flatMap((v) => {
        try {
          const parsed: unknown = JSON.parse(v);
          return isRecord(parsed) && parsed.uid === dashboard.uid ? [parsed] : [];
        } catch {
          return [];
        }
      });
      return json.length > 0 ? [{ cm: cm.data, json: json[0]! }] : [];
    });

    assert.deepEqual(dashboards(await template()), [], 'no dashboard ConfigMap with default values');

    const [on, ...more] = dashboards(await template({ set: ['dashboard.enabled=true'] }));
    assert.ok(on, 'a ConfigMap with the dashboard');
    assert.equal(more.length, 0);
    assert.deepEqual(on.json, JSON.parse(dashboardText), 'the dashboard, unchanged');
    assert.equal(on.cm.metadata.namespace, 'peripety-system', 'the release namespace by default');
    assert.equal(on.cm.metadata.labels.grafana_dashboard, '1', 'the Grafana sidecar label by default');
    assert.equal(on.cm.metadata.labels['app.kubernetes.io/managed-by'], 'Helm', 'the chart\'s common labels');

    const [moved] = dashboards(await template({ set: ['dashboard.enabled=true', 'dashboard.namespace=monitoring', 'dashboard.labels.team=storage'] }));
    assert.ok(moved);
    assert.equal(moved.cm.metadata.namespace, 'monitoring', 'dashboard.namespace');
    assert.equal(moved.cm.metadata.labels.team, 'storage', 'dashboard.labels');
  });
});
