// The control endpoints of the HTTP adapter (PUT /v1/config, POST
// /v1/{plugins,backends}/{name}:{action}, /v1/reload, /v1/flush) on a
// loopback socket, an agent in this process answering reload and flush from
// its --config / --storage-config files, the pure
// validation, the pushed-configuration helpers of the agent and the
// kubeconfig reader.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { StaticTokenAuthenticator } from '../../../src/api/auth.ts';
import {
  ApiServer, FLUSH_DEFAULT_TIMEOUT_MS, MAX_CONTROL_BODY, parseCommandPath, parseControlPath, parseFlushTimeout,
} from '../../../src/api/server.ts';
import { parsePushedConfig, type PushedConfig } from '../../../src/contracts/pushed-config.ts';
import { done, fail } from '../../../src/contracts/outcome.ts';
import { Agent, mainSectionToml, parseAgentConfig, pushedConfigText, readAppliedConfig, writeAppliedConfig } from '../../../src/agent/agent.ts';
import { AgentMetrics } from '../../../src/metrics/agent-metrics.ts';
import { parseKubeconfig } from '../../../src/k8s/http.ts';
import { microTime } from '../../../src/k8s/registration.ts';
import { silentLogger } from '../../../src/log/logger.ts';

const TOKEN = 'test-token-0123456789abcdef';
const good = { generation: 3, hash: 'abc', toml: '[x]\ntype = "parser"\nplugin = "scsi"\n', storage: { root: {} } };

describe('parsePushedConfig', () => {
  it('accepts the four fields', () => {
    assert.deepEqual(parsePushedConfig(good), { ok: true, push: good });
  });
  const bad: [string, unknown, RegExp][] = [
    ['not an object', [1], /JSON object/],
    ['null', null, /JSON object/],
    ['unknown field', { ...good, extra: 1 }, /unknown field "extra"/],
    ['generation 0', { ...good, generation: 0 }, /generation/],
    ['generation 1.5', { ...good, generation: 1.5 }, /generation/],
    ['generation as a string', { ...good, generation: '3' }, /generation/],
    ['no hash', { ...good, hash: undefined }, /hash/],
    ['empty hash', { ...good, hash: '' }, /hash/],
    ['toml not a string', { ...good, toml: {} }, /toml/],
    ['storage an array', { ...good, storage: [] }, /storage/],
    ['storage missing', { generation: 1, hash: 'h', toml: '' }, /storage/],
  ];
  for (const [what, body, re] of bad) {
    it(`refuses ${what}`, () => {
      const r = parsePushedConfig(body);
      assert.equal(r.ok, false);
      assert.match(!r.ok ? r.error : '', re);
    });
  }
});

describe('parseCommandPath', () => {
  it('reads kind, name and action', () => {
    assert.deepEqual(parseCommandPath('/v1/plugins/scsi:stop'), { kind: 'plugins', name: 'scsi', action: 'stop' });
    assert.deepEqual(parseCommandPath('/v1/backends/db-1:restart'), { kind: 'backends', name: 'db-1', action: 'restart' });
    assert.deepEqual(parseCommandPath('/v1/backends/db%3Astart'), { kind: 'backends', name: 'db', action: 'start' });
    assert.deepEqual(parseCommandPath('/v1/backends/db:flush'), { kind: 'backends', name: 'db', action: 'flush' });
  });
  it('refuses anything else', () => {
    for (const p of ['/v1/plugins/scsi', '/v1/plugins/scsi:flush', '/v1/plugins/:stop', '/v1/plugins/a/b:stop', '/v1/widgets/a:stop', '/v1/plugins/%zz:stop', '/v1/backends/db:reload']) {
      assert.equal(parseCommandPath(p), null, p);
    }
  });
});

