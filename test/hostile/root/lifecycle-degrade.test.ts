// Issue 10 C11: a bad local file degrades the agent, it does not stop it.
// A corrupt events.db is moved aside and a fresh one created; a full state
// directory (a real tmpfs, filled) or an applied.json whose storage cannot
// start leave the agent collecting and delivering to every other receiver,
// with /readyz saying why it is not ready and a metric naming the backend.
// Needs root: real /dev/kmsg, a real tmpfs mount.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../../src/log/logger.ts';
import { sqliteBackend } from '../../../src/storage/backends/sqlite.ts';
import { type AgentProcess, startAgent, testConfig } from '../../helpers/agent.ts';
import { isMounted, isRoot, requireRoot, run } from '../../helpers/faults.ts';
import { injectKmsg, uniqueDevice } from '../../helpers/kmsg.ts';
import { parseMetrics, sumMetric } from '../../helpers/prom-text.ts';

const running: AgentProcess[] = [];
const mounts: string[] = [];
after(async () => {
  for (const a of running) await a.stop('SIGKILL');
  for (const m of mounts) if (isMounted(m)) await run('umount', ['-l', m]);
});

const config = testConfig({ extraMain: 'multicast = false' });

async function delivered(a: AgentProcess, what: string): Promise<string> {
  const dev = uniqueDevice('degr');
  injectKmsg(`I/O error, dev ${dev}, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0`);
  await a.waitFor((e) => e.dev_name === dev, 10_000, what);
  return dev;
}

async function readyz(a: AgentProcess): Promise<{ status: number; text: string }> {
  const r = await fetch(`${a.apiUrl()}/readyz`);
  return { status: r.status, text: await r.text() };
}

async function metric(a: AgentProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sumMetric(parseMetrics(await (await fetch(`${a.apiUrl()}/metrics`)).text()), name, labels);
}

