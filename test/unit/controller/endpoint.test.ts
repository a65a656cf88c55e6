// Where the controller may send its token (src/controller/endpoint.ts): only
// to an http(s) endpoint whose host is an IP literal listed as the Node's
// InternalIP or ExternalIP.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalIp, checkEndpoint, type NodeAddresses } from '../../../src/controller/endpoint.ts';

const node: NodeAddresses = {
  name: 'node-b',
  addresses: [
    { type: 'InternalIP', address: '10.0.0.7' },
    { type: 'ExternalIP', address: '2001:DB8::7' },
    { type: 'Hostname', address: 'node-b.example' },
    { type: 'InternalDNS', address: '10.0.0.99' },
  ],
};

describe('checkEndpoint', () => {
  it('accepts the node\'s own InternalIP and ExternalIP (IPv6 in any spelling), http and https, a trailing slash', () => {
    for (const e of ['http://10.0.0.7:9477', 'https://10.0.0.7:9477/', 'http://[2001:db8::7]:9477', 'http://[2001:db8:0:0:0:0:0:7]:9477']) {
      const r = checkEndpoint('node-b', e, node);
      assert.ok(r.ok, `${e}: ${r.ok ? '' : r.message}`);
    }
  });

  it('refuses another address, naming the node\'s own', () => {
    const r = checkEndpoint('node-b', 'http://10.0.0.8:9477', node);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'foreign_address');
    assert.match(!r.ok ? r.message : '', /10\.0\.0\.8 is not an address of Node node-b \(InternalIP\/ExternalIP: 10\.0\.0\.7, 2001:db8::7\)/);
  });

  it('does not take Hostname or DNS addresses, nor names: DNS decides where a name leads', () => {
    for (const e of ['http://node-b.example:9477', 'http://localhost:9477']) {
      const r = checkEndpoint('node-b', e, node);
      assert.equal(!r.ok && r.reason, 'invalid_endpoint', e);
    }
    // an address listed only as InternalDNS is not the node's IP
    assert.equal((r => !r.ok && r.reason)(checkEndpoint('node-b', 'http://10.0.0.99:9477', node)), 'foreign_address');
  });

  it('refuses anything but http(s)://IP:port: credentials, paths, queries, other schemes, garbage', () => {
    for (const e of ['http://u:p@10.0.0.7:9477', 'http://10.0.0.7:9477/prefix', 'http://10.0.0.7:9477/?x=1', 'http://10.0.0.7:9477/#f', 'ftp://10.0.0.7', 'file:///etc/passwd', 'not a url', '']) {
      const r = checkEndpoint('node-b', e, node);
      assert.equal(!r.ok && r.reason, 'invalid_endpoint', e);
    }
  });

  it('refuses when there is no Node, or it lists no IP', () => {
    assert.equal((r => !r.ok && r.reason)(checkEndpoint('ghost', 'http://10.0.0.7:9477', undefined)), 'no_node');
    assert.equal((r => !r.ok && r.reason)(checkEndpoint('node-b', 'http://10.0.0.7:9477', { name: 'node-b', addresses: [{ type: 'Hostname', address: 'node-b' }] })), 'no_node_address');
  });

  it('the URL it returns is the one checked (the push goes exactly there)', () => {
    const r = checkEndpoint('node-b', 'http://10.0.0.7:9477', node);
    assert.ok(r.ok);
    assert.equal(new URL('v1/config', r.url).href, 'http://10.0.0.7:9477/v1/config');
  });
});

describe('canonicalIp', () => {
  it('canonical IPv4 and IPv6 literals; null for names, shorthand IPv4, zones', () => {
    assert.equal(canonicalIp('127.0.0.1'), '127.0.0.1');
    assert.equal(canonicalIp('[::1]'), '::1');
    assert.equal(canonicalIp('0:0::1'), '::1');
    assert.equal(canonicalIp('2001:DB8::1'), '2001:db8::1');
    for (const s of ['localhost', '127.1', '0x7f.0.0.1', '256.1.1.1', 'fe80::1%eth0', '']) assert.equal(canonicalIp(s), null, s);
  });
});
