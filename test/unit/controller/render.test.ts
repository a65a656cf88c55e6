import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageBackendSpec, StorageEventPluginSpec } from '../../../src/crd/schemas.ts';
import { renderNode } from '../../../src/controller/render.ts';
import { matchesSelector } from '../../../src/controller/selector.ts';
import { parseAgentConfig } from '../../../src/agent/agent.ts';
import { parseStorageConfig } from '../../../src/storage/config.ts';

const plugin = (name: string, spec: unknown) => ({ name, spec: StorageEventPluginSpec.parse(spec) });
const backend = (name: string, spec: unknown) => ({ name, spec: StorageBackendSpec.parse(spec) });

const PLUGINS = [
  plugin('kmsg', { type: 'collector', plugin: 'kmsg' }),
  plugin('mpath', { type: 'parser', plugin: 'multipath', nodeSelector: { matchLabels: { storage: 'san' } }, filter: { systems: ['dm'], types: ['raw'] } }),
  plugin('hook', { type: 'receiver', plugin: 'webhook', config: { url: 'http://alerts.example:9093/hook', format: 'alertmanager' }, nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] } }),
  plugin('quiet', { type: 'receiver', plugin: 'stdout', state: 'Stopped' }),
];
const BACKENDS = [
  backend('local', { backend: 'sqlite', filters: ['1 1 EQ'], config: { maxAgeDays: 7 } }),
  backend('errors', { backend: 'postgres', filters: ['.event.messageCode 6000 GE'], nodeSelector: { matchLabels: { storage: 'san' } }, config: { ConnectionString: 'postgres://u@db/x' } }),
];

describe('label selectors', () => {
  const labels = { storage: 'san', zone: 'a', gpu: '' };
  const cases: [unknown, boolean][] = [
    [undefined, true],
    [{}, true],
    [{ matchLabels: { storage: 'san' } }, true],
    [{ matchLabels: { storage: 'nas' } }, false],
    [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }, true],
    [{ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, false],
    [{ matchExpressions: [{ key: 'rack', operator: 'NotIn', values: ['x'] }] }, true],
    [{ matchExpressions: [{ key: 'gpu', operator: 'Exists' }] }, true],
    [{ matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist' }] }, false],
    [{ matchLabels: { storage: 'san' }, matchExpressions: [{ key: 'rack', operator: 'Exists' }] }, false],
  ];
  for (const [sel, want] of cases) {
    it(`${JSON.stringify(sel)} → ${want}`, () => {
      assert.equal(matchesSelector(labels, sel as Parameters<typeof matchesSelector>[1]), want);
    });
  }
});

describe('per-node rendering', () => {
  it('selects by labels and renders a TOML the agent accepts and a storage structure the manager accepts', () => {
    const r = renderNode({ name: 'n1', labels: { storage: 'san', zone: 'a' } }, PLUGINS, BACKENDS);
    assert.deepEqual(r.plugins, ['hook', 'kmsg', 'mpath', 'quiet']);
    assert.deepEqual(r.backends, ['errors', 'local']);
    const cfg = parseAgentConfig(`[main]\nstate_dir = "/tmp/x"\n${r.toml}`, 'rendered');
    const byName = new Map(cfg.plugins.map((p) => [p.name, p]));
    assert.equal(byName.get('mpath')?.plugin, 'multipath');
    assert.deepEqual(byName.get('mpath')?.filterSystems, ['dm']);
    assert.equal(byName.get('quiet')?.enabled, false);
    assert.equal(byName.get('hook')?.options.format, 'alertmanager');
    const s = parseStorageConfig(r.storage);
    assert.ok(s.ok, s.ok ? '' : s.error);
    assert.deepEqual(r.storage.root.elos.EventLogging.Plugins.local, { File: 'sqlite', Run: 'always', Filter: ['1 1 EQ'], Config: { MaxAgeDays: 7 } });
  });
  it('a node that matches less gets less', () => {
    const r = renderNode({ name: 'n2', labels: { zone: 'c' } }, PLUGINS, BACKENDS);
    assert.deepEqual(r.plugins, ['kmsg', 'quiet']);
    assert.deepEqual(r.backends, ['local']);
  });
  it('is deterministic: input order does not change the output or the hash; a change does', () => {
    const node = { name: 'n1', labels: { storage: 'san', zone: 'a' } };
    const a = renderNode(node, PLUGINS, BACKENDS);
    const b = renderNode(node, [...PLUGINS].reverse(), [...BACKENDS].reverse());
    assert.equal(a.toml, b.toml);
    assert.equal(a.hash, b.hash);
    const c = renderNode(node, PLUGINS, [BACKENDS[0]!, backend('errors', { backend: 'postgres', filters: ['.event.messageCode 6001 GE'], nodeSelector: { matchLabels: { storage: 'san' } } })]);
    assert.notEqual(a.hash, c.hash);
  });
  it('renders nothing for a node nothing selects', () => {
    const r = renderNode({ name: 'n3', labels: {} }, [PLUGINS[1]!], [BACKENDS[1]!]);
    assert.equal(r.toml, '');
    assert.deepEqual(r.storage.root.elos.EventLogging.Plugins, {});
  });
});
