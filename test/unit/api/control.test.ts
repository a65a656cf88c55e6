// The control endpoints of the HTTP adapter (PUT /v1/config, POST
// /v1/{plugins,backends}/{name}:{action}) on a loopback socket, the pure
// validation, the pushed-configuration helpers of the agent and the
// kubeconfig reader.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { StaticTokenAuthenticator } from '../../../src/api/auth.ts';
import { ApiServer, type ConfigPush, MAX_CONTROL_BODY, parseCommandPath, parseConfigPush } from '../../../src/api/server.ts';
import { mainSectionToml, pushedConfigText, readAppliedConfig, writeAppliedConfig } from '../../../src/daemon/agent.ts';
import { parseKubeconfig } from '../../../src/k8s/http.ts';
import { microTime } from '../../../src/k8s/registration.ts';
import { silentLogger } from '../../../src/log/logger.ts';

const TOKEN = 'test-token-0123456789abcdef';
const good = { generation: 3, hash: 'abc', toml: '[x]\ntype = "parser"\nplugin = "scsi"\n', storage: { root: {} } };

describe('parseConfigPush', () => {
  it('accepts the four fields', () => {
    assert.deepEqual(parseConfigPush(good), { ok: true, push: good });
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
      const r = parseConfigPush(body);
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
  });
  it('refuses anything else', () => {
    for (const p of ['/v1/plugins/scsi', '/v1/plugins/scsi:flush', '/v1/plugins/:stop', '/v1/plugins/a/b:stop', '/v1/widgets/a:stop', '/v1/plugins/%zz:stop']) {
      assert.equal(parseCommandPath(p), null, p);
    }
  });
});

describe('control endpoints over HTTP', () => {
  const pushes: ConfigPush[] = [];
  const commands: string[] = [];
  const server = new ApiServer({
    listen: '127.0.0.1:0',
    auth: new StaticTokenAuthenticator(TOKEN),
    log: silentLogger(),
    handlers: {
      registry: new Registry(),
      readiness: () => ({ ready: true, reasons: [] }),
      status: () => ({}),
      queryEvents: () => Promise.resolve({ events: [], isTruncated: false }),
      control: {
        pushConfig: (p) => {
          pushes.push(p);
          return Promise.resolve({ status: 200, body: { applied: true, generation: p.generation, hash: p.hash } });
        },
        command: (kind, name, action) => {
          commands.push(`${kind}/${name}:${action}`);
          return Promise.resolve(name === 'nosuch' ? { status: 404, body: { error: 'no such' } } : { status: 200, body: { ok: true } });
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
    assert.equal((await fetch(`${base}/v1/backends/db:flush`, { method: 'POST', headers })).status, 404);
    assert.deepEqual(commands, ['plugins/scsi:stop', 'backends/db:restart', 'backends/nosuch:start']);
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
