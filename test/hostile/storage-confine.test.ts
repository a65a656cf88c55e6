// Issue 10 A1, Kubernetes mode: a StorageBackend's sqlite Path or jsonl
// StoragePath comes from a cluster user, so the agent confines it to its
// state directory. A push naming /etc/…, ../…, a device, or a path through a
// symbolic link that leads out is refused with a clear error (HTTP 422 with
// the reason, which the controller writes into the StorageBackend's status),
// and nothing is created outside. (On f38c4a7 every one was applied.)
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, parseAgentConfig } from '../../src/agent/agent.ts';
import { answerOf } from '../../src/api/status.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { AgentMetrics } from '../../src/metrics/agent-metrics.ts';

const work = mkdtempSync(path.join(os.tmpdir(), 'hostile-confine-'));
const stateDir = path.join(work, 'state');
const outside = path.join(work, 'outside');
const MAIN = `[main]\napi_listen = "off"\nboot_id_path = "/proc/sys/kernel/random/boot_id"\n`;
const PLUGINS = `[out]\ntype = "receiver"\nplugin = "stdout"\nformat = "json"\n`;
let agent: Agent;
let generation = 1;

function storage(file: string, config: Record<string, unknown>): Record<string, unknown> {
  return { root: { elos: { EventLogging: { Plugins: { local: { File: 'sqlite', Filter: ['1 1 EQ'] }, hostile: { File: file, Filter: ['1 1 EQ'], Config: config } } } } } };
}

async function push(file: string, config: Record<string, unknown>) {
  generation++;
  // the answer as the control API would send it (status and body)
  return answerOf(await agent.applyPushed({ generation, hash: `h${generation}`, toml: PLUGINS, storage: storage(file, config) }));
}

describe('hostile: Kubernetes mode confines backend files to the state directory', () => {
  before(async () => {
    mkdirSync(outside, { recursive: true });
    agent = new Agent({ log: silentLogger(), metrics: new AgentMetrics(), stateDir, pushed: { localMain: MAIN }, configText: `${MAIN}\n${PLUGINS}` });
    await agent.start(parseAgentConfig(`${MAIN}\n${PLUGINS}`, 'test'));
  });
  after(async () => {
    await agent.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const cases: [string, 'sqlite' | 'jsonl', Record<string, unknown>, RegExp][] = [
    ['an absolute sqlite Path elsewhere', 'sqlite', { Path: path.join(outside, 'a.db') }, /Path .*a\.db" is outside the agent's state directory/],
    ['a sqlite Path with ..', 'sqlite', { Path: '../outside/b.db' }, /Path "\.\.\/outside\/b\.db" is outside the agent's state directory/],
    ['a device as sqlite Path', 'sqlite', { Path: '/dev/null' }, /Path "\/dev\/null" is outside the agent's state directory/],
    ['a jsonl StoragePath elsewhere', 'jsonl', { StoragePath: path.join(outside, 'e-%count%.jsonl') }, /StoragePath .* is outside the agent's state directory/],
    ['a jsonl StoragePath with ..', 'jsonl', { StoragePath: '../outside/e-%count%.jsonl' }, /StoragePath .* is outside the agent's state directory/],
  ];
  for (const [what, file, config, re] of cases) {
    it(`refuses ${what}`, async () => {
      const a = await push(file, config);
      assert.equal(a.status, 422, `the push must be refused: ${JSON.stringify(a.body)}`);
      assert.match(String((a.body as { error?: string }).error), re);
      assert.deepEqual(agent.applied?.generation ?? 0, 0, 'nothing applied');
    });
  }

  it('refuses a relative path through a symbolic link that leads out', async () => {
    symlinkSync(outside, path.join(stateDir, 'escape'));
    const a = await push('sqlite', { Path: 'escape/c.db' });
    assert.equal(a.status, 422, JSON.stringify(a.body));
    assert.match(String((a.body as { error?: string }).error), /leads outside the agent's state directory/);
  });

  it('created nothing outside the state directory', () => {
    for (const f of ['a.db', 'b.db', 'c.db', 'e-0.jsonl']) assert.ok(!existsSync(path.join(outside, f)), f);
  });

  it('accepts a relative path and an absolute one inside the state directory', async () => {
    const a = await push('sqlite', { Path: 'sub/ok.db' });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    const b = await push('jsonl', { StoragePath: path.join(stateDir, 'j', 'e-%count%.jsonl') });
    assert.equal(b.status, 200, JSON.stringify(b.body));
  });
});
