// values.schema.json refuses bad values at `helm template`/`install` time,
// with a message that names the value and says what is wrong: a table of bad
// values (each with the fragments Helm's message must contain), run through
// the real helm with --set or a values file. Good values of the same keys are
// accepted, so each row fails for the reason it states. The same table goes
// through the zod schema (src/generate/chart-values.ts), the source the JSON Schema is
// generated from, which must agree.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ChartValues } from '../../src/generate/chart-values.ts';
import { CHART, helm, helmBinary, HELM_BUILD_TIMEOUT_MS, templateRun } from './helm.ts';

interface BadValue {
  what: string;
  /** values (merged over the defaults, as a values file) */
  values: Record<string, unknown>;
  /** fragments of helm's message, all required */
  message: string[];
}

const BAD: BadValue[] = [
  { what: 'no controller replicas', values: { controller: { replicas: 0 } }, message: ["at '/controller/replicas'", 'minimum: got 0, want 1'] },
  { what: 'replicas as a word', values: { controller: { replicas: 'two' } }, message: ["at '/controller/replicas'", 'got string, want integer'] },
  { what: 'a misspelt key', values: { controller: { replica: 3 } }, message: ["at '/controller'", "additional properties 'replica' not allowed"] },
  { what: 'a misspelt top-level key', values: { defaultResource: { enabled: false } }, message: ["additional properties 'defaultResource' not allowed"] },
  { what: 'an unknown pull policy', values: { image: { pullPolicy: 'Sometimes' } }, message: ["at '/image/pullPolicy'", "value must be one of 'Always', 'IfNotPresent', 'Never'"] },
  { what: 'a port above 65535', values: { agent: { port: 70000 } }, message: ["at '/agent/port'", 'maximum'] },
  { what: 'Events in a namespace where Node Events are not allowed', values: { agent: { eventsNamespace: 'peripety-system' } }, message: ["at '/agent/eventsNamespace'", "value must be one of 'default', 'kube-system'"] },
  { what: 'a scrape interval that is not a Prometheus duration', values: { monitoring: { serviceMonitor: { interval: '30 seconds' } } }, message: ["at '/monitoring/serviceMonitor/interval'", "'30 seconds' does not match pattern"] },
  { what: 'a unicast address as the multicast group', values: { agent: { multicast: { group: '10.0.0.1' } } }, message: ["at '/agent/multicast/group'", "'10.0.0.1' does not match pattern"] },
  { what: 'a Secret name that is not a DNS name', values: { agent: { secretNames: ['Bad_Name'] } }, message: ["at '/agent/secretNames/0'", "'Bad_Name' does not match pattern"] },
  { what: 'a label key with a space', values: { commonLabels: { 'bad key': 'x' } }, message: ["at '/commonLabels'", "additional properties 'bad key' not allowed"] },
  { what: 'a label value with a space', values: { controller: { podLabels: { team: 'has space' } } }, message: ["at '/controller/podLabels/team'", "'has space' does not match pattern"] },
  { what: 'an unknown toleration operator', values: { agent: { tolerations: [{ operator: 'Maybe' }] } }, message: ["at '/agent/tolerations/0/operator'", "value must be one of 'Exists', 'Equal'"] },
  { what: 'a parser that does not exist', values: { defaultResources: { parsers: ['scsi', 'zfs'] } }, message: ["at '/defaultResources/parsers/1'", "value must be one of 'scsi'"] },
  { what: 'a device plugin resource without a domain', values: { agent: { kmsgDeviceResource: 'kmsg' } }, message: ["at '/agent/kmsgDeviceResource'", "'kmsg' does not match pattern"] },
  { what: 'a truncated image digest', values: { image: { digest: 'sha256:abc' } }, message: ["at '/image/digest'", "'sha256:abc' does not match pattern"] },
  { what: 'a memory limit that is not a quantity', values: { agent: { resources: { limits: { memory: 'lots' } } } }, message: ["at '/agent/resources/limits/memory'", "'lots' does not match pattern"] },
  { what: 'a misspelt resource name', values: { agent: { resources: { limits: { memry: '1Gi' } } } }, message: ["at '/agent/resources/limits'", "additional properties 'memry' not allowed"] },
  { what: 'a quoted "true" for a boolean', values: { dashboard: { enabled: 'true' } }, message: ["at '/dashboard/enabled'", 'got string, want boolean'] },
  { what: 'a relative host state directory', values: { agent: { hostStateDir: 'var/lib/peripety' } }, message: ["at '/agent/hostStateDir'", "'var/lib/peripety' does not match pattern"] },
  { what: 'maxUnavailable 0 (the rollout could never start)', values: { agent: { maxUnavailable: 0 } }, message: ["at '/agent/maxUnavailable'", 'minimum: got 0, want 1'] },
  { what: 'a misspelt affinity kind', values: { controller: { affinity: { nodeAfinity: {} } } }, message: ["at '/controller/affinity'", "additional properties 'nodeAfinity' not allowed"] },
  { what: 'no sqlite filter', values: { defaultResources: { sqlite: { filters: [] } } }, message: ["at '/defaultResources/sqlite/filters'", 'minItems'] },
  { what: 'a runbook URL that is not http(s)', values: { monitoring: { prometheusRule: { runbookBaseUrl: 'docs/runbooks.md' } } }, message: ["at '/monitoring/prometheusRule/runbookBaseUrl'", 'does not match pattern'] },
  { what: 'a dashboard namespace that is not a name', values: { dashboard: { namespace: 'Monitoring' } }, message: ["at '/dashboard/namespace'", "'Monitoring' does not match pattern"] },
  { what: 'agent token lifetime below the API server minimum (10 min)', values: { controller: { agentTokenExpirationSeconds: 60 } }, message: ["at '/controller/agentTokenExpirationSeconds'", 'minimum: got 60, want 600'] },
];

