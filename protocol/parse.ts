/**
 * Parsing of every line smtpd writes to a filter (protocol 0.4 to 0.7).
 *
 * Lines are strings holding bytes (latin1: one char per byte), without the
 * '\n'. smtpd never sends '\r\n'; a '\r' inside a line is data and stays.
 * Only the last field of a line may contain '|' (an address, a data-line, a
 * protocol-client command…), so lines are split with a field limit, and the
 * fields before a free-text middle field (link-connect's rdns, 0.4/0.5
 * tx-mail's address, pre-0.7 link-auth's username) are taken from the right.
 */

import { isReportEvent, type ReportEventName } from './events.js'
import { authUsernameFirst, parseVersion, txAddressBeforeResult, type ProtocolVersion } from './version.js'

export interface ConfigLine {
  readonly type: 'config'
  /** `smtpd-version`, `protocol`, `smtp-session-timeout`, `subsystem`, `admd`, `ready`, or a key we don't know yet */
  readonly key: string
  readonly value: string
}

interface Envelope {
  readonly version: ProtocolVersion
  /** `seconds.microseconds` as smtpd wrote it; not monotonic across lines (§4.4) */
  readonly time: string
  readonly subsystem: string
  readonly session: string
}

/** Typed parameters of the 19 report events (field order already normalised across versions). */
export type ReportParams =
  | { readonly event: 'link-connect'; readonly rdns: string; readonly fcrdns: string; readonly src: string; readonly dest: string }
  | { readonly event: 'link-greeting'; readonly hostname: string }
  | { readonly event: 'link-identify'; readonly method: string; readonly identity: string }
  | { readonly event: 'link-tls'; readonly tls: string }
  | { readonly event: 'link-auth'; readonly result: string; readonly username: string }
  | { readonly event: 'link-disconnect' }
  | { readonly event: 'tx-reset'; readonly msgid: string }
  | { readonly event: 'tx-begin'; readonly msgid: string }
  | { readonly event: 'tx-mail'; readonly msgid: string; readonly result: string; readonly address: string }
  | { readonly event: 'tx-rcpt'; readonly msgid: string; readonly result: string; readonly address: string }
  | { readonly event: 'tx-envelope'; readonly msgid: string; readonly evpid: string }
  | { readonly event: 'tx-data'; readonly msgid: string; readonly result: string }
  | { readonly event: 'tx-commit'; readonly msgid: string; readonly size: number }
  | { readonly event: 'tx-rollback'; readonly msgid: string }
  | { readonly event: 'protocol-client'; readonly command: string }
  | { readonly event: 'protocol-server'; readonly response: string }
  | { readonly event: 'filter-report'; readonly kind: string; readonly name: string; readonly message: string }
  | { readonly event: 'filter-response'; readonly phase: string; readonly decision: string; readonly param?: string }
  | { readonly event: 'timeout' }

export type Report = { readonly type: 'report' } & Envelope & ReportParams

/** A report event this code does not know (a future smtpd); kept, never fatal. */
export interface UnknownReport extends Envelope {
  readonly type: 'unknown-report'
  readonly event: string
  readonly params: string
}

export interface FilterRequest extends Envelope {
  readonly type: 'filter'
  /** the phase name as smtpd wrote it (may be one we do not know) */
  readonly phase: string
  readonly token: string
  /**
   * The parameter field, which is always present (possibly empty). For
   * connect it is `rdns|src`; see {@link splitConnectParam}. Data-lines are
   * still dot-stuffed here.
   */
  readonly param: string
}

export interface Malformed {
  readonly type: 'malformed'
  readonly reason: string
  readonly line: string
}

export type Inbound = ConfigLine | Report | UnknownReport | FilterRequest | Malformed

/** smtpd prints session ids and tokens as %016llx; anything else could not be echoed safely. */
const ID = /^[0-9a-f]{1,16}$/

function malformed(reason: string, line: string): Malformed {
  return { type: 'malformed', reason, line }
}

