import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_STORAGE_CONFIG, isStorageConfig, parseStorageConfig } from '../../../src/storage/config.ts';

const wrap = (el: unknown) => ({ root: { elos: { EventLogging: el } } });
const one = (entry: unknown) => wrap({ Plugins: { local: entry } });

function err(input: unknown): string {
  const r = parseStorageConfig(input);
  assert.equal(r.ok, false, 'expected an error');
  return r.ok ? '' : r.error;
}

describe('storage configuration', () => {
  it('the embedded default: one local sqlite backend, Run always, everything', () => {
    const r = parseStorageConfig(DEFAULT_STORAGE_CONFIG);
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.deepEqual(r.config.backends, [{ name: 'local', file: 'sqlite', run: 'always', filters: ['1 1 EQ'], config: {} }]);
    assert.equal(r.config.pluginSearchPath, null);
    assert.ok(isStorageConfig(r.config));
    assert.equal(isStorageConfig({ ...r.config }), false);
  });

  it('reads the elos storage example from JSON text, in key order', () => {
    const r = parseStorageConfig(`{
      "root": { "elos": { "EventLogging": {
        "PluginSearchPath": "/usr/lib/peripety/backend",
        "Plugins": {
          "local": { "File": "sqlite", "Run": "always", "Filter": [".event.severity 3 LE"],
                     "Config": { "Path": "/var/lib/peripety/events.db", "MaxAgeDays": 30 } },
          "errors-to-pg": { "File": "postgres", "Run": "always",
                     "Filter": [".event.messageCode 6000 GE .event.messageCode 7000 LT AND"],
                     "Config": { "ConnectionSecret": "peripety-pg" } }
        }
      } } }
    }`);
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.equal(r.config.pluginSearchPath, '/usr/lib/peripety/backend');
    assert.deepEqual(r.config.backends.map((b) => b.name), ['local', 'errors-to-pg']);
    assert.deepEqual(r.config.backends[0]!.config, { Path: '/var/lib/peripety/events.db', MaxAgeDays: 30 });
  });

  it('defaults: Run always, Config {}, a missing Filter is kept apart from an empty one', () => {
    const r = parseStorageConfig(wrap({ Plugins: { a: { File: 'memory' }, b: { File: 'memory', Filter: [] } } }));
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.deepEqual(r.config.backends.map((b) => [b.run, b.filters, b.config]), [['always', null, {}], ['always', [], {}]]);
  });

  it('accepts an elosd file with its other sections (unknown keys under root and root.elos)', () => {
    const r = parseStorageConfig({ root: { elos: { UseEnv: false, Port: 54321, Scanner: {}, EventLogging: { Plugins: {} } }, other: 1 } });
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.deepEqual(r.config.backends, []);
  });

  it('elos backend names with upper case are accepted', () => {
    assert.ok(parseStorageConfig(wrap({ Plugins: { JsonBackend: { File: 'jsonl' }, SQL_Backend: { File: 'sqlite' } } })).ok);
  });

  const bad: [string, unknown, RegExp][] = [
    ['JSON syntax', '{"root":', /JSON syntax error/],
    ['not an object', 42, /\(the document\): Invalid input: expected object/],
    ['missing EventLogging', { root: { elos: {} } }, /root\.elos\.EventLogging: missing/],
    ['missing root', {}, /root: missing/],
    ['missing Plugins', wrap({}), /root\.elos\.EventLogging\.Plugins: missing/],
    ['bad Run', one({ File: 'sqlite', Run: 'sometimes' }), /Plugins\.local\.Run: must be one of "always", "never", "trigger"/],
    ['Filters typo', one({ File: 'sqlite', Filters: ['1 1 EQ'] }), /Plugins\.local: unknown key "Filters" \(the filter list is "Filter"\)/],
    ['unknown EventLogging key', wrap({ Plugins: {}, Plugin: {} }), /EventLogging: unknown key "Plugin"/],
    ['missing File', one({ Run: 'always' }), /Plugins\.local\.File: missing/],
    ['Filter not a list', one({ File: 'sqlite', Filter: '1 1 EQ' }), /Plugins\.local\.Filter: Invalid input: expected array/],
    ['Filter entry not a string', one({ File: 'sqlite', Filter: [1] }), /Plugins\.local\.Filter\.0: Invalid input: expected string/],
    ['Config not an object', one({ File: 'sqlite', Config: [] }), /Plugins\.local\.Config: Invalid input: expected record/],
    ['bad name', wrap({ Plugins: { 'a/b': { File: 'sqlite' } } }), /Plugins\.a\/b: backend names are 1-63/],
    ['name too long', wrap({ Plugins: { ['x'.repeat(64)]: { File: 'sqlite' } } }), /backend names are 1-63/],
    ['name with a dot', wrap({ Plugins: { '..': { File: 'sqlite' } } }), /backend names/],
    ['relative search path', wrap({ PluginSearchPath: 'lib/backends', Plugins: {} }), /PluginSearchPath: must be an absolute path/],
    ['too many backends', wrap({ Plugins: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`b${i}`, { File: 'memory' }])) }), /Plugins: at most 64 backends/],
    ['too many filters', one({ File: 'sqlite', Filter: Array.from({ length: 65 }, () => '1 1 EQ') }), /Filter: at most 64 filters per backend/],
    ['filter too long', one({ File: 'sqlite', Filter: ['1'.repeat(4097)] }), /Filter\.0: a filter is at most 4096 characters/],
    ['text too large', ' '.repeat(4 * 1024 * 1024 + 1), /larger than/],
  ];
  for (const [what, input, re] of bad) {
    it(`refuses: ${what}`, () => {
      assert.match(err(input), re);
    });
  }

  it('names at most five issues', () => {
    const e = err(wrap({ Plugins: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`b${i}`, { File: 1 }])) }));
    assert.match(e, /and 3 more/);
  });
});
