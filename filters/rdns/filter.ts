/**
 * filter-rdns: the client's reverse DNS, checked once at connection time,
 * acted on at the phase each action needs. It replaces the three built-in
 * filters of the seed configuration
 *
 *     filter check_dyndns phase connect match rdns regex { '.*\.dyn\..*', '.*\.dsl\..*' } disconnect "550 no residential connections"
 *     filter check_rdns phase connect match !rdns disconnect "550 no rDNS is so 80s"
 *     filter check_fcrdns phase connect match !fcrdns disconnect "550 no FCrDNS is so 80s"
 *
 * with one line, `filter-rdns -dyndns disconnect -rdns disconnect -fcrdns disconnect`.
 *
 * Checks (each off unless its flag gives an action):
 *   rdns    the client has a PTR name;
 *   fcrdns  some PTR name (all of them, not only the first) resolves back to
 *           the client: A for IPv4, AAAA for IPv6 (iprev.ts);
 *   dyndns  every PTR name looks dynamic or residential (lib/dynrdns.ts,
 *           plus -dyndnsFile patterns).
 * A temporary DNS failure is no failure: the session proceeds unless
 * -tempfail says 451 (reject) or 421 (disconnect).
 *
 * Where each action happens:
 *   disconnect  at connect, after the lookups started at link-connect;
 *   reject      at -rejectPhase (default mail-from), so smtpd's log names
 *               the sender (reject at connect leaves the client without a
 *               banner, protocol.md §4.1);
 *   junk        at mail-from, per transaction;
 *   log         nowhere: the session's log line names the check.
 * Authentication happens after connect, so only reject and junk can spare
 * an authenticated client (-skipAuth): a disconnect at connect comes before
 * any client could authenticate.
 */

import { hostname } from 'node:os'
import {
  defineFilter,
  disconnect,
  junk,
  proceed,
  reject,
  type Answer,
  type Context,
  type FilterDefinition,
  type LineSink,
  type MessageContext,
  type Need,
  type PhaseHandlers,
  type ReportHandlers,
} from '../../lib/filter.js'
import { bool, list, str, UsageError, type FlagSpec, type FlagValues } from '../../lib/flags.js'
import { createResolver, nameserverFlag, parseNameserver, type DnsResolver } from '../../lib/dns.js'
import { classifyRdns, loadPatternFile, type RdnsPattern } from '../../lib/dynrdns.js'
import { CidrSet, isLoopback, parseCidr } from '../../lib/net.js'
import { StartupError, type ProgramSpec } from '../../lib/main.js'
import type { Logger } from '../../lib/log.js'
import { readFileSync } from 'node:fs'
import { lookupIprev, type IprevOutcome, type IprevResult } from './iprev.js'

export type CheckName = 'dyndns' | 'rdns' | 'fcrdns'
/** The seed's chain order; among failed checks with equally severe actions, the first one answers. */
export const CHECKS: readonly CheckName[] = ['dyndns', 'rdns', 'fcrdns']

export type Action = 'disconnect' | 'reject' | 'junk' | 'log'
const ACTIONS: readonly Action[] = ['disconnect', 'reject', 'junk', 'log']
const SEVERITY: Record<Action | 'proceed', number> = { proceed: 0, log: 1, junk: 2, reject: 3, disconnect: 4 }

export type TempfailAction = 'proceed' | 'reject' | 'disconnect'
export type RejectPhase = 'helo' | 'mail-from' | 'rcpt-to' | 'data'
const REJECT_PHASES: readonly RejectPhase[] = ['helo', 'mail-from', 'rcpt-to', 'data']

/** An SMTP reply: code and text (the text may start with an RFC 3463 enhanced code). */
export interface Reply {
  readonly code: number
  readonly text: string
}

/** The seed configuration's texts. */
export const DEFAULT_TEXTS: Record<CheckName, string> = {
  dyndns: '550 no residential connections',
  rdns: '550 no rDNS is so 80s',
  fcrdns: '550 no FCrDNS is so 80s',
}
// RFC 7372 §3.3: X.7.25 "Reverse DNS validation failed".
const TEMPFAIL_TEXTS: Record<'reject' | 'disconnect', string> = {
  reject: '451 4.7.25 cannot verify your reverse DNS now, try again later',
  disconnect: '421 4.7.25 cannot verify your reverse DNS now, try again later',
}

