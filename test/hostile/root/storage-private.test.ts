// Issue 10 A6: files the agent writes are private. The state directory is
// pre-created 0755 (what the chart's hostPath DirectoryOrCreate makes); the
// real agent runs with sqlite and jsonl backends under it and stores a real
// kernel record; then every directory below must be 0700 and every file 0600.
// A second run starts over files an older version left 0644 (and directories
// 0755): they must be made private too. The applied.json of Kubernetes mode
// likewise. (On f38c4a7: the state directory stayed 0755 and events.db,
// -wal, -shm, the jsonl file, the kmsg position file were 0644.)
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Agent, APPLIED_FILE, parseAgentConfig } from '../../../src/agent/agent.ts';
import { answerOf } from '../../../src/api/status.ts';
import type { StorageEvent } from '../../../src/events/schema.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { AgentMetrics } from '../../../src/metrics/agent-metrics.ts';
import { type AgentProcess, startAgent, testConfig } from '../../helpers/agent.ts';
import { isRoot, requireRoot } from '../../helpers/faults.ts';
import { injectKmsg, uniqueDevice } from '../../helpers/kmsg.ts';

const work = mkdtempSync(path.join(os.tmpdir(), 'hostile-private-'));
const running: AgentProcess[] = [];
after(async () => {
  for (const a of running) await a.stop('SIGKILL').catch(() => {});
  rmSync(work, { recursive: true, force: true });
});

/** Every entry under `dir` (and `dir` itself) whose mode is not 0700 (directories) / 0600 (files). */
function loose(dir: string): string[] {
  const bad: string[] = [];
  const visit = (p: string) => {
    const st = lstatSync(p);
    const mode = st.mode & 0o777;
    if (st.isDirectory()) {
      if (mode !== 0o700) bad.push(`${path.relative(work, p) || '.'}/ ${mode.toString(8)}`);
      for (const n of readdirSync(p)) visit(path.join(p, n));
    } else if (mode !== 0o600) bad.push(`${path.relative(work, p)} ${mode.toString(8)}`);
  };
  visit(dir);
  return bad;
}

function loosen(dir: string): void {
  const visit = (p: string) => {
    const st = lstatSync(p);
    if (st.isDirectory()) {
      chmodSync(p, 0o755);
      for (const n of readdirSync(p)) visit(path.join(p, n));
    } else chmodSync(p, 0o644);
  };
  visit(dir);
}

describe('hostile: files the agent writes are private', { skip: !isRoot() && 'NOT ROOT: needs /dev/kmsg' }, () => {
  it('a 0755 state directory and 0644 leftovers end up 0700/0600 (real agent, real kmsg record)', async (t) => {
    if (!requireRoot(t)) return;
    process.umask(0o022);
    const stateDir = path.join(work, 'state');
    mkdirSync(stateDir, { mode: 0o755 });
    chmodSync(stateDir, 0o755);
    const storageFile = path.join(work, 'storage.json');
    writeFileSync(storageFile, JSON.stringify({ root: { elos: { EventLogging: { Plugins: {
      db: { File: 'sqlite', Filter: ['1 1 EQ'], Config: { Path: 'events.db' } },
      files: { File: 'jsonl', Filter: ['1 1 EQ'], Config: { StoragePath: 'jsonl/ev-%count%.jsonl' } },
    } } } } }));
    const dev = uniqueDevice('sdp');
    const runOnce = async (i: number) => {
      const a = await startAgent({ config: testConfig({ start: 'end' }), stateDir, args: ['--storage-config', storageFile] });
      running.push(a);
      injectKmsg(`Buffer I/O error on dev ${dev}, logical block ${i}, async page read`);
      await a.waitFor((e: StorageEvent) => e.dev_name === dev && e.extentions.logical_block === String(i), 20_000, 'the event');
      // while running: sqlite has its -wal and -shm
      const live = loose(stateDir);
      const r = await a.stop('SIGTERM');
      assert.equal(r.code, 0, a.stderr().slice(-2000));
      return [...new Set([...live, ...loose(stateDir)])];
    };
    const first = await runOnce(1);
    t.diagnostic(`first run over a 0755 directory: ${first.length === 0 ? 'all private' : first.join(', ')}`);
    assert.deepEqual(first, [], 'fresh files and the pre-created directory must be private');

    loosen(stateDir);
    const second = await runOnce(2);
    t.diagnostic(`second run over 0644/0755 leftovers: ${second.length === 0 ? 'all private' : second.join(', ')}`);
    assert.deepEqual(second, [], 'files left with loose modes must be made private');
  });

  it('Kubernetes mode: a 0644 applied.json is made private at start, and a push writes it 0600', async (t) => {
    if (!requireRoot(t)) return;
    const stateDir = path.join(work, 'k8s');
    mkdirSync(stateDir, { mode: 0o755 });
    chmodSync(stateDir, 0o755);
    const main = '[main]\napi_listen = "off"\n';
    const plugins = '[out]\ntype = "receiver"\nplugin = "stdout"\nformat = "json"\n';
    const storage = { root: { elos: { EventLogging: { Plugins: { local: { File: 'sqlite', Filter: ['1 1 EQ'] } } } } } };
    writeFileSync(path.join(stateDir, APPLIED_FILE), JSON.stringify({ generation: 1, hash: 'h1', toml: plugins, storage }), { mode: 0o644 });
    chmodSync(path.join(stateDir, APPLIED_FILE), 0o644);
    const agent = new Agent({ log: silentLogger(), metrics: new AgentMetrics(), stateDir, pushed: { localMain: main }, configText: main + plugins });
    await agent.start(parseAgentConfig(main + plugins, 'test'));
    try {
      const atStart = loose(stateDir);
      t.diagnostic(`after start: ${atStart.join(', ') || 'all private'}`);
      assert.deepEqual(atStart, []);
      const a = answerOf(await agent.applyPushed({ generation: 2, hash: 'h2', toml: plugins, storage }));
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.deepEqual(loose(stateDir), []);
    } finally {
      await agent.stop();
    }
  });
});
