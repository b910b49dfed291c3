import { BlockList, isIP } from 'node:net';

/**
 * The SSRF rule: which addresses a webhook may be sent to. Anything that is
 * not a public unicast address is refused: private, loopback, link-local,
 * unspecified, CGNAT, documentation, benchmarking, multicast and reserved
 * ranges, IPv6 unique-local, and the IPv6 forms that carry an IPv4 address
 * (mapped, NAT64, 6to4, Teredo). An IPv4-mapped IPv6 address is judged as
 * the IPv4 address it carries.
 */
const REFUSED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  REFUSED.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 96], // unspecified, loopback, IPv4-compatible
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const)
  REFUSED.addSubnet(net, prefix, 'ipv6');

/** The IPv4 address an IPv4-mapped IPv6 address carries, or the address unchanged. */
export function unmapIPv4(address: string): string {
  if (isIP(address) !== 6) return address;
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (!m) return canonical;
  const hi = parseInt(m[1], 16);
  const lo = parseInt(m[2], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** True for a public unicast IP address; false for every refused range and for text that is not an IP. */
export function isPublicAddress(address: string): boolean {
  const ip = unmapIPv4(address.replace(/^\[|\]$/g, '').replace(/%.*$/, ''));
  const family = isIP(ip);
  if (family === 0) return false;
  return !REFUSED.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

export type UrlCheck = { ok: true; url: URL; literalIp: string | null } | { ok: false; reason: string };

/**
 * The static part of a webhook URL's check: an absolute http(s) URL without
 * credentials; an IP literal host must be public unless private ones are
 * allowed. Names are resolved (and their addresses checked) by the caller.
 */
export function checkWebhookUrl(raw: string, allowPrivate: boolean): UrlCheck {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'must be an absolute http or https URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, reason: 'must be an absolute http or https URL' };
  }
  if (url.username || url.password) return { ok: false, reason: 'must not carry credentials' };
  if (!url.hostname) return { ok: false, reason: 'must name a host' };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const literalIp = isIP(host) ? host : null;
  if (literalIp && !allowPrivate && !isPublicAddress(literalIp)) {
    return { ok: false, reason: 'host is a private, loopback or link-local address' };
  }
  if (!literalIp && !allowPrivate && /(^|\.)localhost\.?$/i.test(host)) {
    return { ok: false, reason: 'host is a private, loopback or link-local address' };
  }
  return { ok: true, url, literalIp };
}