export interface RdnsOptions {
  /** the checks that are on, with their action */
  readonly actions: Partial<Record<CheckName, Action>>
  readonly replies: Record<CheckName, Reply>
  readonly tempfail: TempfailAction
  readonly tempfailReply?: Reply
  readonly rejectPhase: RejectPhase
  readonly allowNets: CidrSet
  /** rDNS suffixes (lower case, no dots at either end): a forward-confirmed name equal to or below one is allowed */
  readonly allowDomains: readonly string[]
  readonly skipAuth: boolean
  readonly skipLocal: boolean
  readonly header: boolean
  readonly patterns: readonly RdnsPattern[]
  readonly timeoutMs: number
  readonly maxNames: number
}

// ---------------------------------------------------------------------------
// Verdicts and the decision (pure)

export type CheckVerdict = 'pass' | 'fail' | 'temperror'

export interface Verdicts {
  readonly rdns: CheckVerdict
  /** undefined when the forward lookups were not needed */
  readonly fcrdns?: CheckVerdict
  readonly dyndns: CheckVerdict
  /** per dynamic-looking name, its evidence (`name:word:dsl,ip:in-order`) */
  readonly dynamic: readonly string[]
}

export interface Plan {
  readonly action: Action | 'proceed'
  /** the check whose action this is, or tempfail */
  readonly by?: CheckName | 'tempfail'
  readonly reply?: Reply
}

/** The checks' verdicts from the DNS outcome. */
export function verdicts(o: IprevOutcome, patterns: readonly RdnsPattern[] = []): Verdicts {
  const rdns: CheckVerdict = o.ptr === 'names' ? 'pass' : o.ptr === 'none' ? 'fail' : 'temperror'
  const fcrdns: CheckVerdict | undefined =
    o.iprev === undefined ? undefined : o.iprev === 'pass' ? 'pass' : o.iprev === 'temperror' ? 'temperror' : 'fail'
  // Every name must look dynamic: a host that also carries a proper name is no
  // residential line (a second PTR is set by whoever runs the reverse zone).
  const dynamic: string[] = []
  let all = o.names.length > 0
  for (const name of o.names) {
    const c = classifyRdns(name, o.ip, { patterns })
    if (c.dynamic) dynamic.push(`${name}:${c.reasons.join(',')}`)
    else all = false
  }
  const dyndns: CheckVerdict = o.ptr === 'temperror' ? 'temperror' : all ? 'fail' : 'pass'
  return { rdns, fcrdns, dyndns, dynamic }
}

/**
 * What to do: the most severe action among the failed checks (ties: the
 * seed's order dyndns, rdns, fcrdns); a check that could not be decided
 * (temperror) gives the -tempfail action, but only if its own action would
 * refuse (reject or disconnect) — an undecided check is never treated worse
 * than a failed one — and a failure of equal severity wins over it.
 */
export function decide(v: Verdicts, opts: Pick<RdnsOptions, 'actions' | 'replies' | 'tempfail' | 'tempfailReply'>): { plan: Plan; failed: CheckName[] } {
  const failed: CheckName[] = []
  let plan: Plan = { action: 'proceed' }
  let undecided = false
  for (const check of CHECKS) {
    const action = opts.actions[check]
    const verdict = v[check]
    if (action === undefined || verdict === undefined) continue
    if (verdict === 'fail') {
      failed.push(check)
      if (SEVERITY[action] > SEVERITY[plan.action]) plan = { action, by: check, reply: opts.replies[check] }
    } else if (verdict === 'temperror' && (action === 'reject' || action === 'disconnect')) undecided = true
  }
  if (undecided && opts.tempfail !== 'proceed' && SEVERITY[opts.tempfail] > SEVERITY[plan.action]) {
    plan = { action: opts.tempfail, by: 'tempfail', reply: opts.tempfailReply ?? parseReply(TEMPFAIL_TEXTS[opts.tempfail]) }
  }
  return { plan, failed }
}