describe('hostile: a bad local file degrades, it does not stop the agent (C11)', { skip: !isRoot() && 'NOT ROOT: needs /dev/kmsg and tmpfs mounts' }, () => {
  it('a corrupt events.db is moved aside, a fresh one created, events stored and delivered', async (t) => {
    if (!requireRoot(t)) return;
    const stateDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'prpt-corrupt-')), 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    writeFileSync(path.join(stateDir, 'events.db'), randomBytes(64 * 1024), { mode: 0o600 });
    const a = await startAgent({ config, stateDir });
    running.push(a);
    const dev = await delivered(a, 'an event on stdout');
    const aside = readdirSync(stateDir).filter((n) => n.startsWith('events.db.corrupt-'));
    const flush = await fetch(`${a.apiUrl()}/v1/flush`, { method: 'POST', headers: { authorization: `Bearer ${a.apiToken()}` } });
    const r = await readyz(a);
    t.diagnostic(`moved aside: ${JSON.stringify(aside)}; flush ${flush.status}; /readyz ${r.status} ${r.text.trim()}`);
    assert.equal(aside.length, 1, 'the corrupt database was moved aside');
    assert.equal(flush.status, 200);
    const b = sqliteBackend.build('check', sqliteBackend.options.parse({ Path: path.join(stateDir, 'events.db'), ReadOnly: true }), { log: silentLogger(), stateDir, hostname: 'test', env: {} });
    await b.start();
    const stored = (await b.findEvents({ filter: null, newest: 0, oldest: 0, limit: 0 })).events.filter((e) => e.dev_name === dev);
    await b.shutdown();
    assert.equal(stored.length, 1, 'the event is in the fresh database');
    assert.equal(r.status, 200);
  });

  it('a full tmpfs as state directory: the agent starts, stdout still delivers, /readyz and a metric say why', async (t) => {
    if (!requireRoot(t)) return;
    const stateDir = mkdtempSync(path.join(os.tmpdir(), 'prpt-full-'));
    await run('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'prpt-full', stateDir]);
    mounts.push(stateDir);
    // the token exists from an earlier run; then the disk fills up
    writeFileSync(path.join(stateDir, 'api-token'), `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
    const fd = openSync(path.join(stateDir, 'filler'), 'w');
    try {
      for (;;) writeSync(fd, Buffer.alloc(4096));
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      closeSync(fd);
    }
    const a = await startAgent({ config, stateDir });
    running.push(a);
    await delivered(a, 'an event on stdout with the state directory full');
    const r = await readyz(a);
    const excluded = await metric(a, 'peripety_storage_backend_excluded', { backend: 'local' });
    t.diagnostic(`/readyz ${r.status}: ${r.text.trim()}; peripety_storage_backend_excluded{backend="local"} ${excluded}`);
    assert.equal(r.status, 503);
    assert.match(r.text, /storage backend "local" did not start: .*(full|ENOSPC)/);
    assert.equal(excluded, 1);
    // a reload while the disk is still full: the plugin change applies, storage stays degraded
    const file = a.proc.spawnargs[a.proc.spawnargs.indexOf('--config') + 1]!;
    writeFileSync(file, config.replace('[mdraid]\ntype = "parser"\n', ''));
    a.proc.kill('SIGHUP');
    await a.waitForLog(/SIGHUP: configuration reloaded/);
    assert.equal((await readyz(a)).status, 503);
    // room again: the next reload starts the backend that was left out
    rmSync(path.join(stateDir, 'filler'));
    a.proc.kill('SIGHUP');
    await a.waitForLog(/SIGHUP: configuration reloaded[\s\S]*SIGHUP: configuration reloaded/);
    const healed = await readyz(a);
    const excludedAfter = await metric(a, 'peripety_storage_backend_excluded', { backend: 'local' });
    t.diagnostic(`after freeing space and SIGHUP: /readyz ${healed.status} ${healed.text.trim()}; excluded ${excludedAfter}`);
    assert.equal(healed.status, 200);
    assert.equal(excludedAfter, 0);
    await delivered(a, 'an event after the backend came back');
    const { code } = await a.stop('SIGTERM');
    assert.equal(code, 0);
  });

  it('an applied.json whose jsonl path cannot start: the agent starts with the rest (Kubernetes mode)', async (t) => {
    if (!requireRoot(t)) return;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-applied-'));
    const stateDir = path.join(dir, 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    // a directory that became a file (like a mount point gone): the jsonl backend cannot start below it
    writeFileSync(path.join(stateDir, 'gone'), 'not a directory');
    const pushed = config.slice(config.indexOf('[kmsg]'));
    writeFileSync(path.join(stateDir, 'applied.json'), JSON.stringify({
      generation: 3, hash: 'h3', toml: pushed,
      storage: { root: { elos: { EventLogging: { Plugins: {
        mem: { File: 'memory', Filter: ['1 1 EQ'] },
        files: { File: 'jsonl', Filter: ['1 1 EQ'], Config: { StoragePath: `${stateDir}/gone/events-%count%.jsonl` } },
      } } } } },
    }));
    // a kubeconfig nobody answers at: the agent must not need the API server to start from applied.json
    const kubeconfig = path.join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: { server: "https://127.0.0.1:1" }\nusers:\n- name: u\n  user: { token: abc }\ncontexts:\n- name: x\n  context: { cluster: c, user: u }\ncurrent-context: x\n');
    const a = await startAgent({ config: config.slice(0, config.indexOf('[kmsg]')), stateDir, args: ['--kubeconfig', kubeconfig, '--node-name', 'prpt-degraded-node'] });
    running.push(a);
    await delivered(a, 'an event on stdout from the applied configuration');
    const r = await readyz(a);
    t.diagnostic(`/readyz ${r.status}: ${r.text.trim()}`);
    assert.equal(r.status, 503);
    assert.match(r.text, /storage backend "files" did not start/);
    assert.equal(await metric(a, 'peripety_storage_backend_excluded', { backend: 'files' }), 1);
    assert.equal(await metric(a, 'peripety_storage_backend_excluded', { backend: 'mem' }), 0);
    assert.match(a.stderr(), /"generation":3/);
    assert.ok(existsSync(path.join(stateDir, 'applied.json')), 'applied.json is kept (the controller replaces it)');
    assert.ok(readFileSync(path.join(stateDir, 'applied.json'), 'utf8').includes('"h3"'));
  });
});