describe('parseControlPath', () => {
  it('maps every control path to its request and method', () => {
    assert.deepEqual(parseControlPath('/v1/config'), { request: { op: 'config' }, method: 'PUT' });
    assert.deepEqual(parseControlPath('/v1/reload'), { request: { op: 'reload' }, method: 'POST' });
    assert.deepEqual(parseControlPath('/v1/flush'), { request: { op: 'flush', backend: null }, method: 'POST' });
    assert.deepEqual(parseControlPath('/v1/backends/db:flush'), { request: { op: 'flush', backend: 'db' }, method: 'POST' });
    assert.deepEqual(parseControlPath('/v1/plugins/scsi:stop'), { request: { op: 'command', kind: 'plugins', name: 'scsi', action: 'stop' }, method: 'POST' });
    for (const p of ['/v1/status', '/v1/reload/', '/v1/flushall', '/v1/plugins/scsi:flush', '/v1/events']) assert.equal(parseControlPath(p), null, p);
  });
});

describe('parseFlushTimeout', () => {
  it('defaults, takes 1…60 whole seconds, refuses the rest', () => {
    assert.deepEqual(parseFlushTimeout(new URLSearchParams('')), { ok: true, timeoutMs: FLUSH_DEFAULT_TIMEOUT_MS });
    assert.deepEqual(parseFlushTimeout(new URLSearchParams('timeoutSeconds=1')), { ok: true, timeoutMs: 1000 });
    assert.deepEqual(parseFlushTimeout(new URLSearchParams('timeoutSeconds=60')), { ok: true, timeoutMs: 60_000 });
    for (const q of ['timeoutSeconds=0', 'timeoutSeconds=61', 'timeoutSeconds=1.5', 'timeoutSeconds=', 'timeoutSeconds=-1', 'timeoutSeconds=1&timeoutSeconds=2', 'timeout=5']) {
      const r = parseFlushTimeout(new URLSearchParams(q));
      assert.equal(r.ok, false, q);
    }
  });
});