/** `550 text` → { code, text }; throws a message fit for a usage error. */
export function parseReply(s: string): Reply {
  const m = /^([45][0-9][0-9]) +(\S[\s\S]*)$/.exec(s.trim())
  if (!m) throw new Error('expected a 4xx or 5xx code, a space and a text, e.g. "550 no rDNS is so 80s"')
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(m[2]!)) throw new Error('control characters are not allowed in a reply')
  // RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets.
  if (Buffer.byteLength(s) > 500) throw new Error('a reply is at most 500 bytes')
  return { code: Number(m[1]), text: m[2]! }
}

/** True if name is domain or below it. */
export function underDomain(name: string, domain: string): boolean {
  return name === domain || name.endsWith('.' + domain)
}

// ---------------------------------------------------------------------------
// Authentication-Results (RFC 8601)

// RFC 2045 §5.1 token: no tspecials, no space, no controls.
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/

/** A MIME `value` (RFC 8601 §2.2): a token, or a quoted-string (an IPv6 address has colons). */
export function mimeValue(s: string): string {
  return TOKEN.test(s) ? s : `"${s.replace(/[\\"]/g, '\\$&')}"`
}

/**
 * The header lines. One line when it fits in 78 columns (RFC 5322 §2.1.1),
 * else folded after the authserv-id and then between words: the longest
 * line is then a PTR name in a comment, far below smtpd's 2048-byte limit
 * for answer lines before 7.4.
 */
export function authResultsHeader(admd: string, result: IprevResult, ip: string, names: readonly string[]): string[] {
  const words = [`iprev=${result}`, `policy.iprev=${mimeValue(ip)}`]
  // A comment for people: the confirmed name(s) on pass, else the PTR names (unverified).
  if (names.length > 0) words.push(...`(${names.slice(0, 3).join(' ')})`.split(' '))
  const first = `Authentication-Results: ${mimeValue(admd)};`
  const one = `${first} ${words.join(' ')}`
  if (one.length <= 78) return [one]
  const lines = [first]
  let line = ''
  for (const w of words) {
    if (line !== '' && line.length + 1 + w.length > 78) {
      lines.push(line)
      line = ''
    }
    line = line === '' ? '\t' + w : `${line} ${w}`
  }
  lines.push(line)
  return lines
}

// ---------------------------------------------------------------------------
// The filter

/** `a, a, b` → `a (2x), b`: a client may try MAIL FROM many times. */
function summarize(items: readonly string[]): string {
  const counts = new Map<string, number>()
  for (const i of items) counts.set(i, (counts.get(i) ?? 0) + 1)
  return [...counts].map(([i, n]) => (n > 1 ? `${i} (${n}x)` : i)).join(', ')
}

interface SessionResult {
  readonly ip?: string
  /** why no check ran: local, allowlist, no-address */
  readonly skipped?: string
  readonly dns?: IprevOutcome
  readonly verdicts?: Verdicts
  readonly failed?: readonly CheckName[]
  readonly plan: Plan
  /** the forward-confirmed name that matched -allow */
  readonly allowedBy?: string
}

interface RdnsState {
  pending?: Promise<SessionResult>
  result?: SessionResult
  /** what was done, for the session's log line */
  readonly taken: string[]
  headerDue: boolean
  logged: boolean
}

export interface RdnsDeps {
  readonly resolver: DnsResolver
  /** the authserv-id when smtpd sends no config|admd (before 6.8) */
  readonly fallbackAdmd?: string
}

