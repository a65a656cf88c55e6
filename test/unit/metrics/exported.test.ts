// Metric names, types, help texts, label names and histogram buckets are an
// interface (docs/architecture.md "Metrics"): the chart's alerts and
// dashboard, and users' own, are written against them. This pins every metric
// `peripety agent` and `peripety controller` register, built the way the
// programs build them, to test/fixtures/metrics.txt. A change here is a
// breaking change for users: rename or re-type nothing; add a metric by adding
// its line.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Registry } from 'prom-client';
import { StorageHost } from '../../../src/agent/storage.ts';
import { AgentTokens } from '../../../src/controller/agent-tokens.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { exportedRegistries } from '../../helpers/promql.ts';

const FIXTURE = path.join(import.meta.dirname, '../../fixtures/metrics.txt');

interface Described {
  name: string;
  help: string;
  labelNames?: readonly string[];
  upperBounds?: readonly number[];
  get(): Promise<{ type: string }>;
}

async function describeAll(which: string, registry: Registry): Promise<string[]> {
  const out: string[] = [];
  for (const m of registry.getMetricsAsArray() as unknown as Described[]) {
    if (!m.name.startsWith('peripety_')) continue; // prom-client's process metrics are its own
    const { type } = await m.get();
    out.push(`${which} ${m.name} ${type} labels=${JSON.stringify(m.labelNames ?? [])} buckets=${JSON.stringify(m.upperBounds ?? null)} help=${JSON.stringify(m.help)}`);
  }
  return out;
}

describe('exported metrics', () => {
  it('every metric of the agent and the controller keeps its name, type, help, labels and buckets', async () => {
    const regs = exportedRegistries();
    new StorageHost({ log: silentLogger(), registry: regs.agent, stateDir: mkdtempSync(path.join(os.tmpdir(), 'prpt-metrics-')), hostname: 'n1' });
    new AgentTokens({ issue: () => Promise.reject(new Error('not called')), registry: regs.controller });
    const got = [...await describeAll('agent', regs.agent), ...await describeAll('controller', regs.controller)].sort();
    const want = readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l !== '');
    assert.deepEqual(got, want);
  });
});
