// The agent push client (src/controller/agent-client.ts) against a loopback
// server: the body is the shared schema's, the token is the node's, an
// answer other than 200 is a value.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parsePushedConfig } from '../../../src/contracts/pushed-config.ts';
import { AgentClient, CONTROLLER_HEADER } from '../../../src/controller/agent-client.ts';

describe('AgentClient', () => {
  const seen: { auth?: string; who?: string; body: unknown }[] = [];
  let answer = { status: 200, body: '{"applied":true}' };
  const server = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      seen.push({ auth: req.headers.authorization, who: req.headers[CONTROLLER_HEADER.toLowerCase()] as string | undefined, body: text ? JSON.parse(text) : null });
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
    });
  });
  let base: URL;
  const client = new AgentClient({ tokens: { get: async (node) => `token-for-${node}`, forget() {} }, identity: 'replica-1' });
  const config = { generation: 2, hash: 'h', toml: '', storage: { root: {} } };
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  });
  after(() => server.close());

  it('puts the configuration with the node\'s token; the agent parses it with the same schema', async () => {
    assert.deepEqual(await client.push('n1', base, config, new AbortController().signal), { kind: 'applied' });
    const last = seen.at(-1)!;
    assert.equal(last.auth, 'Bearer token-for-n1');
    assert.equal(last.who, 'replica-1');
    assert.deepEqual(parsePushedConfig(last.body), { ok: true, push: config });
  });

  it('an answer other than 200 is refused with the agent\'s message and applied generation', async () => {
    answer = { status: 409, body: '{"error":"older","generation":9}' };
    assert.deepEqual(await client.push('n1', base, config, new AbortController().signal), { kind: 'refused', status: 409, detail: 'older', appliedGeneration: 9 });
    answer = { status: 200, body: '{}' };
  });

  it('a body the schema refuses is never sent', async () => {
    const before = seen.length;
    await assert.rejects(client.push('n1', base, { ...config, generation: 0 }, new AbortController().signal));
    assert.equal(seen.length, before);
  });

  it('no answer is unreachable; aborted by leadership is aborted', async () => {
    const closed = new URL('http://127.0.0.1:1/');
    const r = await client.push('n1', closed, config, new AbortController().signal);
    assert.equal(r.kind, 'unreachable');
    const stop = new AbortController();
    stop.abort();
    assert.deepEqual(await client.push('n1', base, config, stop.signal), { kind: 'aborted' });
  });

  it('a command answers per node', async () => {
    assert.deepEqual(await client.command('n1', 'e', base, 'v1/reload', new AbortController().signal), { node: 'n1', ok: true, message: '' });
    answer = { status: 404, body: '{"error":"no backend"}' };
    assert.deepEqual(await client.command('n1', 'e', base, 'v1/backends/x:flush', new AbortController().signal), { node: 'n1', ok: false, message: 'the agent answered HTTP 404: no backend' });
    answer = { status: 200, body: '{}' };
  });
});