export function rdnsFilter(opts: RdnsOptions, deps: RdnsDeps): FilterDefinition<RdnsState> {
  const { resolver } = deps
  const fallbackAdmd = deps.fallbackAdmd ?? hostname()
  const used = Object.values(opts.actions)
  const refuses = (a: Action | TempfailAction): boolean => used.includes(a as Action) || opts.tempfail === a
  const needForward = opts.actions.fcrdns !== undefined || opts.header || opts.allowDomains.length > 0

  async function check(address: string): Promise<SessionResult> {
    const dns = await lookupIprev(resolver, address, { forward: needForward, timeoutMs: opts.timeoutMs, maxNames: opts.maxNames })
    const allowedBy = dns.confirmed.find((n) => opts.allowDomains.some((d) => underDomain(n, d)))
    const v = verdicts(dns, opts.patterns)
    if (allowedBy !== undefined) return { ip: dns.ip, dns, verdicts: v, failed: [], plan: { action: 'proceed' }, allowedBy }
    const { plan, failed } = decide(v, opts)
    return { ip: dns.ip, dns, verdicts: v, failed, plan }
  }

  /** Starts the check for this session (once); skipped sessions get their result at once. */
  function start(ctx: Context<RdnsState>): void {
    const st = ctx.state
    if (st.result || st.pending) return
    const s = ctx.session
    const skip = (skipped: string, ip?: string): void => {
      st.result = { ip, skipped, plan: { action: 'proceed' } }
    }
    if (s.local) return skip('local')
    if (s.address === undefined) return skip('no-address')
    if (opts.skipLocal && isLoopback(s.address)) return skip('local', s.address)
    if (opts.allowNets.has(s.address)) return skip('allowlist', s.address)
    st.pending = check(s.address).then((r) => {
      st.result = r
      st.pending = undefined
      return r
    })
  }

  /** The result now if known (no promise: most phases answer synchronously), else its promise. */
  function result(ctx: Context<RdnsState>): SessionResult | Promise<SessionResult> {
    start(ctx)
    return ctx.state.result ?? ctx.state.pending!
  }

  function then(r: SessionResult | Promise<SessionResult>, f: (r: SessionResult) => Answer): Answer {
    return r instanceof Promise ? r.then(f) : f(r)
  }

  const exempt = (ctx: Context<RdnsState>): boolean => opts.skipAuth && ctx.session.authUser !== undefined

  const atConnect = (ctx: Context<RdnsState>): Answer =>
    then(result(ctx), (r) => {
      if (r.plan.action !== 'disconnect') return proceed()
      ctx.state.taken.push('disconnect')
      return disconnect(r.plan.reply!.code, r.plan.reply!.text)
    })

  const later = (phase: string) => (ctx: Context<RdnsState>): Answer =>
    then(result(ctx), (r) => {
      const { action, reply } = r.plan
      const here = (action === 'reject' && phase === opts.rejectPhase) || (action === 'junk' && phase === 'mail-from')
      if (!here) return proceed()
      if (exempt(ctx)) {
        ctx.state.taken.push('none (authenticated)')
        return proceed()
      }
      ctx.state.taken.push(`${action} at ${phase}`)
      return action === 'reject' ? reject(reply!.code, reply!.text) : junk()
    })

  function logLine(ctx: Context<RdnsState>, r: SessionResult): void {
    const st = ctx.state
    if (st.logged) return
    st.logged = true
    if (r.skipped !== undefined) {
      const level = r.skipped === 'allowlist' ? 'info' : 'debug'
      ctx.log[level]({ ip: r.ip, skipped: r.skipped }, 'rdns: skipped')
      return
    }
    const d = r.dns!
    const v = r.verdicts!
    const fields: Record<string, unknown> = { ip: r.ip, names: d.names }
    if (d.iprev !== undefined) fields.confirmed = d.confirmed
    fields.rdns = v.rdns
    if (v.fcrdns !== undefined) fields.fcrdns = v.fcrdns
    fields.dyndns = v.dyndns
    if (v.dynamic.length > 0) fields.dynamic = v.dynamic
    if (r.allowedBy !== undefined) fields.allowed = r.allowedBy
    if (r.failed!.length > 0) fields.failed = r.failed
    fields.action = r.plan.action
    if (r.plan.by !== undefined) fields.by = r.plan.by
    fields.taken = st.taken.length > 0 ? summarize(st.taken) : 'none'
    if (d.errors.length > 0) fields.dnsErrors = d.errors
    fields.ms = d.ms
    ctx.log.info(fields, 'rdns')
  }

  const reports: ReportHandlers<RdnsState> = {
    // Start the lookups now: smtpd sends link-connect just before the connect request.
    'link-connect': (ctx) => start(ctx),
    'link-disconnect': (ctx) => {
      const st = ctx.state
      if (st.result) logLine(ctx, st.result)
      else if (st.pending) void st.pending.then((r) => logLine(ctx, r))
    },
    ...(opts.header ? { 'tx-begin': (ctx: Context<RdnsState>) => void (ctx.state.headerDue = true) } : {}),
  }

  const phases: { -readonly [K in keyof PhaseHandlers<RdnsState>]: PhaseHandlers<RdnsState>[K] } = {}
  if (refuses('disconnect')) phases.connect = atConnect
  // With -header, MAIL FROM waits for the lookups too, so a slow answer is in before DATA.
  if (refuses('junk') || (refuses('reject') && opts.rejectPhase === 'mail-from') || opts.header) phases['mail-from'] = later('mail-from')
  if (refuses('reject')) {
    if (opts.rejectPhase === 'helo') {
      phases.helo = later('helo')
      phases.ehlo = later('helo')
    } else if (opts.rejectPhase === 'rcpt-to') phases['rcpt-to'] = later('rcpt-to')
    else if (opts.rejectPhase === 'data') phases.data = later('data')
  }

  const writeHeader = (ctx: MessageContext<RdnsState>, out: LineSink): void => {
    const st = ctx.state
    if (!st.headerDue) return
    st.headerDue = false
    const r = st.result
    if (!r || r.dns?.iprev === undefined) return
    const names = r.dns.iprev === 'pass' ? r.dns.confirmed : r.dns.names
    for (const l of authResultsHeader(ctx.config.admd ?? fallbackAdmd, r.dns.iprev, r.dns.ip, names)) out.write(l)
  }

  const needs: Need[] = ['src']
  if (opts.skipAuth) needs.push('auth')

  return defineFilter<RdnsState>({
    name: 'rdns',
    needs,
    newSession: () => ({ taken: [], headerDue: false, logged: false }),
    reports,
    phases,
    data: opts.header
      ? {
          mode: 'stream',
          line: (ctx, line, out) => {
            writeHeader(ctx, out)
            out.write(line)
          },
          end: (ctx, out) => writeHeader(ctx, out),
        }
      : undefined,
    // A bug of ours must not refuse mail: fail open, as for DNS trouble.
    onFailure: 'proceed',
    // The lookups end within -timeout; this only guards against a bug.
    answerTimeoutMs: opts.timeoutMs + 5_000,
  })
}

