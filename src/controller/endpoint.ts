// Where the controller may send its token (docs/controller.md "Where pushes
// go"). An agent's registration Lease says where its control API is
// (peripety.io/endpoint), but a Lease is only as trustworthy as whoever could
// write it; the controller's bearer token is accepted by every agent, so
// sending it to an address a Lease names without a check would hand it to
// anyone who can write a Lease. The endpoint must be an http(s) URL whose host
// is an IP literal that the Node object lists as its own InternalIP or
// ExternalIP. Pure: the controller passes the Lease's endpoint and the Node
// from its informer cache.

/** Why a push or command to a node's endpoint was refused (the metric's `reason` label: a bounded set). */
export const PUSH_REFUSED_REASONS = ['no_node', 'invalid_endpoint', 'no_node_address', 'foreign_address'] as const;
export type PushRefusedReason = typeof PUSH_REFUSED_REASONS[number];

/**
 * The Node address types an endpoint may use. Not Hostname, InternalDNS or
 * ExternalDNS: a name is checked as a string but connected to wherever DNS
 * resolves it at that moment, so the check would say nothing about where the
 * token goes; the agent advertises the node's IP (status.hostIP) anyway.
 */
export const ENDPOINT_ADDRESS_TYPES: readonly string[] = ['InternalIP', 'ExternalIP'];

export interface NodeAddresses {
  name: string;
  addresses: readonly { type?: string; address?: string }[];
}

export type EndpointCheck = { ok: true; url: URL } | { ok: false; reason: PushRefusedReason; message: string };

/** An IP literal in the canonical form the URL parser gives hosts (IPv6 without brackets), or null when `s` is not one. */
export function canonicalIp(s: string): string | null {
  const bare = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  if (bare === '' || /[^0-9a-fA-F:.]/.test(bare)) return null;
  try {
    const host = new URL(`http://${bare.includes(':') ? `[${bare}]` : bare}/`).hostname;
    const ip = host.startsWith('[') ? host.slice(1, -1) : host;
    // the URL parser also accepts shorthand IPv4 ("127.1", "0x7f.1"): canonical, but only for a literal that is one already
    return bare.includes(':') || ip === bare ? ip : null;
  } catch {
    return null;
  }
}

const shown = (s: string) => JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}…` : s);

/** May the controller send its token to `endpoint` for `node` (undefined: no such Node)? */
export function checkEndpoint(nodeName: string, endpoint: string, node: NodeAddresses | undefined): EndpointCheck {
  const lease = `the agent Lease of node ${nodeName}`;
  if (!node) return { ok: false, reason: 'no_node', message: `refused to contact ${shown(endpoint)}: ${lease} has no Node object ${nodeName}, so no address to check it against` };
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return { ok: false, reason: 'invalid_endpoint', message: `refused to contact ${shown(endpoint)}: ${lease} names no valid URL (want http(s)://<node IP>:<port>)` };
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    return { ok: false, reason: 'invalid_endpoint', message: `refused to contact ${shown(endpoint)}: ${lease} must name http(s)://<node IP>:<port>, nothing more` };
  }
  const host = canonicalIp(url.hostname);
  if (host === null) {
    return { ok: false, reason: 'invalid_endpoint', message: `refused to contact ${shown(endpoint)}: ${lease} names the host ${shown(url.hostname)}, not an IP address of the node (names are not accepted: DNS decides where they lead)` };
  }
  const own = node.addresses
    .filter((a) => a.type !== undefined && ENDPOINT_ADDRESS_TYPES.includes(a.type) && typeof a.address === 'string')
    .map((a) => canonicalIp(a.address!))
    .filter((a): a is string => a !== null);
  if (own.length === 0) {
    return { ok: false, reason: 'no_node_address', message: `refused to contact ${shown(endpoint)}: Node ${nodeName} lists no InternalIP or ExternalIP in status.addresses to check ${lease} against` };
  }
  if (!own.includes(host)) {
    const list = own.length > 4 ? `${own.slice(0, 4).join(', ')}, …` : own.join(', ');
    return { ok: false, reason: 'foreign_address', message: `refused to contact ${shown(endpoint)}: ${host} is not an address of Node ${nodeName} (InternalIP/ExternalIP: ${list}); the controller's token goes only to a node's own address` };
  }
  return { ok: true, url };
}
