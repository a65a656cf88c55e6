// Issue 10 item 15: two kmsg collectors in one configuration used to read the
// kernel log twice (every record delivered twice) and share one saved
// position. Such a configuration is refused at load, at start and on reload,
// with an error naming both sections.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, parseAgentConfig } from '../../src/agent/agent.ts';
import { ROOT } from '../helpers/agent.ts';

const TWO = `[main]
api_listen = "off"
multicast = false

[kmsg]
type = "collector"
start = "end"

[kernel2]
type = "collector"
plugin = "kmsg"
start = "beginning"

[block]
type = "parser"

[out]
type = "receiver"
plugin = "stdout"
`;

describe('hostile: two kmsg collectors in one configuration', () => {
  it('the real agent refuses to start, names both sections and touches no position file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-hostile-2kmsg-'));
    const config = path.join(dir, 'agent.toml');
    writeFileSync(config, TWO);
    const stateDir = path.join(dir, 'state');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/peripety'), 'agent', '--config', config, '--state-dir', stateDir], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.signal, null, `the agent ran until killed; stderr:\n${r.stderr}`);
    assert.notEqual(r.status, 0, `exit status; stderr:\n${r.stderr}`);
    assert.match(r.stderr, /\[kmsg\], \[kernel2\] are all kmsg collectors, but only one may run/);
    assert.match(r.stderr, /deliver every record twice/);
    assert.equal(existsSync(path.join(stateDir, 'kmsg.position.json')), false, 'no position was written');
  });

  it('a reload with a second kmsg collector is refused (parseAgentConfig), a disabled second one is allowed', () => {
    assert.throws(() => parseAgentConfig(TWO, 'agent.toml'), (err: unknown) => err instanceof ConfigError && /^agent\.toml: config: \[kmsg\], \[kernel2\] are all kmsg collectors/.test(err.message));
    const one = parseAgentConfig(TWO.replace('plugin = "kmsg"\n', 'plugin = "kmsg"\nenabled = false\n'), 'agent.toml');
    assert.equal(one.plugins.filter((p) => p.plugin === 'kmsg').length, 2);
  });
});
