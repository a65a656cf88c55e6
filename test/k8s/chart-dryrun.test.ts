// The Helm chart against a real API server (test/helpers/envtest.ts): the
// chart rendered with `helm template` for the default values, every
// charts/peripety/ci/*.yaml and every optional object switched on, and each
// rendered object applied server-side with dryRun=All and strict field
// validation. The API server runs its full validation and admission on each
// one (the CRDs of charts/peripety/crds/ are installed, so the default
// StorageEventPlugins/StorageBackend are checked against their schemas too),
// without storing anything.
//
// ServiceMonitor/PodMonitor/PrometheusRule need the Prometheus Operator's
// CRDs: hack/monitoring-crds.sh takes them from the Go module proxy's zip of
// github.com/prometheus-operator/prometheus-operator. When that fails the
// monitoring objects are skipped LOUDLY (and counted as skipped), the rest is
// still checked.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ENVTEST_BUILD_TIMEOUT_MS, type Envtest, startEnvtest } from '../helpers/envtest.ts';
import { CHART_CRDS, helmBinary, isMonitoring, type KubeObject, monitoringCrdsDir, objectId, renderChart, valuesSets } from '../unit/packaging/chart.ts';

const sets = valuesSets();

describe('the Helm chart: every rendered object accepted by a real API server (server-side dry-run)', { timeout: ENVTEST_BUILD_TIMEOUT_MS + 600_000 }, () => {
  let env: Envtest;
  let helm: string;
  let monitoring: { dir: string } | { error: string };
  const totals = { accepted: 0, skipped: 0, sets: 0 };
  const kindsSeen = new Set<string>();

  before(async () => {
    helm = await helmBinary();
    env = await startEnvtest({ crdsDir: CHART_CRDS });
    try {
      const dir = await monitoringCrdsDir();
      await env.kubectl(['apply', '--server-side', '--field-manager=peripety-test', '-f', dir]);
      await env.kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', dir]);
      monitoring = { dir };
    } catch (e) {
      monitoring = { error: (e as Error).message };
      console.log(`# *** SKIPPING the monitoring.coreos.com objects: no Prometheus Operator CRDs (${(e as Error).message.split('\n')[0]}) ***`);
    }
  }, { timeout: ENVTEST_BUILD_TIMEOUT_MS });

  after(async () => {
    await env?.stop();
    console.log(`# ${totals.accepted} objects accepted over ${totals.sets} values sets, ${totals.skipped} skipped; kinds: ${[...kindsSeen].sort().join(', ')}`);
  });

  /** Server-side apply with dryRun=All: the server's verdict on one object. */
  const dryRun = async (o: KubeObject): Promise<string | null> => {
    try {
      const out = await env.kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=peripety-chart-test', '--validate=strict', '-o', 'json', '-f', '-'], { input: JSON.stringify(o) });
      const back = JSON.parse(out) as KubeObject;
      if (back.kind !== o.kind || back.metadata.name !== o.metadata.name) return `the server answered with ${objectId(back)}`;
      return null;
    } catch (e) {
      return (e as Error).message.split('\n').filter((l) => l.trim() !== '').slice(-3).join(' | ');
    }
  };

  for (const set of sets) {
    it(`values: ${set.name}`, async () => {
      const objects = await renderChart(helm, set.args);
      assert.ok(objects.length > 0, 'helm template rendered nothing');
      // Namespaces other than the release's that a values file points objects at
      // (e.g. the Grafana sidecar's for the dashboard) exist before any chart is
      // installed there: create them, as the cluster's owner would have.
      for (const ns of new Set(objects.map((o) => o.metadata.namespace).filter((n): n is string => !!n))) {
        const r = await env.request('GET', `/api/v1/namespaces/${ns}`);
        if (r.status === 404) {
          await env.kubectl(['create', 'namespace', ns]);
          console.log(`# values ${set.name} put objects in namespace ${ns}: created it first (helm does not)`);
        }
      }
      const failures: string[] = [];
      let accepted = 0;
      for (const o of objects) {
        if (isMonitoring(o) && 'error' in monitoring) {
          totals.skipped++;
          console.log(`# *** SKIPPED ${objectId(o)}: no Prometheus Operator CRDs on the server ***`);
          continue;
        }
        const err = await dryRun(o);
        if (err) failures.push(`${objectId(o)}: ${err}`);
        else {
          accepted++;
          kindsSeen.add(o.kind);
        }
      }
      totals.accepted += accepted;
      totals.sets++;
      console.log(`# values ${set.name}: ${accepted}/${objects.length} objects accepted (${[...new Set(objects.map((o) => o.kind))].join(', ')})`);
      assert.deepEqual(failures, [], `objects the API server refused (values ${set.name})`);
    });
  }

  it('the optional objects were among them: ServiceMonitor, PodMonitor, PrometheusRule, the dashboard ConfigMap, the Secret Role', async () => {
    const objects = await renderChart(helm, sets[sets.length - 1]!.args);
    const kinds = new Set(objects.map((o) => o.kind));
    for (const k of ['ServiceMonitor', 'PodMonitor', 'PrometheusRule', 'DaemonSet', 'Deployment', 'StorageEventPlugin', 'StorageBackend']) assert.ok(kinds.has(k), `no ${k} rendered`);
    assert.ok(objects.some((o) => o.kind === 'Role' && JSON.stringify(o).includes('"secrets"')), 'no Role for the named Secrets');
    assert.ok(objects.filter((o) => o.kind === 'ConfigMap').length >= 2, 'no dashboard ConfigMap');
  });

  it('the dry-run is a real check: the server refuses a broken object', async () => {
    const [ds] = (await renderChart(helm, [])).filter((o) => o.kind === 'DaemonSet');
    assert.ok(ds, 'no DaemonSet rendered');
    const broken = structuredClone(ds);
    (broken.spec as { template: { spec: { containers: { image?: string; name: string }[] } } }).template.spec.containers[0]!.image = '';
    assert.match(await dryRun(broken) ?? '(accepted)', /image|Required value/i);
    const unknownField = { ...structuredClone(ds), spec: { ...(ds.spec as object), notAField: 1 } };
    assert.match(await dryRun(unknownField) ?? '(accepted)', /notAField|unknown field/i);
    if (!('error' in monitoring)) {
      const [pm] = (await renderChart(helm, sets[sets.length - 1]!.args)).filter((o) => o.kind === 'PodMonitor');
      const badPm = structuredClone(pm!);
      (badPm.spec as { podMetricsEndpoints: { interval: string }[] }).podMetricsEndpoints[0]!.interval = 'every minute';
      assert.match(await dryRun(badPm) ?? '(accepted)', /interval/i, 'the PodMonitor CRD validates intervals');
    }
  });
});