// ---------------------------------------------------------------------------
// Flags

const actionCheck = (v: string | number | boolean): string | undefined =>
  ACTIONS.includes(v as Action) ? undefined : `one of ${ACTIONS.join(', ')}`
const replyCheck = (v: string | number | boolean): string | undefined => {
  try {
    parseReply(String(v))
    return undefined
  } catch (err) {
    return (err as Error).message
  }
}

export const FLAGS: readonly FlagSpec[] = [
  { name: 'rdns', kind: 'string', arg: 'action', help: 'when the client has no PTR name: disconnect, reject, junk or log (default: check off)', check: actionCheck },
  { name: 'fcrdns', kind: 'string', arg: 'action', help: 'when no PTR name resolves back to the client: disconnect, reject, junk or log', check: actionCheck },
  { name: 'dyndns', kind: 'string', arg: 'action', help: 'when every PTR name looks dynamic or residential: disconnect, reject, junk or log', check: actionCheck },
  { name: 'rdnsText', kind: 'string', arg: 'reply', default: DEFAULT_TEXTS.rdns, help: 'reply of the rdns check', check: replyCheck },
  { name: 'fcrdnsText', kind: 'string', arg: 'reply', default: DEFAULT_TEXTS.fcrdns, help: 'reply of the fcrdns check', check: replyCheck },
  { name: 'dyndnsText', kind: 'string', arg: 'reply', default: DEFAULT_TEXTS.dyndns, help: 'reply of the dyndns check', check: replyCheck },
  {
    name: 'rejectPhase', kind: 'string', arg: 'phase', default: 'mail-from',
    help: `phase of the reject action: ${REJECT_PHASES.join(', ')} (helo means HELO and EHLO)`,
    check: (v) => (REJECT_PHASES.includes(v as RejectPhase) ? undefined : `one of ${REJECT_PHASES.join(', ')}`),
  },
  {
    name: 'tempfail', kind: 'string', arg: 'action', default: 'proceed',
    help: 'when a refusing check cannot be decided (SERVFAIL, timeout): proceed, reject (451 at -rejectPhase) or disconnect (421 at connect)',
    check: (v) => (['proceed', 'reject', 'disconnect'].includes(String(v)) ? undefined : 'one of proceed, reject, disconnect'),
  },
  {
    name: 'tempfailText', kind: 'string', arg: 'reply',
    help: `reply of -tempfail (default "${TEMPFAIL_TEXTS.reject}", 421 for disconnect)`,
    check: (v) => replyCheck(v) ?? (String(v).trim().startsWith('4') ? undefined : 'a temporary failure needs a 4xx code'),
  },
  { name: 'dyndnsFile', kind: 'string', arg: 'file', repeat: true, help: 'more dynamic-name regexes, one a line, # comments (may be repeated)' },
  { name: 'allow', kind: 'string', arg: 'cidr|domain', repeat: true, help: 'never check this network, or forward-confirmed names in this domain (may be repeated)' },
  { name: 'allowlist', kind: 'string', arg: 'file', repeat: true, help: 'file of -allow entries, one a line, # comments (may be repeated)' },
  { name: 'skipAuth', kind: 'bool', default: true, help: 'spare authenticated sessions from reject and junk (-skipAuth=false to check them)' },
  { name: 'skipLocal', kind: 'bool', default: true, help: 'skip loopback clients (unix-socket sessions are always skipped)' },
  { name: 'header', kind: 'bool', help: 'add Authentication-Results: <admd>; iprev=… policy.iprev=IP to each message' },
  nameserverFlag('ask this resolver (default: the system resolver, /etc/resolv.conf)'),
  { name: 'timeout', kind: 'string', arg: 'duration', default: '5s', help: 'time budget of all lookups of a session (e.g. 5s, 1500ms)', check: (v) => (parseDuration(String(v)) === null ? 'a duration like 5s or 1500ms' : undefined) },
  { name: 'maxNames', kind: 'int', arg: 'n', default: 10, help: 'forward-check at most this many PTR names', check: (v) => (Number(v) >= 1 && Number(v) <= 100 ? undefined : '1 to 100') },
]

