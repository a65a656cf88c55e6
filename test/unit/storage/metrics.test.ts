// Backend counters exist at 0 from the backend's start: Prometheus'
// increase() cannot see the first step of a series that appears already at
// 1, so the chart's "backend failing/dropping" alerts would miss a backend's
// first failure otherwise.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { StorageMetrics } from '../../../src/storage/metrics.ts';

describe('StorageMetrics', () => {
  it('a backend\'s write, drop and filter-error series start at 0, before anything happened', async () => {
    const metrics = new StorageMetrics(new Registry());
    metrics.backend('pg');
    const text = await metrics.registry.metrics();
    for (const result of ['ok', 'failed', 'spooled', 'dropped']) {
      assert.match(text, new RegExp(`^peripety_backend_writes_total\\{backend="pg",result="${result}"\\} 0$`, 'm'));
    }
    assert.match(text, /^peripety_backend_dropped_events_total\{backend="pg"\} 0$/m);
    assert.match(text, /^peripety_backend_filter_errors_total\{backend="pg",kind="compile"\} 0$/m);
    assert.match(text, /^peripety_backend_filter_errors_total\{backend="pg",kind="eval"\} 0$/m);
  });

  it('counts on top of the zero series, per backend', async () => {
    const metrics = new StorageMetrics(new Registry());
    metrics.backend('a').failed(2);
    metrics.backend('a').dropped(3);
    metrics.backend('b');
    const text = await metrics.registry.metrics();
    assert.match(text, /^peripety_backend_writes_total\{backend="a",result="failed"\} 2$/m);
    assert.match(text, /^peripety_backend_dropped_events_total\{backend="a"\} 3$/m);
    assert.match(text, /^peripety_backend_writes_total\{backend="b",result="failed"\} 0$/m);
  });
});
