// Issue 10 B7 (configuration part) and item 15 (messages): a configuration
// file with several mistakes reports every one of them at once; wrong enum
// or type values name what is allowed; `peripety controller` without a
// reachable cluster exits within seconds with a clear message instead of
// retrying "Invalid URL" forever.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { lookupPluginSchema } from '../../src/config/plugins.ts';
import { spawnPeripety, type Spawned } from '../helpers/spawn-agent.ts';

const running: Spawned[] = [];
after(async () => {
  for (const p of running) await p.kill();
});
const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-hostile-config-'));

function spawn(args: string[], env: NodeJS.ProcessEnv = process.env): Spawned {
  const p = spawnPeripety(args, env);
  running.push(p);
  return p;
}

describe('hostile: every configuration error at once (B7)', () => {
  it('reports all three independent errors of one file, and exits non-zero without starting', async (t) => {
    const file = path.join(dir, 'three.toml');
    writeFileSync(file, `[main]
api_listen = "127.0.0.1:99999"
log_level = "loud"

[kmsg]
type = "collector"
start = "sideways"

[out]
type = "receiver"
plugin = "stdout"
`);
    const p = spawn(['agent', '--config', file, '--state-dir', path.join(dir, 'state-three')]);
    const r = await p.exitWithin(10_000);
    const err = p.stderr();
    t.diagnostic(`exit ${JSON.stringify(r)}; stderr: ${err.split('\n')[0]}`);
    assert.ok(r !== null, `did not exit within 10 s; stderr:\n${err}`);
    assert.notEqual(r.code, 0);
    assert.match(err, /\[main\] api_listen: .*65535/, 'the port out of range');
    assert.match(err, /\[main\] log_level: must be one of .*"info"/, 'the log level');
    assert.match(err, /\[kmsg\] start: must be one of "resume", "end", "beginning"/, 'the kmsg start mode');
    assert.doesNotMatch(err, /agent started/);
  });
});

describe('hostile: wrong enum and type values name what is allowed (item 15)', () => {
  const error = (text: string): string => {
    const r = loadConfig(text, lookupPluginSchema);
    assert.equal(r.ok, false);
    return r.ok ? '' : r.error;
  };

  it('names the systems a filter_system may be', () => {
    const e = error('[p]\ntype = "parser"\nplugin = "scsi"\nfilter_system = "bogus"\n');
    assert.doesNotMatch(e, /Invalid input/);
    assert.match(e, /filter_system: .*"scsi".*"nvme".*"\*"/);
    assert.match(e, /list/);
  });

  it('names the expected type and what it got', () => {
    const e = error('[main]\nqueue_size = "10"\n');
    assert.doesNotMatch(e, /Invalid input/);
    assert.match(e, /queue_size: must be a number \(got a string\)/);
    const b = error('[main]\nmulticast = "yes"\n');
    assert.match(b, /multicast: must be true or false \(got a string\)/);
  });

  it('says what a port may be, whatever the wrong type', () => {
    const e = error('[main]\nreceiver_multicast_port = true\n');
    assert.doesNotMatch(e, /Invalid input/);
    assert.match(e, /receiver_multicast_port: must be a port number 1-65535/);
  });
});

describe('hostile: the controller without a reachable cluster exits (B7)', () => {
  const noCluster = { ...process.env, KUBERNETES_SERVICE_HOST: '', KUBECONFIG: '' };

  it('exits within seconds on a kubeconfig that is not a kubeconfig', async (t) => {
    const file = path.join(dir, 'garbage.kubeconfig');
    writeFileSync(file, 'this: [is not\n  a kubeconfig');
    const p = spawn(['controller', '--kubeconfig', file, '--metrics-listen', '127.0.0.1:0'], noCluster);
    const r = await p.exitWithin(15_000);
    t.diagnostic(`garbage kubeconfig: exit ${JSON.stringify(r)}; stderr: ${p.stderr().slice(0, 300)}`);
    assert.ok(r !== null, `did not exit within 15 s; stderr:\n${p.stderr().slice(-2000)}`);
    assert.notEqual(r.code, 0);
    assert.match(p.stderr(), new RegExp(`kubeconfig ${file.replace(/[.]/g, '\\.')}`));
  });

  it('exits within seconds when the kubeconfig names an API server nobody answers at', async (t) => {
    // a port that was free a moment ago: connection refused
    const s = createServer();
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    const port = (s.address() as { port: number }).port;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    const file = path.join(dir, 'unreachable.kubeconfig');
    writeFileSync(file, `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: { server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true }
users:
- name: u
  user: { token: abc }
contexts:
- name: x
  context: { cluster: c, user: u }
current-context: x
`);
    const p = spawn(['controller', '--kubeconfig', file, '--metrics-listen', '127.0.0.1:0'], noCluster);
    const r = await p.exitWithin(30_000);
    t.diagnostic(`unreachable API server: exit ${JSON.stringify(r)}; stderr: ${p.stderr().slice(0, 300)}`);
    assert.ok(r !== null, `did not exit within 30 s; stderr:\n${p.stderr().slice(-2000)}`);
    assert.notEqual(r.code, 0);
    assert.match(p.stderr(), new RegExp(`127\\.0\\.0\\.1:${port}.*ECONNREFUSED`));
  });

  it('exits at once, saying so, when there is neither a kubeconfig nor an in-cluster environment', async (t) => {
    const p = spawn(['controller', '--metrics-listen', '127.0.0.1:0'], noCluster);
    const r = await p.exitWithin(10_000);
    t.diagnostic(`no cluster: exit ${JSON.stringify(r)}; stderr: ${p.stderr().slice(0, 300)}`);
    assert.ok(r !== null, `did not exit within 10 s (retrying "Invalid URL"?); stderr:\n${p.stderr().slice(-2000)}`);
    assert.notEqual(r.code, 0);
    assert.match(p.stderr(), /not in a cluster|KUBERNETES_SERVICE_HOST/);
    assert.doesNotMatch(p.stderr(), /Invalid URL/);
  });
});
