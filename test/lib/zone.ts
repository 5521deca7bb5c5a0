// The fixture DNS zone: its JSON shape, and helpers that build it.
//
// A zone maps a domain name (any case, trailing dot optional) to the records and the
// behaviour of that name. It is plain JSON so the lab can hand it to the zone server
// running inside a network namespace (dns-zone-server.ts).
//
//   const z = zone(
//     host('mail.good.example.org', '127.0.0.10'),          // A + PTR
//     ptr('127.0.0.17', 'b.multi.example.org', 'a.multi.example.org'),
//     txt('sel._domainkey.test.example', 'v=DKIM1; k=rsa; ', 'p=MIIB…'),
//     { 'slow.example.org': { A: ['127.0.0.30'], delayMs: 1500 } },
//     { '18.0.0.127.in-addr.arpa': { rcode: 'SERVFAIL' } },
//   );
//
// Answers: a name absent from the zone is NXDOMAIN; a name present without records of
// the asked type is NODATA (NOERROR, no answers), and so is an empty non-terminal (a
// name that only has names below it, RFC 8020).
import { isIPv4, isIPv6 } from 'node:net';

export type RecordType = 'A' | 'AAAA' | 'PTR' | 'TXT' | 'MX' | 'CNAME';

export interface ZoneEntry {
  A?: string[];
  AAAA?: string[];
  /** Several names for one address are served in this order. */
  PTR?: string[];
  /** One array per TXT record; each string is one character-string (the server splits
   * strings over 255 bytes, which the wire format cannot carry). */
  TXT?: string[][];
  MX?: { priority: number; exchange: string }[];
  /** Followed inside the zone for other query types (the answer holds both records). */
  CNAME?: string;
  /** TTL of every record of this name; default 60. */
  ttl?: number;
  /** Answer with this rcode and no records. */
  rcode?: 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED';
  /** Answer this many ms late (resolvers may time out and retry meanwhile). */
  delayMs?: number;
  /** Never answer: the resolver times out. */
  drop?: boolean;
  /** Limit rcode/delayMs/drop to these query types (default: every type). */
  for?: RecordType[];
}

export type Zone = Record<string, ZoneEntry>;

/** Lowercase, no trailing dot: the key the server looks names up by. */
export function canonicalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** The reverse-lookup name of an address: 4.3.2.1.in-addr.arpa, or 32 nibbles.ip6.arpa. */
export function reverseName(ip: string): string {
  if (isIPv4(ip)) return ip.split('.').reverse().join('.') + '.in-addr.arpa';
  if (!isIPv6(ip)) throw new Error(`reverseName: not an IP address: ${ip}`);
  return expandIPv6(ip).split('').reverse().join('.') + '.ip6.arpa';
}

/** 32 lowercase hex digits of an IPv6 address (handles "::" and a dotted IPv4 tail). */
function expandIPv6(ip: string): string {
  let s = ip.toLowerCase().replace(/%.*$/, '');
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    s = s.slice(0, v4.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head, tail] = s.includes('::') ? s.split('::') as [string, string] : [s, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => g.padStart(4, '0')).join('');
}

/** Merge zone parts: records of the same name and type are concatenated (an identical
 * record once), other fields of later parts win. */
export function zone(...parts: Zone[]): Zone {
  const out: Zone = {};
  for (const part of parts) {
    for (const [rawName, entry] of Object.entries(part)) {
      const name = canonicalName(rawName);
      const cur: ZoneEntry = out[name] ?? {};
      const merged: ZoneEntry = { ...cur, ...entry };
      for (const k of ['A', 'AAAA', 'PTR', 'TXT', 'MX'] as const) {
        if (cur[k] && entry[k]) (merged as Record<string, unknown[]>)[k] = union<unknown>(cur[k]!, entry[k]!);
      }
      out[name] = merged;
    }
  }
  return out;
}

function union<T>(x: T[], y: T[]): T[] {
  const seen = new Set(x.map((v) => JSON.stringify(v)));
  return [...x, ...y.filter((v) => !seen.has(JSON.stringify(v)))];
}

/** A (or AAAA, by the address's family) records for name. */
export function a(name: string, ...ips: string[]): Zone {
  const v4 = ips.filter((ip) => isIPv4(ip));
  const v6 = ips.filter((ip) => isIPv6(ip));
  if (v4.length + v6.length !== ips.length) throw new Error(`a(${name}): not an IP address in ${ips.join(' ')}`);
  const e: ZoneEntry = {};
  if (v4.length) e.A = v4;
  if (v6.length) e.AAAA = v6;
  return { [canonicalName(name)]: e };
}

/** PTR records for ip (several names: served in this order). */
export function ptr(ip: string, ...names: string[]): Zone {
  return { [reverseName(ip)]: { PTR: names } };
}

/** A/AAAA and the matching PTR: a host whose forward-confirmed reverse DNS passes. */
export function host(name: string, ip: string): Zone {
  return zone(a(name, ip), ptr(ip, name));
}

/** One TXT record made of these character-strings. */
export function txt(name: string, ...strings: string[]): Zone {
  return { [canonicalName(name)]: { TXT: [strings] } };
}

/** MX records for a domain. */
export function mx(name: string, exchange: string, priority = 10): Zone {
  return { [canonicalName(name)]: { MX: [{ priority, exchange }] } };
}