/** Go-style duration (`1500ms`, `5s`, `1m`, `1.5s`) → milliseconds, or null. */
export function parseDuration(s: string): number | null {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m)$/.exec(s.trim())
  if (!m) return null
  const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000)
  return ms >= 1 && ms <= 600_000 ? Math.round(ms) : null
}

/** A domain suffix for -allow: a host name, optionally written `*.example.org` or `.example.org`. */
function parseDomain(s: string): string | null {
  const d = s.toLowerCase().replace(/^\*?\./, '').replace(/\.$/, '')
  return /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/.test(d) && !/^[0-9.]+$/.test(d) ? d : null
}

/** Adds one -allow entry (network or domain) to the sets; returns an error message or undefined. */
function addAllow(entry: string, nets: CidrSet, domains: string[]): string | undefined {
  const cidr = parseCidr(entry)
  if (cidr !== null) {
    nets.addCidr(cidr)
    return undefined
  }
  const d = parseDomain(entry)
  if (d === null) return `not an IP address, CIDR network or domain: ${JSON.stringify(entry)}`
  if (!domains.includes(d)) domains.push(d)
  return undefined
}

/** Checks flag values and files; throws UsageError (bad combination) or StartupError (a file). */
export function buildOptions(values: FlagValues): RdnsOptions {
  const actions: Partial<Record<CheckName, Action>> = {}
  for (const c of CHECKS) {
    const a = str(values, c)
    if (a !== undefined) actions[c] = a as Action
  }
  const header = bool(values, 'header')
  if (Object.keys(actions).length === 0 && !header) {
    throw new UsageError('nothing to do: give at least one of -rdns, -fcrdns, -dyndns (with an action) or -header')
  }
  const replies = {} as Record<CheckName, Reply>
  for (const c of CHECKS) replies[c] = parseReply(str(values, `${c}Text`) ?? DEFAULT_TEXTS[c])
  const tempfail = (str(values, 'tempfail') ?? 'proceed') as TempfailAction
  const tt = str(values, 'tempfailText')
  if (tt !== undefined && tempfail === 'proceed') throw new UsageError('-tempfailText needs -tempfail reject or -tempfail disconnect')
  if (tempfail !== 'proceed' && !Object.values(actions).some((a) => a === 'reject' || a === 'disconnect')) {
    // An undecided check is never treated worse than a failed one (decide()).
    throw new UsageError(`-tempfail ${tempfail} has no effect: no check has the action reject or disconnect`)
  }

  const allowNets = new CidrSet()
  const allowDomains: string[] = []
  for (const e of list(values, 'allow')) {
    const problem = addAllow(e.trim(), allowNets, allowDomains)
    if (problem) throw new UsageError(`invalid value for flag -allow: ${problem}`)
  }
  for (const file of list(values, 'allowlist')) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      throw new StartupError(`${file}: cannot read allowlist: ${(err as Error).message}`)
    }
    text.split('\n').forEach((raw, i) => {
      const hash = raw.indexOf('#')
      const entry = (hash < 0 ? raw : raw.slice(0, hash)).trim()
      if (entry === '') return
      // A silently skipped allowlist entry becomes a refused customer: stop.
      const problem = addAllow(entry, allowNets, allowDomains)
      if (problem) throw new StartupError(`${file}:${i + 1}: ${problem}`)
    })
  }

  const patterns: RdnsPattern[] = []
  for (const file of list(values, 'dyndnsFile')) {
    try {
      patterns.push(...loadPatternFile(file))
    } catch (err) {
      throw new StartupError((err as Error).message)
    }
  }
  if (patterns.length > 0 && actions.dyndns === undefined) throw new UsageError('-dyndnsFile needs -dyndns')

  return {
    actions,
    replies,
    tempfail,
    tempfailReply: tt !== undefined ? parseReply(tt) : undefined,
    rejectPhase: (str(values, 'rejectPhase') ?? 'mail-from') as RejectPhase,
    allowNets,
    allowDomains,
    skipAuth: values.skipAuth !== false,
    skipLocal: values.skipLocal !== false,
    header,
    patterns,
    timeoutMs: parseDuration(str(values, 'timeout') ?? '5s')!,
    maxNames: Number(values.maxNames ?? 10),
  }
}

