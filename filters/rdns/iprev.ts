/**
 * The DNS part of filter-rdns: the client's PTR names, and which of them
 * resolve back to the client address (RFC 8601 §3 "iprev", the check smtpd
 * calls fcrdns).
 *
 * Differences from smtpd's own lookup (protocol.md §6.2), on purpose:
 * - every PTR name is tried, not only the first one getnameinfo() returns;
 * - a SERVFAIL, REFUSED or timeout is a temporary error (RFC 8601 §2.7.3
 *   temperror), never a failure: smtpd 6.8 reports `<unknown>|fail` for a
 *   SERVFAIL (recordings/null/rdns-servfail) and its `!rdns` then refuses
 *   the client for good;
 * - the whole procedure has one time budget, because smtpd waits for our
 *   answer without any limit of its own (protocol.md §4.7).
 *
 * Queries go through lib/dns.ts, so concurrent sessions from one address
 * cost one query and answers are cached for their TTL.
 */

import { isIP } from 'node:net'
import type { DnsResolver, DnsResult } from '../../lib/dns.js'
import { canonicalIp, parseIp } from '../../lib/net.js'

/** RFC 8601 §2.7.3: pass, fail (no name resolves back), temperror, permerror (no PTR). */
export type IprevResult = 'pass' | 'fail' | 'temperror' | 'permerror'

export interface IprevOutcome {
  /** the client address, canonical */
  readonly ip: string
  /** the PTR lookup: names found, none (NXDOMAIN, NODATA, no usable name), or a temporary error */
  readonly ptr: 'names' | 'none' | 'temperror'
  /** usable PTR names (lower case, no trailing dot), in answer order, at most maxNames */
  readonly names: readonly string[]
  /** the names whose A (IPv4 client) or AAAA (IPv6 client) records contain the client address */
  readonly confirmed: readonly string[]
  /** undefined when the forward lookups were not asked for */
  readonly iprev?: IprevResult
  /** what went wrong, one short item per failed query, for the log (e.g. `PTR servfail`) */
  readonly errors: readonly string[]
  /** the time budget ran out before every answer was in */
  readonly timedOut: boolean
  /** elapsed milliseconds */
  readonly ms: number
}

export interface IprevOptions {
  /** also look the names up forward (needed for fcrdns, iprev and rDNS-suffix allowlisting) */
  readonly forward: boolean
  /** the time budget of the whole procedure, PTR and forward lookups together */
  readonly timeoutMs: number
  /** forward-check at most this many PTR names (the first ones, in answer order) */
  readonly maxNames: number
}

// RFC 1123 §2.1 host names (letters, digits, hyphens; labels of 1-63), plus the
// underscore some reverse zones carry; anything else (spaces, `<unknown>`,
// escaped bytes from c-ares) is no name to look up or to print in a header.
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/

/** A PTR value we can use as a name: a syntactically valid host name that is not an address. */
export function usableName(name: string): boolean {
  return HOSTNAME.test(name) && isIP(name) === 0 && !/^[0-9.]+$/.test(name)
}

function failureText(type: string, name: string, r: DnsResult): string {
  return r.ok ? '' : `${type} ${name} ${r.error}`
}

/**
 * Looks up the PTR names of ip and, with `forward`, their addresses. Never
 * rejects; settles within timeoutMs (plus a timer tick).
 */
export async function lookupIprev(resolver: DnsResolver, address: string, opts: IprevOptions): Promise<IprevOutcome> {
  const started = performance.now()
  const parsed = parseIp(address)
  const ip = canonicalIp(address) ?? address
  const errors: string[] = []
  // A copy: answers arriving after the budget must not change a returned outcome.
  const done = (o: Omit<IprevOutcome, 'ip' | 'errors' | 'ms'>): IprevOutcome => ({
    ip,
    errors: [...errors],
    ms: Math.round((performance.now() - started) * 10) / 10,
    ...o,
  })
  if (parsed === null) {
    errors.push(`not an IP address`)
    return done({ ptr: 'none', names: [], confirmed: [], iprev: opts.forward ? 'permerror' : undefined, timedOut: false })
  }

  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), opts.timeoutMs)
  })
  try {
    const ptr = await Promise.race([resolver.ptr(ip), deadline])
    if (ptr === 'timeout' || !ptr.ok) {
      const temporary = ptr === 'timeout' || ptr.temporary
      errors.push(ptr === 'timeout' ? 'PTR timeout' : failureText('PTR', ip, ptr))
      const state = temporary ? 'temperror' : 'none'
      const iprev = !opts.forward ? undefined : temporary ? 'temperror' : 'permerror'
      return done({ ptr: state, names: [], confirmed: [], iprev, timedOut: ptr === 'timeout' })
    }
    const names = [...new Set(ptr.values)].filter(usableName)
    if (names.length < ptr.values.length) errors.push(`PTR ${ip} ${ptr.values.length - names.length} unusable name(s)`)
    if (names.length === 0) {
      return done({ ptr: 'none', names: [], confirmed: [], iprev: opts.forward ? 'permerror' : undefined, timedOut: false })
    }
    const checked = names.slice(0, opts.maxNames)
    if (!opts.forward) return done({ ptr: 'names', names: checked, confirmed: [], timedOut: false })

    // All names at once; wait for every answer (within the budget), so the
    // log, the header and rDNS-suffix allowlisting see the whole picture.
    const type = parsed.family === 4 ? 'A' : 'AAAA'
    const confirmed: string[] = []
    let temporary = false
    const forward = Promise.all(
      checked.map(async (name) => {
        const r = await (type === 'A' ? resolver.a(name) : resolver.aaaa(name))
        if (r.ok) {
          if (r.values.some((v) => canonicalIp(v) === ip)) confirmed.push(name)
        } else {
          if (r.temporary) temporary = true
          errors.push(failureText(type, name, r))
        }
      }),
    )
    const timedOut = (await Promise.race([forward, deadline])) === 'timeout'
    if (timedOut) errors.push(`${type} timeout`)
    // Keep answer order, whatever order the answers came in.
    const ordered = checked.filter((n) => confirmed.includes(n))
    const iprev: IprevResult = ordered.length > 0 ? 'pass' : temporary || timedOut ? 'temperror' : 'fail'
    return done({ ptr: 'names', names: checked, confirmed: ordered, iprev, timedOut })
  } finally {
    clearTimeout(timer)
  }
}
