// Issue 10 B8: SIGHUP is all or nothing. A reload either applies whole or
// leaves the running configuration exactly as it was: a receiver that
// cannot be built, or collectors that cannot start, leave the old pipeline
// delivering (and the new parsers/receivers NOT active); a rollback that
// itself fails does not kill the agent; an empty or cut-off file is
// refused; a change that needs a restart says so. Needs root: the agent
// reads the real /dev/kmsg and the test injects records.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AgentProcess, startAgent } from '../../helpers/agent.ts';
import { isRoot, requireRoot } from '../../helpers/faults.ts';
import { injectKmsg, uniqueDevice } from '../../helpers/kmsg.ts';
import { parseMetrics } from '../../helpers/prom-text.ts';

const running: AgentProcess[] = [];
const servers: Server[] = [];
after(async () => {
  for (const a of running) await a.stop('SIGKILL');
  for (const s of servers) s.close();
});

/** A webhook target that records every body it is sent. */
async function hookServer(): Promise<{ url: string; bodies: string[] }> {
  const bodies: string[] = [];
  const s = createServer((req, res) => {
    let b = '';
    req.setEncoding('utf8').on('data', (c: string) => (b += c)).on('end', () => {
      bodies.push(b);
      res.writeHead(200).end('{}');
    });
  });
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(s.address() as { port: number }).port}/hook`, bodies };
}

function config(opts: { kmsgPath?: string; out?: boolean; extra?: string; main?: string; start?: string } = {}): string {
  return `[main]
log_level = "info"
api_listen = "127.0.0.1:0"
multicast = false
${opts.main ?? ''}
[kmsg]
type = "collector"
start = "${opts.start ?? 'end'}"
accept_user_facility = true
${opts.kmsgPath ? `path = "${opts.kmsgPath}"` : ''}

