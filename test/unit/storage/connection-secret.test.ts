// ConnectionSecret without a cluster: `<name>[/<key>]` parsing, the Secret
// resolver's answers for every API server reply (a fake client), and the
// postgres backend's start failing with the resolver's message and never
// the Secret's value. The real thing (API server, RBAC, PostgreSQL) is
// test/root/postgres-secret.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeResponse } from '../../../src/k8s/http.ts';
import { kubeSecretResolver } from '../../../src/k8s/secrets.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { postgresBackend } from '../../../src/storage/backends/postgres.ts';
import { CONNECTION_SECRET_STANDALONE_ERROR, DEFAULT_SECRET_KEY, parseSecretRef, PostgresConfig } from '../../../src/storage/backends/options.ts';
import type { SecretResolver } from '../../../src/storage/types.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

function fakeClient(answer: (path: string) => KubeResponse | Error) {
  const calls: string[] = [];
  return {
    calls,
    client: {
      request<T = unknown>(method: string, urlPath: string): Promise<KubeResponse<T>> {
        calls.push(`${method} ${urlPath}`);
        const a = answer(urlPath);
        return a instanceof Error ? Promise.reject(a) : Promise.resolve(a as KubeResponse<T>);
      },
    },
  };
}
const reply = (status: number, body: unknown): KubeResponse => ({ status, body, text: JSON.stringify(body) });

describe('ConnectionSecret', () => {
  it('is <name> or <name>/<key>; the key defaults to connectionString', () => {
    assert.equal(DEFAULT_SECRET_KEY, 'connectionString');
    assert.deepEqual(parseSecretRef('peripety-pg'), { name: 'peripety-pg', key: 'connectionString' });
    assert.deepEqual(parseSecretRef('pg.example/url_1.x-y'), { name: 'pg.example', key: 'url_1.x-y' });
    for (const bad of ['Peripety_PG', 'pg/', '/url', 'pg/a/b', 'pg/k!', '', 'a'.repeat(254)]) {
      assert.equal(parseSecretRef(bad), null, bad);
      assert.equal(PostgresConfig.safeParse({ ConnectionSecret: bad }).success, false, bad);
    }
    assert.equal(PostgresConfig.safeParse({ ConnectionSecret: 'pg/url' }).success, true);
  });

  it('the resolver: the value, or a message for every way it can fail, never the value', async () => {
    const value = 'postgresql://u:s3cr3t-pw@db:5432/events';
    const answers: Record<string, KubeResponse | Error> = {
      ok: reply(200, { kind: 'Secret', data: { connectionString: b64(value), url: b64('x') } }),
      gone: reply(404, { kind: 'Status', message: 'secrets "gone" not found' }),
      denied: reply(403, { kind: 'Status', message: 'secrets "denied" is forbidden: User "system:serviceaccount:ns1:peripety-agent" cannot get resource "secrets"' }),
      unauth: reply(401, { kind: 'Status', message: 'Unauthorized' }),
      broken: reply(500, { kind: 'Status', message: 'etcd is down' }),
      nodata: reply(200, { kind: 'Secret' }),
      weird: reply(200, { kind: 'Secret', data: { connectionString: '%%%' } }),
      empty: reply(200, { kind: 'Secret', data: { connectionString: b64('  \n') } }),
      notsecret: reply(200, ['not', 'an', 'object']),
      down: new Error('connect ECONNREFUSED 10.0.0.1:443'),
    };
    const { client, calls } = fakeClient((p) => answers[p.split('/').pop()!]!);
    const read = kubeSecretResolver({ client, namespace: 'ns1' });
    assert.deepEqual(await read({ name: 'ok', key: 'connectionString' }), { ok: true, value });
    assert.equal(calls[0], 'GET /api/v1/namespaces/ns1/secrets/ok');
    const err = async (name: string, key = 'connectionString') => {
      const r = await read({ name, key });
      assert.equal(r.ok, false, name);
      const msg = r.ok ? '' : r.error;
      assert.ok(!msg.includes('s3cr3t') && !msg.includes(b64(value)), `${name}: no value in ${msg}`);
      return msg;
    };
    assert.match(await err('ok', 'password'), /^Secret "ns1\/ok" has no key "password" \(its keys: "connectionString", "url"\)/);
    assert.match(await err('gone'), /^Secret "ns1\/gone" not found/);
    assert.match(await err('denied'), /^the agent may not read Secret "ns1\/denied" \(403 Forbidden\): its ServiceAccount \("system:serviceaccount:ns1:peripety-agent"\) needs "get" on secrets with resourceNames \["denied"\] in namespace "ns1"/);
    assert.match(await err('unauth'), /401 Unauthorized/);
    assert.match(await err('broken'), /HTTP 500: etcd is down/);
    assert.match(await err('nodata'), /its keys: none/);
    assert.match(await err('weird'), /not base64/);
    assert.match(await err('empty'), /is empty/);
    assert.match(await err('notsecret'), /not a Secret/);
    assert.match(await err('down'), /the API server did not answer: connect ECONNREFUSED/);
  });

  it('the postgres backend: standalone refuses it; in Kubernetes mode start fails with the resolver\'s message', async () => {
    const ctx = { log: silentLogger(), stateDir: '/nonexistent', hostname: 'n1', env: {} };
    const standalone = postgresBackend.build('pg', PostgresConfig.parse({ ConnectionSecret: 'pg' }), ctx);
    await assert.rejects(standalone.start(), { message: `postgres backend "pg": ${CONNECTION_SECRET_STANDALONE_ERROR}` });

    const asked: unknown[] = [];
    const failing: SecretResolver = (ref) => {
      asked.push(ref);
      return Promise.resolve({ ok: false, error: 'Secret "ns1/pg" not found' });
    };
    const b = postgresBackend.build('pg', PostgresConfig.parse({ ConnectionSecret: 'pg/url' }), { ...ctx, secret: failing });
    await assert.rejects(b.start(), { message: 'postgres backend "pg": ConnectionSecret: Secret "ns1/pg" not found' });
    assert.deepEqual(asked, [{ name: 'pg', key: 'url' }]);

    // a value that is no connection string: said so, without the value
    const junk: SecretResolver = () => Promise.resolve({ ok: true, value: 'hunter2-not-a-url' });
    const j = postgresBackend.build('pg', PostgresConfig.parse({ ConnectionSecret: 'pg' }), { ...ctx, secret: junk });
    await assert.rejects(j.start(), (e: Error) => {
      assert.match(e.message, /the connection string from ConnectionSecret pg\/connectionString is not a URL/);
      assert.ok(!e.message.includes('hunter2'));
      return true;
    });
  });
});