/** The same keys with good values: accepted, so the rows above fail for their own reason. */
const GOOD: Record<string, unknown>[] = [
  { controller: { replicas: 1, podLabels: { team: 'storage' }, affinity: { nodeAffinity: {} }, agentTokenExpirationSeconds: 600 } },
  { image: { pullPolicy: 'Always', digest: `sha256:${'a'.repeat(64)}` } },
  { agent: { port: 19477, eventsNamespace: 'kube-system', multicast: { group: '239.1.2.3' }, secretNames: ['peripety-pg'], tolerations: [{ operator: 'Equal', key: 'k', value: 'v', effect: 'NoSchedule' }] } },
  { agent: { kmsgDeviceResource: 'smarter-devices/kmsg', resources: { limits: { memory: '1Gi', cpu: 2 } }, hostStateDir: '/srv/peripety', maxUnavailable: '10%' } },
  { commonLabels: { 'example.com/team': 'storage' }, monitoring: { serviceMonitor: { interval: '1m30s' }, prometheusRule: { runbookBaseUrl: 'https://wiki.example.com/runbooks' } } },
  { defaultResources: { parsers: ['scsi', 'nvme'], sqlite: { filters: ['.event.severity 2 LE'] } }, dashboard: { enabled: true, namespace: 'monitoring' } },
];

const tmp = mkdtempSync(path.join(os.tmpdir(), 'peripety-chart-values-'));
let n = 0;
function valuesFile(values: Record<string, unknown>): string {
  const file = path.join(tmp, `values-${n++}.yaml`);
  writeFileSync(file, stringify(values));
  return file;
}

describe('values.schema.json: bad values fail at install with a clear message', () => {
  before(async () => {
    await helmBinary();
  }, { timeout: HELM_BUILD_TIMEOUT_MS });

  it('has at least 10 bad values', () => {
    assert.ok(BAD.length >= 10, `${BAD.length} rows`);
  });

  for (const row of BAD) {
    it(`refuses ${row.what}`, async () => {
      const r = await templateRun({ files: [valuesFile(row.values)] });
      assert.notEqual(r.code, 0, `helm template accepted ${JSON.stringify(row.values)}`);
      assert.match(r.stderr, /values don't meet the specifications of the schema/);
      for (const f of row.message) assert.ok(r.stderr.includes(f), `helm's message has ${JSON.stringify(f)}:\n${r.stderr}`);
      // one problem, one message: nothing else in the row is wrong
      assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('- at ')).length, 1, r.stderr);
      // the zod source agrees
      assert.equal(ChartValues.safeParse(merge(row.values)).success, false, 'src/generate/chart-values.ts refuses it too');
    });
  }

  it('the same keys with good values are accepted (by helm and by the zod schema)', async () => {
    for (const values of GOOD) {
      const r = await templateRun({ files: [valuesFile(values)] });
      assert.equal(r.code, 0, `${JSON.stringify(values)}: ${r.stderr}`);
      const z = ChartValues.safeParse(merge(values));
      assert.ok(z.success, z.success ? '' : z.error.message);
    }
  });

  it('--set and helm lint report it the same way', async () => {
    const set = await templateRun({ set: ['controller.replicas=0'] });
    assert.notEqual(set.code, 0);
    assert.ok(set.stderr.includes("at '/controller/replicas': minimum: got 0, want 1"), set.stderr);
    const lint = await helm(['lint', CHART, '--set', 'image.pullPolicy=Sometimes']);
    assert.notEqual(lint.code, 0);
    assert.ok(`${lint.stdout}${lint.stderr}`.includes("at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'"), lint.stdout + lint.stderr);
  });
});

/** A values file merged over the defaults the way Helm merges (maps deep, everything else replaced). */
function merge(over: Record<string, unknown>, base: Record<string, unknown> = ChartValues.parse({}) as Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isMap(v) && isMap(b) ? merge(v, b) : v;
  }
  return out;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