[block]
type = "parser"
${opts.out === false ? '' : `
[out]
type = "receiver"
plugin = "stdout"
format = "json"
`}
${opts.extra ?? ''}
`;
}

const hook = (name: string, url: string, extra = '') => `
[${name}]
type = "receiver"
plugin = "webhook"
url = "${url}"
batch_wait_ms = 0
max_retries = 0
${extra}
`;

const OUTCOME = /"msg":"(SIGHUP: reload refused[^"]*|SIGHUP: configuration reloaded|configuration reloaded|configuration rejected[^"]*|collectors failed[^"]*)"/g;

/** SIGHUP with `text` in the config file; resolves with the outcome message logged for it. */
async function hup(a: AgentProcess, text: string): Promise<string> {
  const file = a.proc.spawnargs[a.proc.spawnargs.indexOf('--config') + 1]!;
  writeFileSync(file, text);
  const before = [...a.stderr().matchAll(OUTCOME)].length;
  a.proc.kill('SIGHUP');
  await a.waitForLog(new RegExp(`(?:${OUTCOME.source}[\\s\\S]*){${before + 1}}`), 15_000);
  // the SIGHUP summary comes after the inner message: give it a moment
  await sleep(200);
  return [...a.stderr().matchAll(OUTCOME)].slice(before).map((m) => m[1]).join(' | ');
}

/** Inject a block line with a fresh device name; resolves with the name once the agent printed it on stdout. */
async function deliveredOnStdout(a: AgentProcess, what: string): Promise<string> {
  const dev = uniqueDevice('hup');
  injectKmsg(`I/O error, dev ${dev}, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0`);
  await a.waitFor((e) => e.dev_name === dev, 10_000, what);
  return dev;
}

async function pluginUp(a: AgentProcess): Promise<Map<string, number>> {
  const text = await (await fetch(`${a.apiUrl()}/metrics`)).text();
  return new Map(parseMetrics(text).filter((s) => s.name === 'peripety_plugin_up').map((s) => [s.labels.plugin!, s.value]));
}

describe('hostile: SIGHUP is all or nothing (B8)', { skip: !isRoot() && 'NOT ROOT: needs to write /dev/kmsg' }, () => {
  it('a receiver that cannot be built: the reload is refused, the new parser and receivers are not active, the old ones deliver', async (t) => {
    if (!requireRoot(t)) return;
    const h = await hookServer();
    const a = await startAgent({ config: config() });
    running.push(a);
    await deliveredOnStdout(a, 'an event before the reload');
    const outcome = await hup(a, config({ extra: `[scsi2]\ntype = "parser"\nplugin = "scsi"\n${hook('hook1', h.url)}${hook('hook2', h.url, 'bearer_token_file = "/nonexistent/peripety-token"')}` }));
    t.diagnostic(`outcome: ${outcome}`);
    const dev = await deliveredOnStdout(a, 'an event through the old stdout receiver after the refused reload');
    await sleep(1500);
    const up = await pluginUp(a);
    t.diagnostic(`plugin_up after: ${JSON.stringify([...up])}; webhook bodies: ${h.bodies.length}`);
    assert.match(outcome, /refused|rejected/);
    assert.equal(h.bodies.filter((b) => b.includes(dev)).length, 0, 'the rejected webhook receiver delivered');
    assert.equal(up.get('out'), 1, 'the old receiver is up');
    assert.notEqual(up.get('hook1'), 1, 'the rejected receiver hook1 is reported up');
    assert.notEqual(up.get('scsi2'), 1, 'the rejected parser scsi2 is reported up');
    assert.equal(a.proc.exitCode, null);
  });

  it('collectors that cannot start: the old pipeline keeps delivering, the new receiver gets nothing', async (t) => {
    if (!requireRoot(t)) return;
    const h = await hookServer();
    const a = await startAgent({ config: config() });
    running.push(a);
    await deliveredOnStdout(a, 'an event before the reload');
    // the new file drops the stdout receiver, adds a webhook, and names a kmsg device that does not exist
    const outcome = await hup(a, config({ kmsgPath: `/dev/nonexistent-kmsg-${process.pid}`, out: false, extra: hook('hook1', h.url) }));
    t.diagnostic(`outcome: ${outcome}`);
    let dev = '';
    let viaStdout = true;
    try {
      dev = await deliveredOnStdout(a, 'an event through the old stdout receiver after the failed reload');
    } catch {
      viaStdout = false;
    }
    await sleep(1000);
    const viaHook = h.bodies.filter((b) => /"dev_name":"hup/.test(b)).length;
    t.diagnostic(`after the failed reload: stdout delivered ${viaStdout}, webhook bodies with a record ${viaHook}`);
    assert.match(outcome, /refused|rejected/);
    assert.ok(viaStdout, 'the old stdout receiver no longer delivers');
    assert.equal(h.bodies.filter((b) => b.includes(dev)).length, 0, 'the new webhook receiver is active');
  });

  it('a rollback that fails too leaves the agent running (not ready, saying why); a good reload brings the collectors back', async (t) => {
    if (!requireRoot(t)) return;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-hup-rollback-'));
    const link = path.join(dir, 'kmsg');
    symlinkSync('/dev/kmsg', link);
    const good = config({ kmsgPath: link });
    const a = await startAgent({ config: good });
    running.push(a);
    await deliveredOnStdout(a, 'an event before the reload');
    // the new collectors fail (no such device) and the old ones cannot start again (their device went away)
    rmSync(link);
    const outcome = await hup(a, config({ kmsgPath: `/dev/nonexistent-kmsg-${process.pid}` }));
    await sleep(500);
    t.diagnostic(`outcome: ${outcome}; exit code ${a.proc.exitCode} signal ${a.proc.signalCode}`);
    assert.equal(a.proc.exitCode, null, `the agent died; stderr:\n${a.stderr().slice(-1500)}`);
    assert.equal(a.proc.signalCode, null);
    const ready = await fetch(`${a.apiUrl()}/readyz`);
    const why = await ready.text();
    t.diagnostic(`/readyz ${ready.status}: ${why.trim()}`);
    assert.equal(ready.status, 503);
    assert.match(why, /no collector runs/);
    symlinkSync('/dev/kmsg', link);
    const back = await hup(a, good);
    assert.match(back, /reloaded/);
    await deliveredOnStdout(a, 'an event after the collectors came back');
    assert.equal((await fetch(`${a.apiUrl()}/readyz`)).status, 200);
    const { code } = await a.stop('SIGTERM');
    assert.equal(code, 0);
  });

  it('an empty file, a cut-off file, a storage file without backends are refused; allow_empty lets them through', async (t) => {
    if (!requireRoot(t)) return;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-hup-empty-'));
    const storageFile = path.join(dir, 'storage.json');
    const mem = (names: string[]) => JSON.stringify({ root: { elos: { EventLogging: { Plugins: Object.fromEntries(names.map((n) => [n, { File: 'memory', Filter: ['1 1 EQ'] }])) } } } });
    writeFileSync(storageFile, mem(['mem']));
    const full = config();
    const a = await startAgent({ config: full, args: ['--storage-config', storageFile] });
    running.push(a);
    const empty = await hup(a, '');
    await deliveredOnStdout(a, 'an event after the empty file');
    // cut after the parser section: valid TOML, but no receiver left
    const cut = await hup(a, full.slice(0, full.indexOf('[block]') + '[block]\ntype = "parser"\n'.length));
    await deliveredOnStdout(a, 'an event after the cut-off file');
    writeFileSync(storageFile, mem([]));
    const noBackend = await hup(a, full);
    await deliveredOnStdout(a, 'an event after the storage file without backends');
    const status = (await (await fetch(`${a.apiUrl()}/v1/status`, { headers: { authorization: `Bearer ${a.apiToken()}` } })).json()) as { storage: { backends: { name: string }[] } };
    t.diagnostic(`empty: ${empty}; cut: ${cut}; no backend: ${noBackend}; backends now ${JSON.stringify(status.storage.backends.map((b) => b.name))}`);
    assert.match(empty, /refused/);
    assert.match(a.stderr(), /no enabled collector and no enabled receiver section/);
    assert.match(cut, /refused/);
    assert.match(a.stderr(), /no enabled receiver section/);
    assert.match(noBackend, /refused/);
    assert.match(a.stderr(), /no storage backend/);
    assert.deepEqual(status.storage.backends.map((b) => b.name), ['mem']);
    // the explicit opt-in applies the same storage file
    const allowed = await hup(a, config({ main: 'allow_empty = true' }));
    assert.match(allowed, /reloaded/);
  });

  it('a reload that restarts the collectors hands the read position over: every record once, none lost', async (t) => {
    if (!requireRoot(t)) return;
    const a = await startAgent({ config: config() });
    running.push(a);
    const dev = uniqueDevice('hand');
    const total = 300;
    const line = (i: number) => `Buffer I/O error on dev ${dev}, logical block ${i}, async page read`;
    const mine = (e: { dev_name?: string | null; event_type: string }) => e.dev_name === dev && e.event_type === 'BLK_BUFFER_IO_ERROR';
    let i = 0;
    for (; i < total / 2; i++) injectKmsg(line(i));
    await a.waitForCount(mine, total / 4, 10_000);
    // the kmsg section changes (start = "resume": the new collector continues
    // from the position the old one saved): the collectors restart mid-stream
    const outcome = hup(a, config({ start: 'resume' }));
    for (; i < total; i++) {
      injectKmsg(line(i));
      if (i % 10 === 0) await sleep(2);
    }
    assert.match(await outcome, /reloaded/);
    await a.waitForCount(mine, total, 20_000).catch(() => []);
    const blocks = a.events.filter(mine).map((e) => Number(e.extentions.logical_block));
    const missing = [...Array(total).keys()].filter((b) => !blocks.includes(b));
    const twice = blocks.length - new Set(blocks).size;
    t.diagnostic(`collector hand-over: ${total} injected, ${blocks.length} delivered, missing ${missing.length}, twice ${twice}`);
    assert.deepEqual(missing, []);
    assert.equal(twice, 0);
  });

  it('an api_listen change is refused as needing a restart, and the agent keeps running as it was', async (t) => {
    if (!requireRoot(t)) return;
    const a = await startAgent({ config: config() });
    running.push(a);
    const outcome = await hup(a, config().replace('api_listen = "127.0.0.1:0"', 'api_listen = "127.0.0.1:19477"'));
    t.diagnostic(`outcome: ${outcome}`);
    assert.match(outcome, /refused|rejected/);
    assert.match(a.stderr(), /\[main\] api_listen changed: that needs a restart/);
    await deliveredOnStdout(a, 'an event after the refused api_listen change');
    assert.equal((await fetch(`${a.apiUrl()}/healthz`)).status, 200);
  });
});