export function parseLine(line: string): Inbound {
  const p0 = line.indexOf('|')
  if (p0 < 0) return malformed('no field separator', line)
  // The three kinds have different lengths, so compare the prefix length first.
  if (p0 === 6 && line.startsWith('filter')) return parseFilter(line, p0)
  if (p0 === 6 && line.startsWith('report')) return parseReport(line, p0)
  if (p0 === 6 && line.startsWith('config')) {
    const p1 = line.indexOf('|', p0 + 1)
    return p1 < 0
      ? { type: 'config', key: line.slice(p0 + 1), value: '' }
      : { type: 'config', key: line.slice(p0 + 1, p1), value: line.slice(p1 + 1) }
  }
  return malformed('unknown line type', line)
}

/** `filter|VER|TS|SUBSYSTEM|PHASE|SID|TOK|PARAM` */
function parseFilter(line: string, p0: number): FilterRequest | Malformed {
  const p1 = line.indexOf('|', p0 + 1)
  const p2 = p1 < 0 ? -1 : line.indexOf('|', p1 + 1)
  const p3 = p2 < 0 ? -1 : line.indexOf('|', p2 + 1)
  const p4 = p3 < 0 ? -1 : line.indexOf('|', p3 + 1)
  const p5 = p4 < 0 ? -1 : line.indexOf('|', p4 + 1)
  if (p5 < 0) return malformed('filter request with too few fields', line)
  const version = parseVersion(line.slice(p0 + 1, p1))
  if (!version) return malformed('bad protocol version', line)
  const p6 = line.indexOf('|', p5 + 1)
  const session = line.slice(p4 + 1, p5)
  // The parameter field is always present, even when empty (`…|TOK|`); a
  // line that lacks it is still answerable, so it gets an empty parameter.
  const token = p6 < 0 ? line.slice(p5 + 1) : line.slice(p5 + 1, p6)
  if (!ID.test(session) || !ID.test(token)) return malformed('bad session id or token', line)
  return {
    type: 'filter',
    version,
    time: line.slice(p1 + 1, p2),
    subsystem: line.slice(p2 + 1, p3),
    phase: line.slice(p3 + 1, p4),
    session,
    token,
    param: p6 < 0 ? '' : line.slice(p6 + 1),
  }
}

/**
 * The connect request's parameter is `rdns|src` (not `rdns|fcrdns|src|dest`
 * as smtpd-filters(7) said before 7.7). src has no '|', rdns might: split
 * from the right.
 */
export function splitConnectParam(param: string): { rdns: string; src: string } {
  const i = param.lastIndexOf('|')
  return i < 0 ? { rdns: '', src: param } : { rdns: param.slice(0, i), src: param.slice(i + 1) }
}

/** `report|VER|TS|SUBSYSTEM|EVENT|SID[|PARAMS]` */
function parseReport(line: string, p0: number): Report | UnknownReport | Malformed {
  const p1 = line.indexOf('|', p0 + 1)
  const p2 = p1 < 0 ? -1 : line.indexOf('|', p1 + 1)
  const p3 = p2 < 0 ? -1 : line.indexOf('|', p2 + 1)
  const p4 = p3 < 0 ? -1 : line.indexOf('|', p3 + 1)
  if (p4 < 0) return malformed('report with too few fields', line)
  const version = parseVersion(line.slice(p0 + 1, p1))
  if (!version) return malformed('bad protocol version', line)
  const p5 = line.indexOf('|', p4 + 1)
  // Events without parameters end right after the session id: no trailing '|'.
  const session = p5 < 0 ? line.slice(p4 + 1) : line.slice(p4 + 1, p5)
  if (!ID.test(session)) return malformed('bad session id', line)
  const envelope = { version, time: line.slice(p1 + 1, p2), subsystem: line.slice(p2 + 1, p3), session }
  const event = line.slice(p3 + 1, p4)
  const params = p5 < 0 ? '' : line.slice(p5 + 1)
  if (!isReportEvent(event)) return { type: 'unknown-report', ...envelope, event, params }
  const typed = reportParams(event, params, p5 >= 0, version)
  if (typeof typed === 'string') return malformed(`${event}: ${typed}`, line)
  return { type: 'report', ...envelope, ...typed }
}

