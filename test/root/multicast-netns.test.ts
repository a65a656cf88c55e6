// The seed's multicast across a real (virtual) network: three network
// namespaces on one bridge. The real agent runs in A and broadcasts from A's
// address; `prpt monitor` listens in B, `peripety receive` (stdout receiver)
// in C, and `prpt monitor --agent` streams over SSE inside A. Kernel lines go
// into the real /dev/kmsg (shared by every network namespace). Then packets
// are dropped at random (iptables `statistic`; this kernel has no netem) in
// C, and later in B, and the receivers there must count exactly what they
// missed. Needs root; cleans up every namespace, link and process.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { StorageEvent } from '../../src/events/schema.ts';
import { ROOT, testConfig } from '../helpers/agent.ts';
import { isRoot, requireRoot, run } from '../helpers/faults.ts';
import { injectKmsg, uniqueDevice } from '../helpers/kmsg.ts';
import { type Lan, makeLan, type NsProcess, spawnIn } from '../helpers/netns.ts';

interface Envelope {
  sender: string;
  seq: number;
  truncated: boolean;
  event: StorageEvent;
}

const PORT = 6000;
const lans: Lan[] = [];
const procs: NsProcess[] = [];
after(async () => {
  for (const p of procs) await p.stop('SIGKILL');
  for (const l of lans) await l.cleanup();
});

const node = (ns: string, label: string, args: string[]) => {
  const p = spawnIn(ns, label, process.execPath, args);
  procs.push(p);
  return p;
};
const parse = <T>(lines: string[]) => lines.map((l) => JSON.parse(l) as T);
const dropRule = (action: '-A' | '-D') => [action, 'INPUT', '-p', 'udp', '--dport', String(PORT), '-m', 'statistic', '--mode', 'random', '--probability', '0.3', '-j', 'DROP'];
/** the same event as printed by any of the processes (all print the zod-parsed event) */
const key = (e: StorageEvent) => JSON.stringify(e);

