// The [main] multicast keys: defaults keep the seed's behaviour (broadcast
// on, TTL 1, loopback on), bad values name the key, and the agent's
// built-in receivers follow `multicast`.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { loadConfig } from '../../../src/config/load.ts';
import { lookupPluginSchema } from '../../../src/config/plugins.ts';
import { builtinReceivers } from '../../../src/agent/plugins.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { AgentMetrics } from '../../../src/metrics/agent-metrics.ts';
import { MulticastSender } from '../../../src/multicast/sender.ts';
import type { QueuedReceiver } from '../../../src/receivers/queued.ts';

function load(main: string) {
  return loadConfig(`[main]\n${main}\n`, lookupPluginSchema);
}

const built: QueuedReceiver[] = [];
after(async () => {
  for (const r of built) await r.close(100);
});

describe('[main] multicast keys', () => {
  it('defaults keep the seed: broadcast on, TTL 1, loopback, 1400-byte datagrams', () => {
    const r = load('');
    assert.ok(r.ok);
    const m = r.config.main;
    assert.equal(m.multicast, true);
    assert.equal(m.multicast_ttl, 1);
    assert.equal(m.multicast_loopback, true);
    assert.equal(m.multicast_interface, undefined);
    assert.equal(m.multicast_max_datagram, 1400);
    assert.equal(m.receiver_multicast_ip, '239.0.0.1');
    assert.equal(m.receiver_multicast_port, 6000);
  });

  const bad: [string, string, RegExp][] = [
    ['unicast group', 'receiver_multicast_ip = "10.0.0.1"', /^config: \[main\] receiver_multicast_ip: must be an IPv4 multicast group address/],
    ['IPv6 group', 'receiver_multicast_ip = "ff15::1"', /receiver_multicast_ip: must be an IPv4 multicast group address/],
    ['not an IP', 'receiver_multicast_ip = "239.0.0.300"', /receiver_multicast_ip: must be an IP address/],
    ['TTL', 'multicast_ttl = 300', /\[main\] multicast_ttl: /],
    ['datagram too small', 'multicast_max_datagram = 100', /\[main\] multicast_max_datagram: /],
    ['datagram too large', 'multicast_max_datagram = 65001', /\[main\] multicast_max_datagram: /],
    ['interface', 'multicast_interface = "eth0"', /\[main\] multicast_interface: must be an IP address/],
    ['switch', 'multicast = "yes"', /\[main\] multicast: /],
  ];
  for (const [name, line, want] of bad) {
    it(`rejects a bad ${name}`, () => {
      const r = load(line);
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.error, want);
    });
  }

  it('the agent runs the multicast sender unless multicast = false', () => {
    const deps = { log: silentLogger(), metrics: new AgentMetrics(new Registry()) };
    const on = load('receiver_multicast_port = 9');
    assert.ok(on.ok);
    const rs = builtinReceivers({ ...deps, config: on.config });
    built.push(...rs);
    const sender = rs.find((r) => r.name === 'multicast');
    assert.ok(sender instanceof MulticastSender);
    const off = load('multicast = false');
    assert.ok(off.ok);
    const without = builtinReceivers({ ...deps, config: off.config });
    built.push(...without);
    assert.equal(without.find((r) => r.name === 'multicast'), undefined);
  });
});