/** The resolver of -nameserver (or the system's), with the session budget as its per-query limit. */
export function buildResolver(values: FlagValues, timeoutMs: number): DnsResolver {
  const servers: string[] = []
  for (const s of list(values, 'nameserver')) {
    try {
      servers.push(parseNameserver(s))
    } catch (err) {
      throw new UsageError(`invalid value for flag -nameserver: ${(err as Error).message}`)
    }
  }
  // Every session waiting at connect has about one query out (PTR, then A): lib/dns's
  // default bound of 64 made 100 concurrent sessions queue behind each other (1430
  // sessions/s instead of ~2000 with a 20 ms resolver, bench/rdns.ts). c-ares sends them
  // all over one socket per server, so a higher bound costs no sockets.
  return createResolver({ servers: servers.length > 0 ? servers : undefined, timeoutMs, maxInFlight: 256 })
}

export const program: ProgramSpec = {
  program: 'filter-rdns',
  flags: FLAGS,
  build: (values: FlagValues, _rest: string[], log: Logger) => {
    const opts = buildOptions(values)
    const resolver = buildResolver(values, opts.timeoutMs)
    log.debug({ checks: opts.actions, rejectPhase: opts.rejectPhase, tempfail: opts.tempfail, patterns: opts.patterns.length }, 'filter-rdns ready')
    return rdnsFilter(opts, { resolver })
  },
}
