// Issue 10 A5: the control API stays up under a cheap attack. A real agent
// (bin/peripety agent, standalone) and a real slowloris client: 200 sockets
// from 127.0.0.1 that each send a request line and then one header line every
// 2 s, reconnecting whenever the agent closes them. Meanwhile another client,
// from 127.0.0.2 (loopback: the agent sees a different source address),
// probes /healthz, /readyz and /metrics every ~200 ms on fresh connections:
// every probe must be answered. Then SIGTERM, with the slowloris still
// running, must end the agent within a bounded time.
// Root: the agent reads /dev/kmsg.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AgentProcess, startAgent, testConfig } from '../../helpers/agent.ts';
import { isRoot } from '../../helpers/faults.ts';
import { HEADER_EVERY_MS, probe, Slowloris } from '../../helpers/slowloris.ts';
import { parseMetrics, sumMetric } from '../../helpers/prom-text.ts';

const ATTACK_SOCKETS = 200;
const PROBE_EVERY_MS = 200;
const PROBE_FOR_MS = 10_000;
/** SIGTERM must end the agent within this, slowloris or not */
const EXIT_DEADLINE_MS = 10_000;
/** how long the test waits to measure a slow exit before killing */
const EXIT_MEASURE_MS = 60_000;

describe('control API under a slowloris from one address (real agent)', { skip: !isRoot() && 'NOT ROOT: the agent reads /dev/kmsg' }, () => {
  let agent: AgentProcess;
  let port = 0;
  let loris: Slowloris | null = null;

  before(async () => {
    agent = await startAgent({ config: testConfig() });
    port = Number(new URL(agent.apiUrl()).port);
  });
  after(async () => {
    loris?.stop();
    await agent?.stop('SIGKILL');
  });

  it('answers every /healthz, /readyz and /metrics probe of another client while 200 slow sockets hold on', async () => {
    loris = new Slowloris(port, ATTACK_SOCKETS);
    loris.start();
    // let the attack settle in (every socket connected and sent its first lines)
    await sleep(HEADER_EVERY_MS + 500);
    const paths = ['/healthz', '/readyz', '/metrics'];
    const results: { ok: boolean; detail: string }[] = [];
    const pending: Promise<void>[] = [];
    const t0 = Date.now();
    for (let i = 0; Date.now() - t0 < PROBE_FOR_MS; i++) {
      pending.push(probe(port, paths[i % paths.length]!).then((r) => void results.push(r)));
      await sleep(PROBE_EVERY_MS);
    }
    await Promise.all(pending);
    const failed = results.filter((r) => !r.ok);
    console.log(`# probes: ${results.length - failed.length} of ${results.length} answered; slowloris opened ${loris.opened} sockets, ${loris.closedByServer} closed by the agent, ${loris.sockets.size} open now`);
    assert.ok(results.length >= 40, `only ${results.length} probes ran`);
    assert.equal(failed.length, 0, `${failed.length} of ${results.length} probes failed: ${[...new Set(failed.map((f) => f.detail))].slice(0, 5).join('; ')}`);
    // the agent says what it refused, by a bounded reason
    const m = parseMetrics((await probe(port, '/metrics')).body);
    const refused = sumMetric(m, 'peripety_api_connections_refused_total');
    console.log(`# peripety_api_connections_refused_total: ${refused}`);
    assert.ok(refused > 0, 'the extra connections of the flooding client are counted as refused');
  });

  it('exits on SIGTERM within a bounded time while the slowloris keeps its sockets open', async () => {
    assert.ok(loris && loris.sockets.size > 0, 'the slowloris still holds sockets');
    const t0 = Date.now();
    agent.proc.kill('SIGTERM');
    const exit = await Promise.race([agent.exited, sleep(EXIT_MEASURE_MS).then(() => null)]);
    const ms = Date.now() - t0;
    console.log(`# SIGTERM → ${exit ? `exit ${JSON.stringify(exit)}` : 'still running'} after ${ms} ms (${loris.sockets.size} slow sockets open)`);
    assert.ok(exit !== null, `the agent did not exit within ${EXIT_MEASURE_MS} ms of SIGTERM`);
    assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
    assert.ok(ms <= EXIT_DEADLINE_MS, `the agent took ${ms} ms to exit (limit ${EXIT_DEADLINE_MS} ms)`);
  });
});
