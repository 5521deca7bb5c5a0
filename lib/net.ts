// IP addresses as smtpd writes them, canonical forms, reverse names and CIDR sets.
//
// smtpd's address forms (smtpd-filters(7), checked against smtpd 6.8 and 7.8):
//   link-connect src/dest:  192.0.2.10:51234   [2001:db8::10]:25   [fe80::1%em0]:25   unix:/var/run/smtpd.sock
//   connect request src:    192.0.2.10         [2001:db8::10]      local
// A naive split(':') breaks IPv6, so every filter goes through parseSmtpdAddress().

import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';

export type IpFamily = 4 | 6;

export type SmtpdAddress =
  | { family: 4; ip: string; port?: number }
  | { family: 6; ip: string; port?: number; zone?: string }
  | { family: 'unix'; path?: string };

/** A parsed IP: family and its bytes in network order (4 or 16). */
export interface IpBytes {
  family: IpFamily;
  bytes: Uint8Array;
}

/**
 * Parses one of smtpd's address forms. IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4,
 * because that is how the same client appears on an IPv4 socket and in IPv4 lists.
 * Returns null for anything else: protocol input is never trusted enough to throw on.
 */
export function parseSmtpdAddress(text: string): SmtpdAddress | null {
  if (text === 'local') return { family: 'unix' };
  if (text.startsWith('unix:')) return { family: 'unix', path: text.slice(5) };
  let host: string;
  let portText: string | undefined;
  if (isIP(text) === 6) {
    host = text; // bare IPv6: smtpd brackets it, but other sources (logs, flags) may not
  } else if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return null;
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return null;
      portText = rest.slice(1);
    }
    if (isIP(stripZone(host).ip) !== 6) return null;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    } else {
      host = text;
    }
    if (isIP(host) !== 4) return null;
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText)) return null;
    port = Number(portText);
    if (port > 65535) return null;
  }
  const { ip, zone } = stripZone(host);
  const canon = canonicalIp(ip);
  if (canon === null) return null;
  const out: SmtpdAddress =
    isIP(canon) === 4 ? { family: 4, ip: canon } : { family: 6, ip: canon };
  if (port !== undefined) out.port = port;
  if (zone !== undefined && out.family === 6) out.zone = zone;
  return out;
}

function stripZone(host: string): { ip: string; zone?: string } {
  const pct = host.indexOf('%');
  return pct < 0 ? { ip: host } : { ip: host.slice(0, pct), zone: host.slice(pct + 1) };
}

/** 0 for not-an-IP, else 4 or 6 (node:net isIP; a %zone suffix is accepted for IPv6). */
export function ipFamily(text: string): 0 | IpFamily {
  return isIP(text) as 0 | IpFamily;
}

/** Bytes of an IP address (zone dropped), or null. IPv4-mapped IPv6 is returned as IPv4. */
export function parseIp(text: string): IpBytes | null {
  const { ip } = stripZone(text);
  const fam = isIP(ip);
  if (fam === 4) return { family: 4, bytes: Uint8Array.from(ip.split('.'), Number) };
  if (fam !== 6) return null;
  const bytes = parseIpv6(ip);
  if (isV4Mapped(bytes)) return { family: 4, bytes: bytes.slice(12) };
  return { family: 6, bytes };
}