describe('control endpoints over HTTP', () => {
  const pushes: PushedConfig[] = [];
  const commands: string[] = [];
  const server = new ApiServer({
    listen: '127.0.0.1:0',
    auth: new StaticTokenAuthenticator(TOKEN),
    log: silentLogger(),
    handlers: {
      registry: new Registry(),
      readiness: () => ({ ready: true, reasons: [] }),
      status: () => ({}),
      queryEvents: () => Promise.resolve(done({ events: [], isTruncated: false })),
      control: {
        pushConfig: (p) => {
          pushes.push(p);
          return Promise.resolve(done({ applied: true, generation: p.generation, hash: p.hash }));
        },
        command: (kind, name, action) => {
          commands.push(`${kind}/${name}:${action}`);
          return Promise.resolve(name === 'nosuch' ? fail('not-found', 'no such') : done({ ok: true }));
        },
        reload: () => {
          commands.push('reload');
          return Promise.resolve(done({ reloaded: true, generation: 0, hash: null, reloads: 2 }));
        },
        flush: (backend, timeoutMs) => {
          commands.push(`flush ${backend ?? '*'} ${timeoutMs}`);
          return Promise.resolve(done({ flushed: true, timeoutMs, backends: [] }));
        },
      },
    },
  });
  let base = '';
  before(async () => {
    base = `http://127.0.0.1:${(await server.start()).port}`;
  });
  after(() => server.stop());
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

  it('PUT /v1/config needs a token, then hands the validated push over', async () => {
    const none = await fetch(`${base}/v1/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(good) });
    assert.equal(none.status, 401);
    const wrong = await fetch(`${base}/v1/config`, { method: 'PUT', headers: { ...headers, authorization: 'Bearer wrong-token-0123456789abc' }, body: JSON.stringify(good) });
    assert.equal(wrong.status, 403);
    assert.equal(pushes.length, 0);
    const r = await fetch(`${base}/v1/config`, { method: 'PUT', headers, body: JSON.stringify(good) });
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { applied: true, generation: 3, hash: 'abc' });
    assert.deepEqual(pushes, [good]);
  });
  it('refuses bad bodies: 400 invalid, 415 not JSON, 413 too large, 405 wrong method', async () => {
    const n = pushes.length;
    const invalid = await fetch(`${base}/v1/config`, { method: 'PUT', headers, body: JSON.stringify({ ...good, generation: 0 }) });
    assert.equal(invalid.status, 400);
    assert.match(((await invalid.json()) as { error: string }).error, /generation/);
    const syntax = await fetch(`${base}/v1/config`, { method: 'PUT', headers, body: '{"generation":' });
    assert.equal(syntax.status, 400);
    const text = await fetch(`${base}/v1/config`, { method: 'PUT', headers: { ...headers, 'content-type': 'text/plain' }, body: JSON.stringify(good) });
    assert.equal(text.status, 415);
    const big = await fetch(`${base}/v1/config`, { method: 'PUT', headers, body: JSON.stringify({ ...good, toml: 'x'.repeat(MAX_CONTROL_BODY) }) }).catch((e: unknown) => e as Error);
    // the server answers 413 and closes; the client may see the answer or a reset
    if (!(big instanceof Error)) assert.equal(big.status, 413);
    const get = await fetch(`${base}/v1/config`, { headers });
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'PUT');
    assert.equal(pushes.length, n, 'nothing reached the agent');
  });
  it('POST /v1/plugins|backends/{name}:{action}', async () => {
    assert.equal((await fetch(`${base}/v1/plugins/scsi:stop`, { method: 'POST' })).status, 401);
    assert.equal((await fetch(`${base}/v1/plugins/scsi:stop`, { method: 'POST', headers })).status, 200);
    assert.equal((await fetch(`${base}/v1/backends/db:restart`, { method: 'POST', headers })).status, 200);
    assert.equal((await fetch(`${base}/v1/backends/nosuch:start`, { method: 'POST', headers })).status, 404);
    assert.equal((await fetch(`${base}/v1/backends/db:start`, { headers })).status, 405);
    assert.equal((await fetch(`${base}/v1/plugins/db:flush`, { method: 'POST', headers })).status, 404);
    assert.deepEqual(commands, ['plugins/scsi:stop', 'backends/db:restart', 'backends/nosuch:start']);
  });
  it('POST /v1/reload, /v1/flush, /v1/backends/{name}:flush: 401 without a token, 403 with a wrong one, then handed over', async () => {
    commands.length = 0;
    const wrong = { authorization: 'Bearer wrong-token-0123456789abc' };
    for (const p of ['/v1/reload', '/v1/flush', '/v1/backends/db:flush', '/v1/flush?timeoutSeconds=bogus']) {
      const none = await fetch(`${base}${p}`, { method: 'POST' });
      assert.equal(none.status, 401, p);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer');
      assert.equal((await fetch(`${base}${p}`, { method: 'POST', headers: wrong })).status, 403, p);
    }
    assert.deepEqual(commands, [], 'nothing reached the agent');
    const r = await fetch(`${base}/v1/reload`, { method: 'POST', headers });
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { reloaded: true, generation: 0, hash: null, reloads: 2 });
    const f = await fetch(`${base}/v1/flush`, { method: 'POST', headers: { authorization: headers.authorization } });
    assert.equal(f.status, 200);
    assert.equal(((await f.json()) as { timeoutMs: number }).timeoutMs, FLUSH_DEFAULT_TIMEOUT_MS);
    assert.equal((await fetch(`${base}/v1/backends/db:flush?timeoutSeconds=3`, { method: 'POST', headers })).status, 200);
    const bad = await fetch(`${base}/v1/flush?timeoutSeconds=0`, { method: 'POST', headers });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /timeoutSeconds/);
    const get = await fetch(`${base}/v1/reload`, { headers });
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.deepEqual(commands, ['reload', `flush * ${FLUSH_DEFAULT_TIMEOUT_MS}`, 'flush db 3000']);
  });
});

describe('a standalone agent: POST /v1/reload reads --config and --storage-config again; POST /v1/flush', () => {
  // no collector: nothing reads /dev/kmsg, no root needed
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-reload-'));
  const configFile = path.join(dir, 'agent.toml');
  const storageFile = path.join(dir, 'storage.json');
  // allow_empty: these files have neither a collector nor a receiver, which a reload refuses otherwise
  const main = '[main]\napi_listen = "127.0.0.1:0"\nmulticast = false\nallow_empty = true\n';
  const p1 = `${main}\n[p1]\ntype = "parser"\nplugin = "scsi"\n`;
  const mem = (names: string[]) => JSON.stringify({ root: { elos: { EventLogging: { Plugins: Object.fromEntries(names.map((n) => [n, { File: 'memory', Filter: ['1 1 EQ'] }])) } } } });
  writeFileSync(configFile, p1);
  writeFileSync(storageFile, mem(['mem']));
  const agent = new Agent({
    log: silentLogger(), metrics: new AgentMetrics(), stateDir: path.join(dir, 'state'),
    configText: p1, storageConfig: { text: mem(['mem']), source: storageFile }, files: { config: configFile, storage: storageFile },
  });
  let base = '';
  let auth: Record<string, string> = {};
  interface S { reloads: number; plugins: { name: string; enabled: boolean }[]; storage: { backends: { name: string; started: boolean }[] } }
  const call = async (method: string, p: string, headers = auth) => {
    const r = await fetch(`${base}${p}`, { method, headers });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const status = async () => (await call('GET', '/v1/status')).body as unknown as S;
  before(async () => {
    await agent.start(parseAgentConfig(p1, configFile));
    base = `http://127.0.0.1:${agent.apiListen!.port}`;
    auth = { authorization: `Bearer ${readFileSync(path.join(dir, 'state', 'api-token'), 'utf8').trim()}` };
  });
  after(async () => {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('401 without the token, 403 with another; nothing reloaded', async () => {
    const before = (await status()).reloads;
    assert.equal((await call('POST', '/v1/reload', {})).status, 401);
    assert.equal((await call('POST', '/v1/reload', { authorization: 'Bearer not-the-token-0123456789' })).status, 403);
    assert.equal((await call('POST', '/v1/flush', {})).status, 401);
    assert.equal((await status()).reloads, before);
  });
  it('a changed --config is applied; the answer names the source', async () => {
    const before = (await status()).reloads;
    writeFileSync(configFile, `${p1}\n[p2]\ntype = "parser"\nplugin = "nvme"\n`);
    const r = await call('POST', '/v1/reload');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual({ ...r.body, reloads: 0 }, { reloaded: true, generation: 0, hash: null, reloads: 0, source: configFile, backendsStarted: [] });
    const s = await status();
    assert.equal(s.reloads, before + 1);
    assert.deepEqual(s.plugins.map((p) => p.name), ['p1', 'p2']);
  });
  it('an invalid file is refused (422) and changes nothing', async () => {
    const before = await status();
    writeFileSync(configFile, `${p1}\n[p3]\ntype = "parser"\nplugin = "nosuch"\n`);
    const r = await call('POST', '/v1/reload');
    assert.equal(r.status, 422);
    assert.match(String(r.body.error), /nosuch.*nothing changed/s);
    writeFileSync(configFile, p1);
    writeFileSync(storageFile, '{"root":');
    const bad = await call('POST', '/v1/reload');
    assert.equal(bad.status, 422);
    assert.match(String(bad.body.error), /storage\.json: not JSON/);
    assert.deepEqual(await status(), before);
  });
  it('a changed --storage-config is applied; flush answers per backend', async () => {
    writeFileSync(configFile, p1);
    writeFileSync(storageFile, mem(['mem', 'mem2']));
    assert.equal((await call('POST', '/v1/reload')).status, 200);
    const s = await status();
    assert.deepEqual(s.plugins.map((p) => p.name), ['p1']);
    assert.deepEqual(s.storage.backends.map((b) => [b.name, b.started]), [['mem', true], ['mem2', true]]);
    const f = await call('POST', '/v1/flush?timeoutSeconds=2');
    assert.equal(f.status, 200, JSON.stringify(f.body));
    assert.deepEqual(f.body, {
      flushed: true, timeoutMs: 2000,
      backends: ['mem', 'mem2'].map((b) => ({ backend: b, flushed: true, written: 0, queueDepth: 0, spoolBytes: 0, error: null })),
    });
    assert.equal((await call('POST', '/v1/backends/nosuch:flush')).status, 404);
    assert.equal((await call('POST', '/v1/backends/mem2:stop')).status, 200);
    const stopped = await call('POST', '/v1/backends/mem2:flush');
    assert.equal(stopped.status, 409);
    assert.match(String(stopped.body.error), /not started/);
  });
});

describe('pushed configuration helpers', () => {
  it('mainSectionToml keeps only [main]; pushedConfigText appends the pushed sections', () => {
    const main = mainSectionToml('[main]\nlog_level = "debug"\napi_listen = "127.0.0.1:0"\n\n[kmsg]\ntype = "collector"\n');
    assert.match(main, /\[main\]/);
    assert.match(main, /log_level = "debug"/);
    assert.doesNotMatch(main, /kmsg/);
    const text = pushedConfigText(main, '[scsi]\ntype = "parser"\n');
    assert.match(text, /\[main\][\s\S]*\[scsi\]/);
  });
  it('a pushed [main] or broken TOML is refused', () => {
    assert.throws(() => pushedConfigText('[main]\n', '[main]\nlog_level = "debug"\n'), /may not carry \[main\]/);
    assert.throws(() => pushedConfigText('[main]\n', '[x\n'), /toml:/);
  });
  it('applied.json: written 0600 atomically, read back; absent → null; garbage → error', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-applied-'));
    assert.equal(readAppliedConfig(dir), null);
    const a = { generation: 7, hash: 'h7', toml: '[x]\ntype = "parser"\nplugin = "scsi"\n', storage: { root: { elos: {} } } };
    writeAppliedConfig(dir, a);
    assert.deepEqual(readAppliedConfig(dir), a);
    assert.equal(statSync(path.join(dir, 'applied.json')).mode & 0o777, 0o600);
    writeFileSync(path.join(dir, 'applied.json'), '{"generation":0}');
    assert.throws(() => readAppliedConfig(dir), /not an applied configuration/);
  });
});

describe('parseKubeconfig', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-kubeconfig-'));
  writeFileSync(path.join(dir, 'ca.crt'), 'CA PEM');
  it('reads a token user with inline CA data', () => {
    const k = parseKubeconfig(`apiVersion: v1
kind: Config
current-context: c
clusters:
- name: cl
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: ${Buffer.from('CA').toString('base64')}
contexts:
- name: c
  context: { cluster: cl, user: u }
users:
- name: u
  user: { token: abc.def }
`);
    assert.equal(k.server, 'https://127.0.0.1:6443');
    assert.equal(k.ca?.toString(), 'CA');
    assert.equal(k.token, 'abc.def');
  });
  it('reads a client-certificate user with file paths relative to the kubeconfig', () => {
    writeFileSync(path.join(dir, 'c.crt'), 'CERT');
    writeFileSync(path.join(dir, 'c.key'), 'KEY');
    const file = path.join(dir, 'config');
    const k = parseKubeconfig(`current-context: c
clusters: [{ name: cl, cluster: { server: "https://h:1", certificate-authority: ca.crt } }]
contexts: [{ name: c, context: { cluster: cl, user: u } }]
users: [{ name: u, user: { client-certificate: c.crt, client-key: c.key } }]
`, file);
    assert.equal(k.ca?.toString(), 'CA PEM');
    assert.equal(k.cert?.toString(), 'CERT');
    assert.equal(k.key?.toString(), 'KEY');
    assert.equal(readFileSync(path.join(dir, 'ca.crt'), 'utf8'), 'CA PEM');
  });
  it('says what is wrong', () => {
    assert.throws(() => parseKubeconfig('current-context: nope\ncontexts: []\n', 'kc'), /kubeconfig kc: no context named "nope"/);
    assert.throws(() => parseKubeconfig('- a\n', 'kc'), /not a YAML mapping/);
  });
});

describe('microTime', () => {
  it('has microseconds', () => {
    assert.equal(microTime(new Date('2026-01-02T03:04:05.678Z')), '2026-01-02T03:04:05.678000Z');
  });
});
