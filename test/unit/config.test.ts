import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_CONFIG_TOML } from '../../src/config/default.ts';
import { loadConfig } from '../../src/config/load.ts';
import { lookupPluginSchema } from '../../src/config/plugins.ts';
import { PARSER_NAMES } from '../../src/parsers/options.ts';

const load = (t: string) => loadConfig(t, lookupPluginSchema);

describe('configuration', () => {
  it('the embedded default has the kmsg collector, every parser and stdout', () => {
    const r = load(DEFAULT_CONFIG_TOML);
    assert.ok(r.ok, r.ok ? '' : r.error);
    const kinds = r.config.plugins.map((p) => `${p.type}:${p.plugin}`);
    assert.ok(kinds.includes('collector:kmsg'));
    assert.ok(kinds.includes('receiver:stdout'));
    for (const p of PARSER_NAMES) assert.ok(kinds.includes(`parser:${p}`), p);
    assert.equal(r.config.main.receiver_multicast_port, 6000);
  });
  it("reads the seed's file, with filer_* aliases and a warning", () => {
    const r = load(`[main]
receiver_bind_ip = "127.0.0.1"
receiver_multicast_ip = "239.0.0.1"
receiver_multicast_port = "6000"

[kmsg]
type = "collector"

[mpath]
type = "parser"
plugin = "multipath"
filer_system = "dm"
filer_type = "raw"

[jounal]
type = "receiver"
plugin = "stdout"
`);
    assert.ok(r.ok, r.ok ? '' : r.error);
    const mpath = r.config.plugins.find((p) => p.name === 'mpath')!;
    assert.deepEqual(mpath.filterSystems, ['dm']);
    assert.equal(mpath.filterType, 'raw');
    assert.equal(r.config.warnings.length, 1);
    assert.match(r.config.warnings[0]!, /\[mpath\].*filer_system/);
  });
  const bad: [string, string, RegExp][] = [
    ['TOML syntax', '[kmsg\ntype="collector"', /TOML syntax error at line 1/],
    ['missing type', '[kmsg]\nstart = "end"', /\[kmsg\] type: missing/],
    ['wrong type', '[kmsg]\ntype = "sink"', /\[kmsg\] type: must be one of "collector", "parser", "receiver"/],
    ['unknown plugin', '[x]\ntype = "parser"', /\[x\] plugin: no parser plugin named "x".*plugin defaults to the section name/],
    ['bad option value', '[kmsg]\ntype = "collector"\nstart = "middle"', /\[kmsg\] start: must be one of "resume", "end", "beginning"/],
    ['unknown key', '[kmsg]\ntype = "collector"\nstrat = "end"', /\[kmsg\] "strat": unknown key/],
    ['bad port', '[main]\nreceiver_multicast_port = "60000000"', /\[main\] receiver_multicast_port: must be a port number/],
    ['bad ip', '[main]\nreceiver_multicast_ip = "239.0.0.300"', /\[main\] receiver_multicast_ip: must be an IP address/],
    ['unknown main key', '[main]\nfoo = 1', /\[main\] "foo": unknown key/],
    ['filter on a receiver', '[stdout]\ntype = "receiver"\nfilter_system = "fs"', /only parsers take filters/],
    ['bad filter system', '[scsi]\ntype = "parser"\nfilter_system = "net"', /\[scsi\] filter_system/],
    ['plain key', 'kmsg = 1', /"kmsg" must be a section/],
    ['relative path', '[main]\nstate_dir = "var/lib"', /\[main\] state_dir: must be an absolute path/],
    ['bad stdout format', '[out]\ntype = "receiver"\nplugin = "stdout"\nformat = "xml"', /\[out\] format: must be one of "text", "json"/],
  ];
  for (const [name, text, want] of bad) {
    it(`rejects ${name} naming section, key and reason`, () => {
      const r = load(text);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.error, want);
    });
  }
});