// Only called on strings isIP() accepted, so the shape is already valid.
function parseIpv6(ip: string): Uint8Array {
  let text = ip.toLowerCase();
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) >= 0) {
    // Embedded IPv4 in the last 32 bits (RFC 4291 §2.2 form 3): rewrite as two hex groups.
    const v4 = text.slice(lastColon + 1).split('.').map(Number);
    const hi = ((v4[0]! << 8) | v4[1]!).toString(16);
    const lo = ((v4[2]! << 8) | v4[3]!).toString(16);
    text = `${text.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const [headText, tailText] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const head = headText === '' ? [] : headText.split(':').map((h) => parseInt(h, 16));
  let groups: number[];
  if (tailText === undefined) {
    groups = head;
  } else {
    const back = tailText === '' ? [] : tailText.split(':').map((h) => parseInt(h, 16));
    groups = [...head, ...new Array<number>(8 - head.length - back.length).fill(0), ...back];
  }
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** Text form of parsed bytes: dotted quad, or RFC 5952 canonical IPv6. */
export function formatIp(ip: IpBytes): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // RFC 5952 §4.2: compress the longest run (first one on a tie) of two or more zero groups.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text of an IP (lower-case RFC 5952 IPv6, mapped IPv4 unwrapped), or null. */
export function canonicalIp(text: string): string | null {
  const ip = parseIp(text);
  return ip === null ? null : formatIp(ip);
}

function nibbles(bytes: Uint8Array): string[] {
  const out: string[] = [];
  for (const byte of bytes) out.push((byte >> 4).toString(16), (byte & 15).toString(16));
  return out;
}

/**
 * The PTR query name: d.c.b.a.in-addr.arpa (RFC 1035 §3.5) or the 32 reversed nibbles
 * under ip6.arpa (RFC 3596 §2.5). Throws on a non-IP: callers pass parsed addresses.
 */
export function reverseName(text: string): string {
  const ip = parseIp(text);
  if (ip === null) throw new Error(`not an IP address: ${JSON.stringify(text)}`);
  return `${reversedOctets(text)}.${ip.family === 4 ? 'in-addr.arpa' : 'ip6.arpa'}`;
}

/**
 * The reversed address used to build DNSBL-style names (RFC 5782 §2.1, §2.4):
 * `d.c.b.a` for IPv4 (as in d.c.b.a.score.senderscore.com), reversed nibbles for IPv6.
 */
export function reversedOctets(text: string): string {
  const ip = parseIp(text);
  if (ip === null) throw new Error(`not an IP address: ${JSON.stringify(text)}`);
  if (ip.family === 4) return Array.from(ip.bytes).reverse().join('.');
  return nibbles(ip.bytes).reverse().join('.');
}

/** 127.0.0.0/8 or ::1 (RFC 1122 §3.2.1.3, RFC 4291 §2.5.3). */
export function isLoopback(text: string): boolean {
  const ip = parseIp(text);
  if (ip === null) return false;
  if (ip.family === 4) return ip.bytes[0] === 127;
  return ip.bytes.every((b, i) => b === (i === 15 ? 1 : 0));
}

/** A network: family, prefix length and the masked address as a bigint. */
export interface Cidr {
  family: IpFamily;
  prefix: number;
  network: bigint;
}

function toBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function mask(value: bigint, prefix: number, bits: number): bigint {
  const hostBits = BigInt(bits - prefix);
  return (value >> hostBits) << hostBits;
}

/**
 * Parses `10.0.0.0/8`, `2001:db8::/32` or a single address (a /32 or /128).
 * Host bits below the prefix are masked off (`192.0.2.7/24` = `192.0.2.0/24`), as
 * inet_net_pton does for smtpd's netaddr tables. Mapped IPv4 becomes IPv4 (prefix − 96).
 */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  if (addr.includes('%')) return null;
  const wasV6 = isIP(addr) === 6;
  const ip = parseIp(addr);
  if (ip === null) return null;
  const bits = ip.family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p)) return null;
    prefix = Number(p);
    if (wasV6 && ip.family === 4) {
      if (prefix < 96 || prefix > 128) return null;
      prefix -= 96;
    }
    if (prefix > bits) return null;
  }
  return { family: ip.family, prefix, network: mask(toBigInt(ip.bytes), prefix, bits) };
}

/**
 * A set of IPv4 and IPv6 networks. has() masks the address once per distinct prefix length
 * present and looks it up in a Set, so the cost is independent of the number of entries.
 */
export class CidrSet {
  // family → prefix length → set of masked networks
  private readonly byPrefix = { 4: new Map<number, Set<bigint>>(), 6: new Map<number, Set<bigint>>() };
  private count = 0;

  constructor(entries: Iterable<string> = []) {
    for (const e of entries) this.add(e);
  }

  /** Adds a network or single address; throws on bad syntax. */
  add(text: string): this {
    const cidr = parseCidr(text.trim());
    if (cidr === null) throw new Error(`not an IP address or CIDR network: ${JSON.stringify(text)}`);
    return this.addCidr(cidr);
  }

  addCidr(cidr: Cidr): this {
    const map = this.byPrefix[cidr.family];
    let set = map.get(cidr.prefix);
    if (set === undefined) {
      set = new Set();
      map.set(cidr.prefix, set);
    }
    if (!set.has(cidr.network)) {
      set.add(cidr.network);
      this.count++;
    }
    return this;
  }

  /** True if the address (any form parseIp accepts, zone ignored) is inside a network. */
  has(text: string): boolean {
    const ip = parseIp(text);
    if (ip === null) return false;
    const map = this.byPrefix[ip.family];
    if (map.size === 0) return false;
    const bits = ip.family === 4 ? 32 : 128;
    const value = toBigInt(ip.bytes);
    for (const [prefix, set] of map) {
      if (set.has(mask(value, prefix, bits))) return true;
    }
    return false;
  }

  get size(): number {
    return this.count;
  }
}

/** Thrown for a bad line of an address list; the message names source and line. */
export class AddressListError extends Error {
  constructor(
    readonly source: string,
    readonly line: number,
    detail: string,
  ) {
    super(`${source}:${line}: ${detail}`);
    this.name = 'AddressListError';
  }
}

/**
 * Parses an allowlist: one IP or CIDR per line, `#` starts a comment (whole line or
 * trailing), blank lines ignored. A bad line throws AddressListError naming source:line,
 * because a silently skipped allowlist entry becomes a rejected customer.
 */
export function parseAddressList(text: string, source: string): CidrSet {
  const set = new CidrSet();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const hash = lines[i]!.indexOf('#');
    const entry = (hash < 0 ? lines[i]! : lines[i]!.slice(0, hash)).trim();
    if (entry === '') continue;
    const cidr = parseCidr(entry);
    if (cidr === null) {
      throw new AddressListError(source, i + 1, `not an IP address or CIDR network: ${JSON.stringify(entry)}`);
    }
    set.addCidr(cidr);
  }
  return set;
}

/** Reads and parses an allowlist file at startup; errors name the file (and line). */
export function loadAddressList(path: string): CidrSet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${path}: cannot read address list: ${(err as Error).message}`);
  }
  return parseAddressList(text, path);
}

/** The loopback networks, for "trust local connections" policies. */
export const LOOPBACK: CidrSet = new CidrSet(['127.0.0.0/8', '::1']);
