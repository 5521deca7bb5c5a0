// The production DNS backend: node:dns/promises Resolver (c-ares), which reads the system
// resolv.conf unless servers are given. It only asks and maps; caching, coalescing, the
// in-flight bound and the caller-visible timeout live in lib/dns.ts.

import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';

/** The record types the filters need: FCrDNS (PTR, A, AAAA), DNSBL/SenderScore (A), DKIM (TXT). */
export type DnsType = 'A' | 'AAAA' | 'PTR' | 'TXT';

/** What a backend found; ttl in seconds when the backend knows it. */
export interface RawAnswer {
  values: string[];
  ttl?: number;
}

/**
 * Where queries go. query() rejects with an Error whose `code` is a c-ares code
 * (ENOTFOUND, ENODATA, ESERVFAIL, ETIMEOUT, …); tests may inject their own backend.
 */
export interface DnsBackend {
  query(type: DnsType, name: string): Promise<RawAnswer>;
  /** Abandon every outstanding query (they reject with ECANCELLED). */
  cancel(): void;
}

export type DnsErrorKind = 'nxdomain' | 'nodata' | 'servfail' | 'refused' | 'timeout' | 'error';

/**
 * c-ares error code → our kind and whether trying again later may give another answer.
 * NXDOMAIN and NODATA are answers (RFC 2308: cacheable, permanent); SERVFAIL, REFUSED,
 * timeouts and transport failures say nothing about the name (RFC 8601 §2.7.3 "temperror").
 * Malformed names and queries are permanent: asking again cannot help.
 */
export function mapErrorCode(code: string | undefined): { error: DnsErrorKind; temporary: boolean } {
  switch (code) {
    case 'ENOTFOUND':
      return { error: 'nxdomain', temporary: false };
    case 'ENODATA':
      return { error: 'nodata', temporary: false };
    case 'ESERVFAIL':
      return { error: 'servfail', temporary: true };
    case 'EREFUSED':
      return { error: 'refused', temporary: true };
    case 'ETIMEOUT':
    case 'ECANCELLED':
    case 'EDESTRUCTION':
      return { error: 'timeout', temporary: true };
    case 'EBADNAME':
    case 'EBADQUERY':
    case 'EBADFAMILY':
    case 'EBADSTR':
    case 'ENOTIMP':
    case 'EFORMERR':
      return { error: 'error', temporary: false };
    default:
      // ECONNREFUSED, EBADRESP, EOF, ENOMEM, EFILE, … : the resolver path is broken, not the name.
      return { error: 'error', temporary: true };
  }
}

/**
 * Validates a nameserver given on the command line (`-nameserver`) and returns the form
 * c-ares' setServers() takes: `192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53`,
 * `[2001:db8::53]`, `[2001:db8::53]:5353`. Throws with a clear message otherwise.
 */
export function parseNameserver(text: string): string {
  const bad = (why: string) => new Error(`bad nameserver ${JSON.stringify(text)}: ${why}`);
  const checkPort = (p: string) => {
    if (!/^[0-9]{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw bad('port must be 1-65535');
  };
  if (isIP(text) !== 0) return text;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || isIP(text.slice(1, close)) !== 6) throw bad('expected [IPv6]:port');
    const rest = text.slice(close + 1);
    if (rest === '') return text.slice(1, close);
    if (!rest.startsWith(':')) throw bad('expected [IPv6]:port');
    checkPort(rest.slice(1));
    return text;
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0 || isIP(text.slice(0, colon)) !== 4) throw bad('expected ip, ip:port or [ipv6]:port');
  checkPort(text.slice(colon + 1));
  return text;
}

export interface CaresOptions {
  /** Explicit servers (see parseNameserver); default: the system resolv.conf. */
  servers?: string[];
  /** Overall budget in ms; c-ares gets timeoutMs / tries per try so it gives up near it. */
  timeoutMs: number;
  /** c-ares attempts per query (UDP loss); default 2. */
  tries?: number;
}

/** The c-ares backend. Resolver methods never search-list names (ares_query, not ares_search). */
export function caresBackend(opts: CaresOptions): DnsBackend {
  const tries = Math.max(1, opts.tries ?? 2);
  const resolver = new Resolver({ timeout: Math.max(1, Math.ceil(opts.timeoutMs / tries)), tries });
  if (opts.servers && opts.servers.length > 0) resolver.setServers(opts.servers.map(parseNameserver));
  return {
    async query(type, name) {
      switch (type) {
        case 'A':
        case 'AAAA': {
          const rrs = type === 'A'
            ? await resolver.resolve4(name, { ttl: true })
            : await resolver.resolve6(name, { ttl: true });
          return { values: rrs.map((r) => r.address), ttl: Math.min(...rrs.map((r) => r.ttl)) };
        }
        case 'PTR':
          // c-ares does not expose PTR or TXT TTLs; the resolver applies its default.
          return { values: await resolver.resolvePtr(name) };
        case 'TXT':
          // A TXT record is a list of character-strings (RFC 1035 §3.3.14), joined as DKIM
          // (RFC 6376 §3.6.2.2) and SPF expect.
          return { values: (await resolver.resolveTxt(name)).map((chunks) => chunks.join('')) };
      }
    },
    cancel() {
      resolver.cancel();
    },
  };
}
