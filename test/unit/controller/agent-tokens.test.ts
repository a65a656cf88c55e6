// The controller's per-node token cache (src/controller/agent-tokens.ts):
// one audience per node, reuse until 80% of the lifetime, one request for
// concurrent callers, failures not cached, a bounded cache.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { agentAudience } from '../../../src/api/tokenreview.ts';
import { AgentTokens, type TokenIssuer } from '../../../src/controller/agent-tokens.ts';

function fixture(opts: { max?: number; expirationSeconds?: number } = {}) {
  let now = 1_000_000;
  const asked: { audience: string; seconds: number }[] = [];
  let fail: Error | null = null;
  let seq = 0;
  const issue: TokenIssuer = async (audience, seconds) => {
    asked.push({ audience, seconds });
    await Promise.resolve();
    if (fail) throw fail;
    return { token: `tok-${audience}-${++seq}`, expiresAt: now + seconds * 1000 };
  };
  const registry = new Registry();
  const tokens = new AgentTokens({ issue, now: () => now, registry, ...opts });
  const counted = async (result: string) => (await registry.getSingleMetric('peripety_controller_agent_token_requests_total')!.get()).values.find((v) => v.labels.result === result)?.value;
  return {
    tokens, asked, counted,
    advance: (ms: number) => (now += ms),
    failWith: (e: Error | null) => (fail = e),
  };
}

describe('AgentTokens', () => {
  it('asks for the audience peripety-agent:<node>, one token per node, reused', async () => {
    const f = fixture();
    const a = await f.tokens.get('node-a');
    const b = await f.tokens.get('node-b');
    assert.notEqual(a, b);
    assert.equal(await f.tokens.get('node-a'), a);
    assert.deepEqual(f.asked, [{ audience: 'peripety-agent:node-a', seconds: 600 }, { audience: 'peripety-agent:node-b', seconds: 600 }]);
    assert.equal(agentAudience('node-a'), 'peripety-agent:node-a');
    assert.equal(await f.counted('ok'), 2);
    assert.equal(await f.counted('failed'), 0);
  });

  it('never asks for less than 10 minutes (the TokenRequest minimum)', async () => {
    const f = fixture({ expirationSeconds: 60 });
    await f.tokens.get('n');
    assert.equal(f.asked[0]!.seconds, 600);
  });

  it('asks again at 80% of the lifetime', async () => {
    const f = fixture();
    const first = await f.tokens.get('n');
    f.advance(479_000);
    assert.equal(await f.tokens.get('n'), first);
    f.advance(2_000);
    const second = await f.tokens.get('n');
    assert.notEqual(second, first);
    assert.equal(f.asked.length, 2);
  });

  it('concurrent callers for one node share one request', async () => {
    const f = fixture();
    const all = await Promise.all([f.tokens.get('n'), f.tokens.get('n'), f.tokens.get('n')]);
    assert.equal(new Set(all).size, 1);
    assert.equal(f.asked.length, 1);
  });

  it('a failed request is an error naming the node and audience, not cached; a failed refresh keeps a token still good', async () => {
    const f = fixture();
    f.failWith(new Error('HTTP 403: forbidden'));
    await assert.rejects(f.tokens.get('n'), /cannot get a token for node n \(TokenRequest for the audience peripety-agent:n\): HTTP 403: forbidden/);
    f.failWith(null);
    const t = await f.tokens.get('n');
    assert.equal(f.asked.length, 2);
    assert.equal(await f.counted('failed'), 1);
    // past 80%: the refresh fails, the token (2 minutes left) still serves
    f.advance(480_000);
    f.failWith(new Error('API server down'));
    assert.equal(await f.tokens.get('n'), t);
    // less than a minute left: no longer
    f.advance(70_000);
    await assert.rejects(f.tokens.get('n'), /API server down/);
  });

  it('holds at most `max` nodes (the least recently used goes) and forgets a node that is gone', async () => {
    const f = fixture({ max: 2 });
    await f.tokens.get('a');
    await f.tokens.get('b');
    await f.tokens.get('a');
    await f.tokens.get('c');
    assert.equal(f.tokens.size, 2);
    f.asked.length = 0;
    await f.tokens.get('a');
    assert.equal(f.asked.length, 0, 'a was used more recently than b');
    await f.tokens.get('b');
    assert.deepEqual(f.asked.map((x) => x.audience), ['peripety-agent:b']);
    f.tokens.forget('b');
    assert.equal(f.tokens.size, 1);
  });
});
