// Issue 10 B7: a fatal start error ends the agent. Port in use, a port out of
// range, an address not on this host, a bad token file: the agent must exit
// non-zero within seconds, name the problem, and leave the saved kmsg
// position exactly as it was (it must not have read the kernel log at all).
// Needs root: the agent runs a real kmsg collector that resumes from a saved
// position far behind the ring's end, so a collector that runs advances it.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { isRoot, requireRoot } from '../../helpers/faults.ts';
import { injectKmsg, uniqueDevice } from '../../helpers/kmsg.ts';
import { spawnPeripety, type Spawned } from '../../helpers/spawn-agent.ts';

const EXIT_DEADLINE_MS = 10_000;
const running: Spawned[] = [];
const servers: Server[] = [];
after(async () => {
  for (const p of running) await p.kill();
  for (const s of servers) s.close();
});

function config(apiListen: string, extraMain = ''): string {
  return `[main]
log_level = "info"
api_listen = "${apiListen}"
multicast = false
${extraMain}
[kmsg]
type = "collector"
start = "resume"
accept_user_facility = true

[block]
type = "parser"

[out]
type = "receiver"
plugin = "stdout"
format = "json"
`;
}

/** A state directory whose saved position is this boot's, at sequence 0: a collector that runs moves it. */
function stateWithOldPosition(): { dir: string; stateDir: string; position: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-fatal-'));
  const stateDir = path.join(dir, 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const position = `${JSON.stringify({ boot_id: bootId, seq: 0 })}\n`;
  writeFileSync(path.join(stateDir, 'kmsg.position.json'), position);
  return { dir, stateDir, position };
}

async function expectFatal(t: { diagnostic(s: string): void }, what: string, toml: string | ((stateDir: string) => string), stderrRe: RegExp, opts: { collectorMayStart?: boolean } = {}): Promise<void> {
  const { dir, stateDir, position } = stateWithOldPosition();
  const file = path.join(dir, 'agent.toml');
  writeFileSync(file, typeof toml === 'string' ? toml : toml(stateDir));
  // something in the ring after the saved position, so a running collector has work
  injectKmsg(`I/O error, dev ${uniqueDevice('fatal')}, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0`);
  const started = Date.now();
  const p = spawnPeripety(['agent', '--config', file, '--state-dir', stateDir]);
  running.push(p);
  const r = await p.exitWithin(EXIT_DEADLINE_MS);
  const ms = Date.now() - started;
  const after = readFileSync(path.join(stateDir, 'kmsg.position.json'), 'utf8');
  t.diagnostic(`${what}: exit ${r ? `code ${r.code} after ${ms} ms` : `none within ${EXIT_DEADLINE_MS} ms`}; position ${after === position ? 'unchanged' : `moved to ${after.trim()}`}`);
  assert.ok(r !== null, `${what}: the agent did not exit within ${EXIT_DEADLINE_MS} ms; stderr:\n${p.stderr().slice(-2000)}`);
  assert.notEqual(r.code, 0, `${what}: exit code`);
  assert.match(p.stderr(), stderrRe, `${what}: stderr names the problem`);
  assert.equal(after, position, `${what}: the saved kmsg position changed`);
  if (!opts.collectorMayStart) assert.doesNotMatch(p.stderr(), /"kmsg collector started"/, `${what}: the collector started before the fatal check`);
}

describe('hostile: fatal start errors exit (B7)', { skip: !isRoot() && 'NOT ROOT: needs /dev/kmsg (a real collector with a saved position)' }, () => {
  it('exits non-zero, without touching the kmsg position, when the API port is in use', async (t) => {
    if (!requireRoot(t)) return;
    const busy = createServer();
    servers.push(busy);
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    await expectFatal(t, 'port in use', config(`127.0.0.1:${port}`), new RegExp(`api_listen 127\\.0\\.0\\.1:${port}.*EADDRINUSE`));
  });

  it('exits non-zero on an API port out of range (127.0.0.1:99999)', async (t) => {
    if (!requireRoot(t)) return;
    await expectFatal(t, 'port 99999', config('127.0.0.1:99999'), /api_listen.*(port|65535)/);
  });

  it('exits non-zero on an API address that is not on this host', async (t) => {
    if (!requireRoot(t)) return;
    // 192.0.2.0/24 is TEST-NET-1: never a local address
    await expectFatal(t, 'foreign address', config('192.0.2.1:9477'), /api_listen 192\.0\.2\.1:9477.*EADDRNOTAVAIL/);
  });

  it('exits non-zero on a token file that holds no valid token', async (t) => {
    if (!requireRoot(t)) return;
    await expectFatal(t, 'bad token file', (stateDir) => {
      const tokenFile = path.join(stateDir, 'bad-token');
      writeFileSync(tokenFile, 'short\n', { mode: 0o600 });
      return config('127.0.0.1:0', `api_token_file = "${tokenFile}"`);
    }, /api_token_file.*valid API token/);
  });

  // On the base a second kmsg collector (whose device does not exist) failed after the first
  // had read, and the position moved (0 -> 36144). A second kmsg collector is now refused when
  // the file is loaded (docs/kmsg.md), before any collector reads; the put-back of the position
  // after a collector that fails at start (Agent.startCollectors/abortStart) stays as a safety net.
  it('exits non-zero with the position unchanged when a second collector cannot run', async (t) => {
    if (!requireRoot(t)) return;
    const second = `\n[kmsg2]\ntype = "collector"\nplugin = "kmsg"\npath = "/dev/nonexistent-kmsg-${process.pid}"\n`;
    await expectFatal(t, 'second collector fails', config('127.0.0.1:0').replace('[block]', `${second}\n[block]`), /kmsg2/, { collectorMayStart: true });
  });
});