describe('multicast across network namespaces', { skip: !isRoot() && 'NOT ROOT: needs network namespaces and /dev/kmsg' }, () => {
  it('every event reaches each receiver exactly once; receivers on a lossy link count exactly what they missed', { timeout: 90_000 }, async (t) => {
    if (!requireRoot(t, 'needs network namespaces and /dev/kmsg')) return;
    await run('iptables', ['--version']).catch(() => assert.fail('iptables is missing: run hack/ci-deps.sh'));
    const lan = await makeLan(3);
    lans.push(lan);
    const [A, B, C] = lan.hosts as [typeof lan.hosts[0], typeof lan.hosts[0], typeof lan.hosts[0]];
    const g = randomBytes(2);
    const group = `239.77.${g[0]}.${1 + (g[1]! % 250)}`;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'prpt-mcast-'));

    // B: prpt monitor, with the envelope (sender, seq) of each datagram
    const monB = node(B.ns, 'prpt monitor in B', [path.join(ROOT, 'bin/prpt'), 'monitor', '--json', '--envelope', '--multicast', `${group}:${PORT}`, '--interface', B.ip]);
    await monB.waitErr(/listening on/);
    // C: peripety receive → stdout receiver (JSON)
    const recvToml = path.join(dir, 'receive.toml');
    writeFileSync(recvToml, `[main]\nreceiver_bind_ip = "${C.ip}"\nreceiver_multicast_ip = "${group}"\nreceiver_multicast_port = ${PORT}\n\n[out]\ntype = "receiver"\nplugin = "stdout"\nformat = "json"\n`);
    const recvC = node(C.ns, 'peripety receive in C', [path.join(ROOT, 'bin/peripety'), 'receive', '--config', recvToml]);
    await recvC.waitErr(/"receiving multicast events"/);
    // A: the agent, broadcasting from A's address; its own stdout receiver is the record of what it emitted
    const agentToml = path.join(dir, 'agent.toml');
    writeFileSync(agentToml, testConfig({ extraMain: `receiver_bind_ip = "${A.ip}"\nreceiver_multicast_ip = "${group}"\nreceiver_multicast_port = ${PORT}\n` }));
    const stateDir = path.join(dir, 'state');
    const agent = node(A.ns, 'agent in A', [path.join(ROOT, 'bin/peripety'), 'agent', '--config', agentToml, '--state-dir', stateDir]);
    await agent.waitErr(/"agent started"/, 20_000);
    // the sender logs "ready" from its socket's bind callback, which may come after "agent started"
    await agent.waitErr(/"multicast sender ready"/, 10_000);
    assert.match(agent.stderr(), new RegExp(`"group":"${group.replaceAll('.', '\\.')}:${PORT}","bind":"${A.ip.replaceAll('.', '\\.')}".*"multicast sender ready"`));
    const api = /"listen":"([^"]+)","msg":"API listening"/.exec(agent.stderr())![1]!;
    // D: prpt monitor over SSE, inside A (the API listens on A's loopback)
    const sseD = node(A.ns, 'prpt monitor --agent in A', [path.join(ROOT, 'bin/prpt'), 'monitor', '--json', '--agent', `http://${api}`, '--token-file', path.join(stateDir, 'api-token')]);
    await sseD.waitErr(/streaming from/);

    const devs = (lines: string[], dev: string, get: (l: string) => StorageEvent = (l) => JSON.parse(l) as StorageEvent) =>
      lines.map(get).filter((e) => e.dev_name === dev);
    const fromEnv = (l: string) => (JSON.parse(l) as Envelope).event;
    const inject = (dev: string, n: number) => {
      for (let i = 0; i < n; i++) injectKmsg(`Buffer I/O error on dev ${dev}, logical block ${i}, async page read`);
    };
    const waitAll = async (dev: string, n: number, who: [NsProcess, ((l: string) => StorageEvent)?][]) => {
      for (const [p, get] of who) await p.waitLines((ls) => devs(ls, dev, get).length >= n, `${n} events of ${dev}`, 20_000);
    };

    // --- phase 1: no loss --------------------------------------------------
    const dev1 = uniqueDevice('mca');
    const N = 200;
    inject(dev1, N);
    await waitAll(dev1, N, [[agent], [monB, fromEnv], [recvC], [sseD]]);
    const sent1 = devs(agent.lines, dev1).map((e) => e.event_id).sort();
    assert.equal(new Set(sent1).size, N, 'the agent emitted one event per line');
    for (const [name, p, get] of [['B (prpt monitor)', monB, fromEnv], ['C (peripety receive)', recvC, undefined], ['A (SSE)', sseD, undefined]] as const) {
      const got = devs(p.lines, dev1, get).map((e) => e.event_id).sort();
      assert.deepEqual(got, sent1, `${name} got every event exactly once`);
    }
    const envs1 = parse<Envelope>(monB.lines);
    assert.equal(envs1[0]!.seq, 1, 'B heard the agent from its first datagram');
    assert.deepEqual(envs1.map((e) => e.seq), envs1.map((_, i) => i + 1), 'B: sequence numbers 1, 2, 3, … without gap or repeat');
    assert.equal(new Set(envs1.map((e) => e.sender)).size, 1, 'one sender');
    assert.doesNotMatch(recvC.stderr(), /events lost/);
    assert.doesNotMatch(monB.stderr(), /lost/);

    // --- phase 2: 30% of the datagrams to C dropped --------------------------
    await run('ip', ['netns', 'exec', C.ns, 'iptables', ...dropRule('-A')]);
    const dev2 = uniqueDevice('mcb');
    const M = 300;
    inject(dev2, M);
    await waitAll(dev2, M, [[agent], [monB, fromEnv], [sseD]]);
    await run('ip', ['netns', 'exec', C.ns, 'iptables', ...dropRule('-D')]);
    const sentinel2 = uniqueDevice('mcs');
    inject(sentinel2, 1);
    await waitAll(sentinel2, 1, [[monB, fromEnv], [recvC]]);
    const gotC2 = devs(recvC.lines, dev2).length;
    await recvC.waitErr(/"multicast events lost"/);
    const stopC = await recvC.stop('SIGTERM');
    assert.equal(stopC.code, 0, 'peripety receive exits 0 on SIGTERM');
    const summary = JSON.parse(recvC.stderr().split('\n').find((l) => l.includes('"multicast receive stopped"'))!) as { received: number; lost: number; duplicates: number };
    // B heard everything: its sequence numbers tell which datagrams C had and which it missed.
    const seqOf = new Map(parse<Envelope>(monB.lines).map((e) => [key(e.event), e.seq]));
    const seqsC = parse<StorageEvent>(recvC.lines).map((e) => seqOf.get(key(e)));
    assert.ok(seqsC.every((s) => s !== undefined), 'everything C printed was sent');
    const first = Math.min(...(seqsC as number[]));
    const last = Math.max(...(seqsC as number[]));
    const missing = last - first + 1 - new Set(seqsC).size;
    t.diagnostic(`lossy C: the agent sent ${M} events of this phase; C received ${gotC2} of them and reported ${summary.lost} lost in all (received ${summary.received} over seq ${first}-${last})`);
    console.error(`# multicast netns: phase 1 ${N} sent, B/C/SSE got ${N} each; phase 2 (30% drop at C) ${M} sent, C got ${gotC2}, C lost ${summary.lost} (datagrams ${first}-${last}: received ${summary.received} + lost ${summary.lost})`);
    assert.ok(gotC2 < M, 'C really lost some');
    assert.ok(gotC2 > M / 3, 'C got most');
    assert.equal(summary.received, seqsC.length, 'C delivered every datagram it counted');
    assert.equal(new Set(seqsC).size, seqsC.length, 'C delivered none twice');
    assert.equal(summary.lost, missing, 'C counted exactly the datagrams it missed');
    assert.equal(summary.received + summary.lost, last - first + 1, 'received + lost = sent');

    // --- phase 3: 30% dropped at B (prpt monitor) ----------------------------
    await run('ip', ['netns', 'exec', B.ns, 'iptables', ...dropRule('-A')]);
    const dev3 = uniqueDevice('mcc');
    const K = 150;
    inject(dev3, K);
    await waitAll(dev3, K, [[agent], [sseD]]);
    await run('ip', ['netns', 'exec', B.ns, 'iptables', ...dropRule('-D')]);
    const sentinel3 = uniqueDevice('mct');
    inject(sentinel3, 1);
    await waitAll(sentinel3, 1, [[monB, fromEnv], [sseD]]);
    const stopB = await monB.stop('SIGTERM');
    assert.equal(stopB.code, 0, 'prpt monitor exits 0 on SIGTERM');
    const envs = parse<Envelope>(monB.lines);
    const seqsB = envs.map((e) => e.seq);
    const holes = seqsB.at(-1)! - seqsB.length;
    const m = /prpt monitor: (\d+) events received, (\d+) shown, (\d+) lost/.exec(monB.stderr());
    assert.ok(m, monB.stderr());
    const gotB3 = devs(monB.lines, dev3, fromEnv).length;
    t.diagnostic(`lossy B: ${K} sent, B got ${gotB3}; B reported ${m[3]} lost, ${holes} holes in its sequence numbers`);
    console.error(`# multicast netns: phase 3 (30% drop at B) ${K} sent, B got ${gotB3}, B reported ${m[3]} lost = ${holes} holes`);
    assert.ok(gotB3 < K && gotB3 > K / 3);
    assert.match(monB.stderr(), /prpt monitor: lost \d+ events? \(from [\d.]+:\d+, sender [0-9a-f]{8}, seq \d+/);
    assert.equal(Number(m[3]), holes, 'B counted exactly the datagrams it missed');
    assert.equal(Number(m[1]), seqsB.length);

    // the SSE client in A lost nothing in any phase
    for (const [dev, n] of [[dev1, N], [dev2, M], [dev3, K]] as const) {
      assert.equal(new Set(devs(sseD.lines, dev).map((e) => e.event_id)).size, n);
      assert.equal(devs(sseD.lines, dev).length, n);
    }
    // the agent counted one datagram per event it emitted
    const metrics = await run('ip', ['netns', 'exec', A.ns, process.execPath, '-e', `fetch('http://${api}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
    const sentTotal = Number(/^peripety_multicast_sent_datagrams_total (\d+)$/m.exec(metrics.stdout)?.[1]);
    assert.ok(sentTotal >= seqsB.at(-1)!, `sent ${sentTotal} ≥ last sequence number B saw ${seqsB.at(-1)}`);
    assert.match(metrics.stdout, /^peripety_stream_clients 1$/m);

    assert.equal((await sseD.stop('SIGTERM')).code, 0);
    assert.equal((await agent.stop('SIGTERM')).code, 0);
    await lan.cleanup();
    const left = await run('ip', ['netns', 'list']);
    assert.doesNotMatch(left.stdout, new RegExp(lan.hosts[0]!.ns.slice(0, -2)), 'namespaces removed');
  });
});