/** Splits off `n` fields from the left; the rest (which may hold '|') is the last element. */
function left(s: string, n: number): string[] | undefined {
  const out: string[] = []
  let start = 0
  for (let i = 0; i < n; i++) {
    const p = s.indexOf('|', start)
    if (p < 0) return undefined
    out.push(s.slice(start, p))
    start = p + 1
  }
  out.push(s.slice(start))
  return out
}

/** Splits off `n` fields from the right; the rest is the first element. */
function right(s: string, n: number): string[] | undefined {
  const out: string[] = []
  let end = s.length
  for (let i = 0; i < n; i++) {
    const p = s.lastIndexOf('|', end - 1)
    if (p < 0 || end === 0) return undefined
    out.unshift(s.slice(p + 1, end))
    end = p
  }
  out.unshift(s.slice(0, end))
  return out
}

function reportParams(event: ReportEventName, params: string, present: boolean, version: ProtocolVersion): ReportParams | string {
  switch (event) {
    case 'link-connect': {
      const f = right(params, 3)
      return f ? { event, rdns: f[0]!, fcrdns: f[1]!, src: f[2]!, dest: f[3]! } : 'expected rdns|fcrdns|src|dest'
    }
    case 'link-greeting':
      return { event, hostname: params }
    case 'link-identify': {
      const f = left(params, 1)
      return f ? { event, method: f[0]!, identity: f[1]! } : 'expected method|identity'
    }
    case 'link-tls':
      return { event, tls: params }
    case 'link-auth': {
      // 0.7 moved the result first because usernames may contain '|'.
      const f = authUsernameFirst(version) ? right(params, 1) : left(params, 1)
      if (!f) return 'expected result and username'
      return authUsernameFirst(version) ? { event, username: f[0]!, result: f[1]! } : { event, result: f[0]!, username: f[1]! }
    }
    case 'link-disconnect':
    case 'timeout':
      return { event }
    case 'tx-reset':
    case 'tx-begin':
    case 'tx-rollback':
      return { event, msgid: params }
    case 'tx-mail':
    case 'tx-rcpt': {
      if (txAddressBeforeResult(version)) {
        // 0.4/0.5: msgid|address|result — the address is in the middle.
        const l = left(params, 1)
        const r = l && right(l[1]!, 1)
        return l && r ? { event, msgid: l[0]!, address: r[0]!, result: r[1]! } : 'expected msgid|address|result'
      }
      const f = left(params, 2)
      return f ? { event, msgid: f[0]!, result: f[1]!, address: f[2]! } : 'expected msgid|result|address'
    }
    case 'tx-envelope': {
      const f = left(params, 1)
      return f ? { event, msgid: f[0]!, evpid: f[1]! } : 'expected msgid|evpid'
    }
    case 'tx-data': {
      const f = left(params, 1)
      return f ? { event, msgid: f[0]!, result: f[1]! } : 'expected msgid|result'
    }
    case 'tx-commit': {
      const f = left(params, 1)
      const size = f ? Number(f[1]) : NaN
      return f && /^\d+$/.test(f[1]!) ? { event, msgid: f[0]!, size } : 'expected msgid|size'
    }
    case 'protocol-client':
      return { event, command: params }
    case 'protocol-server':
      return { event, response: params }
    case 'filter-report': {
      const f = left(params, 2)
      return f ? { event, kind: f[0]!, name: f[1]!, message: f[2]! } : 'expected kind|name|message'
    }
    case 'filter-response': {
      if (!present) return 'expected phase|decision'
      const f = left(params, 1)
      if (!f) return 'expected phase|decision'
      const p = f[1]!.indexOf('|')
      return p < 0
        ? { event, phase: f[0]!, decision: f[1]! }
        : { event, phase: f[0]!, decision: f[1]!.slice(0, p), param: f[1]!.slice(p + 1) }
    }
  }
}
