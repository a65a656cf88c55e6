// Issue 10 item 15: `?__proto__=1` was accepted by GET /v1/events where every
// other unknown query parameter is refused with 400. A real ApiServer on a
// loopback socket; names that live on Object.prototype must be refused like
// any other unknown name, given once or twice.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { StaticTokenAuthenticator } from '../../src/api/auth.ts';
import type { EventsRequest } from '../../src/api/query.ts';
import { ApiServer } from '../../src/api/server.ts';
import { done } from '../../src/contracts/outcome.ts';
import { silentLogger } from '../../src/log/logger.ts';

const TOKEN = 'hostile-query-token-0123456789';
const PROTOTYPE_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf'];

describe('GET /v1/events refuses prototype-ish query parameter names', () => {
  const asked: EventsRequest[] = [];
  const server = new ApiServer({
    listen: '127.0.0.1:0',
    auth: new StaticTokenAuthenticator(TOKEN),
    log: silentLogger(),
    handlers: {
      registry: new Registry(),
      readiness: () => ({ ready: true, reasons: [] }),
      status: () => ({}),
      queryEvents: (req) => {
        asked.push(req);
        return Promise.resolve(done({ events: [], isTruncated: false }));
      },
    },
  });
  let base = '';
  before(async () => {
    base = `http://127.0.0.1:${(await server.start()).port}`;
  });
  after(() => server.stop());
  const get = async (query: string) => {
    const r = await fetch(`${base}/v1/events?${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: r.status, body: (await r.json()) as { error?: string } };
  };

  for (const name of PROTOTYPE_NAMES) {
    it(`?${name}=1 → 400 naming it, alone, with a valid parameter, and given twice`, async () => {
      for (const q of [`${name}=1`, `limit=5&${name}=1`, `${encodeURIComponent(name)}=%7B%7D`]) {
        const r = await get(q);
        assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.body)}`);
        assert.match(r.body.error ?? '', new RegExp(`unknown parameter "${name}"`), q);
      }
      const twice = await get(`${name}=1&${name}=2`);
      assert.equal(twice.status, 400, JSON.stringify(twice.body));
      assert.match(twice.body.error ?? '', new RegExp(`"${name}"`));
    });
  }

  it('no refused query ever reached the storage query', async () => {
    const n = asked.length;
    assert.equal((await get('limit=5')).status, 200);
    assert.equal(asked.length, n + 1);
    assert.equal(n, 0, `refused queries were run: ${JSON.stringify(asked)}`);
  });
});
