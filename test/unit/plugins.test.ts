// The plugin registries (src/contracts/plugin.ts): one shape for collectors,
// parsers, receivers and storage backends; the pure half (src/config/plugins.ts,
// src/storage/backends/options.ts) and the agent's half that builds (src/agent/plugins.ts,
// src/storage/backends/index.ts) name the same plugins with the same options schemas.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COLLECTOR_SPECS, PARSER_SPECS, RECEIVER_SPECS } from '../../src/agent/plugins.ts';
import { loadConfig } from '../../src/config/load.ts';
import { lookupPluginSchema, pluginNames, PLUGINS } from '../../src/config/plugins.ts';
import type { PluginInfo, Registry } from '../../src/contracts/plugin.ts';
import { pluginNamed } from '../../src/contracts/plugin.ts';
import { PARSERS } from '../../src/parsers/index.ts';
import { BACKEND_SPECS } from '../../src/storage/backends/index.ts';
import { BACKEND_PLUGINS } from '../../src/storage/backends/options.ts';

const pairs: [string, Registry<PluginInfo>, Registry<PluginInfo>][] = [
  ['collector', PLUGINS.collector, COLLECTOR_SPECS],
  ['parser', PLUGINS.parser, PARSER_SPECS],
  ['receiver', PLUGINS.receiver, RECEIVER_SPECS],
  ['backend', BACKEND_PLUGINS, BACKEND_SPECS],
];

describe('plugin registries', () => {
  for (const [kind, pure, built] of pairs) {
    it(`${kind}s: each is registered under its own name, with a description; the agent builds exactly these, with the same options`, () => {
      assert.ok(Object.keys(pure).length > 0);
      for (const [key, info] of Object.entries(pure)) {
        assert.equal(info.name, key);
        assert.ok(info.description.length > 0 && !info.description.includes('\n'), `${kind} ${key}: one line of description`);
      }
      assert.deepEqual(Object.keys(built), Object.keys(pure));
      for (const [key, spec] of Object.entries(built)) {
        assert.equal(spec.name, key);
        assert.equal(spec.options, pure[key]!.options, `${kind} ${key}: one options schema`);
        assert.equal(typeof (spec as { build?: unknown }).build, 'function');
      }
    });
  }

  it('a parser section builds the one shared parser of that name', () => {
    for (const name of Object.keys(PARSER_SPECS)) assert.equal(PARSER_SPECS[name]!.build(`my-${name}`, {}, undefined), PARSERS[name]);
  });

  it('looks names up as own keys only', () => {
    assert.equal(pluginNamed(PLUGINS.collector, 'toString'), undefined);
    assert.equal(lookupPluginSchema('receiver', 'constructor'), undefined);
    assert.equal(pluginNamed(BACKEND_PLUGINS, '__proto__'), undefined);
  });

  it('an unknown plugin in a configuration is reported with the known ones', () => {
    const r = loadConfig('[x]\ntype = "collector"\n', lookupPluginSchema, pluginNames);
    assert.ok(!r.ok);
    assert.match(r.error, /\[x\] plugin: no collector plugin named "x" \(plugin defaults to the section name; set plugin = "…"\); collectors: kmsg, udev$/);
  });
});
