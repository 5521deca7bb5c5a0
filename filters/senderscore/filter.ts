/**
 * filter-senderscore: SenderScore reputation (Validity's score.senderscore.com
 * DNS list) for OpenSMTPD, a drop-in for poolpOrg's Go filter: the same flags
 * (0.1.1 and HEAD), the same decisions, texts and header for the same score,
 * but lookups that never stall other sessions (../shared/anchors.md §2).
 *
 * Policy, as the Go filter has it:
 * - the client's IPv4 address is looked up at link-connect as
 *   d.c.b.a.score.senderscore.com; the answer 127.0.X.Y means category X,
 *   score Y (0 worst … 100 best); no answer means the score is unknown;
 * - at connect: block (if the block phase is connect) > junk > proceed;
 *   at the block phase: `disconnect|550 your IP reputation is too low for this MX`;
 * - every answer but data-lines waits factor × (100 − score) / 100 ms;
 * - `-scoreHeader` puts `X-SenderScore: N` first in the message;
 * - an unknown score is never blocked, junked, slowed or written.
 *
 * Where we differ, and why (man/filter-senderscore.8, CAVEATS):
 * - asynchronous, cached, coalesced A-only lookups with a timeout (lib/dns);
 * - strict decoding: only 127.0.X.Y with Y <= 100 is a score; 127.255.255.x
 *   (SenderScore refusing the resolver) is logged loudly and means unknown,
 *   where the Go filter reads 127, an excellent sender (its issues #31, #33);
 * - each answer waits at most -maxDelay (smtpd has no timeout on filters);
 * - phases are registered only when they can do something (the Go filter
 *   registers all of them and answers most with an immediate proceed);
 * - X-SenderScore is written in every message of a session, not just the first.
 */

import { disconnect, junk, proceed, type Answer, type Context, type Decision, type FilterDefinition, type LineSink, type MessageContext, type PhaseHandlers, type SessionInfo } from '../../lib/filter.js'
import { createResolver, nameserverFlag, type DnsResult } from '../../lib/dns.js'
import { bool, list, num, str, type FlagSpec, type FlagValues } from '../../lib/flags.js'
import type { Logger } from '../../lib/log.js'
import { StartupError, type ProgramSpec } from '../../lib/main.js'
import { loadAddressList, parseIp, reversedOctets, type CidrSet } from '../../lib/net.js'

/** The DNS zone: d.c.b.a.score.senderscore.com (RFC 5782 §2.1 naming). */
export const ZONE = 'score.senderscore.com'

/** The Go filter's text, byte for byte (smtpd sends it to the client as `550 …`). */
export const BLOCK_TEXT = 'your IP reputation is too low for this MX'

/** What upstream HEAD's validatePhase accepts (data and commit are not block phases). */
export const BLOCK_PHASES = ['connect', 'helo', 'ehlo', 'starttls', 'auth', 'mail-from', 'rcpt-to', 'quit'] as const
export type BlockPhase = (typeof BLOCK_PHASES)[number]

/** The phases the Go filter delays (all it registers but data-line). */
export const DELAYED_PHASES = ['connect', 'helo', 'ehlo', 'starttls', 'auth', 'mail-from', 'rcpt-to', 'data', 'commit', 'quit'] as const
type DelayedPhase = (typeof DELAYED_PHASES)[number]

/** smtpd's session timeout is 300 s; no single answer may come near it (protocol.md §4.7). */
export const MAX_DELAY_LIMIT_MS = 300_000

/** Loud warnings (refused resolver, DNS failures) are repeated at most this often. */
export const WARN_INTERVAL_MS = 60_000

/** A session's reputation. score −1 = unknown: never blocked, junked, slowed or written. */
export interface Reputation {
  readonly score: number
  readonly category?: number
  /** where the score came from */
  readonly via: 'dns' | 'allowlist' | 'test' | 'none'
  /** why the score is unknown (or the DNS answer, when unexpected) */
  readonly reason?: string
}

export type Decoded =
  | { readonly kind: 'score'; readonly score: number; readonly category: number }
  /** 127.255.255.x: SenderScore refuses this resolver (unregistered, or over quota) */
  | { readonly kind: 'refused'; readonly answer: string }
  | { readonly kind: 'invalid'; readonly answer: string }

/**
 * Decodes the A records of a SenderScore answer. Only a single 127.0.X.Y with
 * Y <= 100 is a score (category X). The Go filter parsed each octet with
 * ParseInt(…, 10, 8), so 127.255.255.255 became category 127, score 127: an
 * excellent sender, for every client of an unregistered resolver.
 */
export function decodeAnswer(values: readonly string[]): Decoded {
  if (values.length !== 1) return { kind: 'invalid', answer: values.join(',') }
  const answer = values[0]!
  const ip = parseIp(answer)
  if (ip === null || ip.family !== 4) return { kind: 'invalid', answer }
  const [a, b, c, d] = ip.bytes as unknown as [number, number, number, number]
  if (a === 127 && b === 255 && c === 255) return { kind: 'refused', answer }
  if (a !== 127 || b !== 0 || d > 100) return { kind: 'invalid', answer }
  return { kind: 'score', score: d, category: c }
}

/**
 * -testMode (upstream HEAD): no DNS; the client a.b.c.d scores d in category
 * c, and d = 255 means no data. Scores above 100 are unknown here as they
 * would be from DNS (the Go filter's int8 parse made 128–254 score 127).
 */
export function testModeReputation(ip: string): Reputation {
  const parsed = parseIp(ip)
  if (parsed === null || parsed.family !== 4) return { score: -1, via: 'none', reason: 'not IPv4' }
  const c = parsed.bytes[2]!
  const d = parsed.bytes[3]!
  if (d === 255) return { score: -1, via: 'test', reason: 'no data' }
  if (d > 100) return { score: -1, via: 'test', reason: `score ${d} out of range` }
  return { score: d, category: c, via: 'test' }
}

/**
 * Upstream HEAD's delay: factor × (100 − score) / 100 ms in integer
 * arithmetic, for every known score, 0 included (its PR #26); capped.
 */
export function delayFor(score: number, slowFactor: number, maxDelayMs: number): number {
  if (slowFactor <= 0 || score < 0) return 0
  const ms = Math.trunc((slowFactor * (100 - score)) / 100)
  return Math.max(0, Math.min(ms, maxDelayMs))
}

/** Lookups the filter needs from a resolver (lib/dns's DnsResolver, or a test double). */
export interface ScoreResolver {
  a(name: string): Promise<DnsResult>
}

export interface SenderScoreOptions {
  /** below this score: disconnect at the block phase; <= 0 off (Go default −1) */
  readonly blockBelow: number
  readonly blockPhase: BlockPhase
  /** below this score: junk at connect; <= 0 off */
  readonly junkBelow: number
  /** ms for the worst score; <= 0 off */
  readonly slowFactor: number
  readonly scoreHeader: boolean
  readonly allowlist?: CidrSet
  readonly testMode: boolean
  /** cap of each answer's delay, ms */
  readonly maxDelayMs: number
  /** needed unless testMode */
  readonly resolver?: ScoreResolver
  /** for filter-wide messages (rate-limited warnings) */
  readonly log: Logger
  /** ms clock for the warning rate limit; default Date.now */
  readonly now?: () => number
}

/** Per-session state. */
export interface SenderScoreState {
  reputation?: Reputation
  pending?: Promise<Reputation>
}

/** One warning per key per interval; counts what it held back. */
class Throttle {
  private readonly last = new Map<string, { at: number; held: number }>()
  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  /** undefined: stay quiet; otherwise the number of warnings held back since the last one. */
  pass(key: string): number | undefined {
    const t = this.now()
    const e = this.last.get(key)
    if (e && t - e.at < this.intervalMs) {
      e.held++
      return undefined
    }
    this.last.set(key, { at: t, held: 0 })
    return e?.held ?? 0
  }
}

function isPromise<T>(x: unknown): x is Promise<T> {
  return typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function'
}

function sleep<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(resolve, ms, value))
}

export function senderscoreFilter(o: SenderScoreOptions): FilterDefinition<SenderScoreState> {
  if (!o.testMode && !o.resolver) throw new Error('senderscore: a resolver is needed outside -testMode')
  const throttle = new Throttle(WARN_INTERVAL_MS, o.now ?? Date.now)
  const blockOn = o.blockBelow > 0
  const junkOn = o.junkBelow > 0
  const slowOn = o.slowFactor > 0

  const warn = (key: string, fields: Record<string, unknown>, msg: string, level: 'warn' | 'error' = 'warn'): void => {
    const held = throttle.pass(key)
    if (held === undefined) return
    o.log[level](held > 0 ? { ...fields, suppressed: held } : fields, msg)
  }

  /** The reputation of a DNS result for `ip`. */
  const fromDns = (ip: string, r: DnsResult): Reputation => {
    if (!r.ok) {
      if (r.error === 'nxdomain' || r.error === 'nodata') return { score: -1, via: 'dns', reason: 'no data' }
      // Fail open: a broken resolver must not block or slow anyone.
      warn('dns-' + r.error, { addr: ip, error: r.error, detail: r.message }, 'SenderScore lookups are failing: scores unknown, sessions proceed')
      return { score: -1, via: 'dns', reason: r.error }
    }
    const d = decodeAnswer(r.values)
    switch (d.kind) {
      case 'score':
        return { score: d.score, category: d.category, via: 'dns' }
      case 'refused':
        warn(
          'refused',
          { addr: ip, answer: d.answer },
          `SenderScore refuses this resolver (answer ${d.answer}): every score is unknown. Register the resolver's public IP with Validity, or point -nameserver at a resolver that is allowed`,
          'error',
        )
        return { score: -1, via: 'dns', reason: `refused (${d.answer})` }
      case 'invalid':
        warn('invalid', { addr: ip, answer: d.answer }, 'unexpected SenderScore answer: score unknown')
        return { score: -1, via: 'dns', reason: `unexpected answer ${d.answer}` }
    }
  }

  /** Looks the session's client up: synchronously when no DNS is needed. */
  const lookup = (s: SessionInfo): Reputation | Promise<Reputation> => {
    if (s.local) return { score: -1, via: 'none', reason: 'local' }
    const ip = s.address
    if (ip === undefined) return { score: -1, via: 'none', reason: 'no client address' }
    if (o.allowlist?.has(ip)) return { score: 100, via: 'allowlist' }
    // SenderScore has no IPv6 data; asking would spend quota for nothing.
    if (s.family !== 4) return { score: -1, via: 'none', reason: 'IPv6' }
    if (o.testMode) return testModeReputation(ip)
    return o.resolver!.a(`${reversedOctets(ip)}.${ZONE}`).then(
      (r) => fromDns(ip, r),
      (err: unknown) => fromDns(ip, { ok: false, error: 'error', message: String(err), temporary: true }),
    )
  }

  /** The reputation, or the promise of it; the lookup starts at most once per link-connect. */
  const reputationOf = (ctx: Context<SenderScoreState>): Reputation | Promise<Reputation> => {
    const st = ctx.state
    if (st.reputation) return st.reputation
    if (st.pending) return st.pending
    const r = lookup(ctx.session)
    if (!isPromise<Reputation>(r)) {
      st.reputation = r
      return r
    }
    const p = r.then((rep) => {
      if (st.pending === p) {
        st.reputation = rep
        st.pending = undefined
      }
      return rep
    })
    st.pending = p
    return p
  }

  // -testMode answers strictly in input order, as the Go filter does there
  // (it sleeps in its read loop): each answer waits for the one before.
  let chain: Promise<unknown> = Promise.resolve()
  let chained = 0
  const later = (d: Decision, ms: number): Answer => {
    if (o.testMode) {
      if (chained === 0 && ms <= 0) return d
      chained++
      const p = chain.then(() => (ms > 0 ? sleep(ms, d) : d)).finally(() => chained--)
      chain = p
      return p
    }
    return ms > 0 ? sleep(ms, d) : d
  }

  const blocked = (rep: Reputation): boolean => blockOn && rep.score >= 0 && rep.score < o.blockBelow
  const delayOf = (rep: Reputation): number => delayFor(rep.score, o.slowFactor, o.maxDelayMs)

  const verdict = (ctx: Context<SenderScoreState>, rep: Reputation, phase: string, action: string, delayMs: number): void => {
    const f: Record<string, unknown> = { addr: ctx.session.address ?? ctx.session.src ?? null, score: rep.score >= 0 ? rep.score : null }
    if (rep.category !== undefined) f.category = rep.category
    f.via = rep.via
    if (rep.reason) f.reason = rep.reason
    if (phase !== 'connect') f.phase = phase
    f.action = action
    if (delayMs > 0) f.delayMs = delayMs
    ctx.log.info(f, 'verdict')
  }

  const onConnect = (ctx: Context<SenderScoreState>, rep: Reputation): Answer => {
    const ms = delayOf(rep)
    let d: Decision
    if (o.blockPhase === 'connect' && blocked(rep)) d = disconnect(550, BLOCK_TEXT)
    else if (junkOn && rep.score >= 0 && rep.score < o.junkBelow) d = junk()
    else d = proceed()
    verdict(ctx, rep, 'connect', d.kind, ms)
    return later(d, ms)
  }

  const onPhase = (ctx: Context<SenderScoreState>, rep: Reputation, phase: DelayedPhase): Answer => {
    const ms = delayOf(rep)
    if (phase === o.blockPhase && blocked(rep)) {
      verdict(ctx, rep, phase, 'disconnect', ms)
      return later(disconnect(550, BLOCK_TEXT), ms)
    }
    return later(proceed(), ms)
  }

  // Registered phases: connect always (the verdict); the others only when an
  // answer there can differ from an immediate proceed.
  const phases: Record<string, (ctx: Context<SenderScoreState>) => Answer> = {}
  for (const phase of DELAYED_PHASES) {
    if (phase === 'connect') {
      phases.connect = (ctx) => {
        const r = reputationOf(ctx)
        return isPromise<Reputation>(r) ? r.then((rep) => onConnect(ctx, rep)) : onConnect(ctx, r)
      }
    } else if (slowOn || (blockOn && phase === o.blockPhase)) {
      phases[phase] = (ctx) => {
        const r = reputationOf(ctx)
        return isPromise<Reputation>(r) ? r.then((rep) => onPhase(ctx, rep, phase)) : onPhase(ctx, r, phase)
      }
    }
  }

  // -scoreHeader: the header goes before the first line of each message (the
  // runtime makes a new MessageContext per message), or before the "." of an
  // empty one, as the Go filter writes it before the first data-line it sees.
  const started = new WeakSet<object>()
  const header = (ctx: MessageContext<SenderScoreState>, out: LineSink): void => {
    const rep = ctx.state.reputation
    if (rep && rep.score >= 0) out.write(`X-SenderScore: ${rep.score}`)
  }

  return {
    name: 'senderscore',
    newSession: () => ({}),
    reports: {
      // Start the lookup as early as smtpd tells us the address; connect waits for it.
      'link-connect': (ctx) => {
        ctx.state.reputation = undefined
        ctx.state.pending = undefined
        const r = reputationOf(ctx)
        // A lookup failure is already a Reputation; this only keeps Node quiet.
        if (isPromise(r)) r.catch(() => {})
      },
    },
    phases: phases as PhaseHandlers<SenderScoreState>,
    ...(o.scoreHeader
      ? {
          data: {
            mode: 'stream' as const,
            line: (ctx: MessageContext<SenderScoreState>, line: string, out: LineSink) => {
              if (!started.has(ctx)) {
                started.add(ctx)
                header(ctx, out)
              }
              out.write(line)
            },
            end: (ctx: MessageContext<SenderScoreState>, out: LineSink) => {
              if (!started.has(ctx)) header(ctx, out)
            },
          },
        }
      : {}),
    onFailure: 'proceed',
    // Never cut a deliberate delay short: the lookup's own timeout plus the longest delay.
    answerTimeoutMs: o.maxDelayMs + 70_000,
  }
}

export const FLAGS: readonly FlagSpec[] = [
  { name: 'blockBelow', kind: 'int', arg: 'score', default: -1, help: 'disconnect (550) clients scoring below this at the block phase' },
  {
    name: 'blockPhase',
    kind: 'string',
    arg: 'phase',
    default: 'connect',
    help: `phase at which -blockBelow disconnects: ${BLOCK_PHASES.join(', ')}`,
    check: (v) => ((BLOCK_PHASES as readonly string[]).includes(String(v)) ? undefined : `one of ${BLOCK_PHASES.join(', ')}`),
  },
  { name: 'junkBelow', kind: 'int', arg: 'score', default: -1, help: 'junk (X-Spam: yes) sessions of clients scoring below this' },
  { name: 'slowFactor', kind: 'int', arg: 'ms', default: -1, help: 'delay each answer by ms * (100 - score) / 100' },
  { name: 'scoreHeader', kind: 'bool', help: 'add an X-SenderScore header with the score, when known' },
  { name: 'allowlist', kind: 'string', arg: 'file', aliases: ['whitelist'], help: 'IPs and CIDR networks (one per line, # comments) that score 100' },
  { name: 'testMode', kind: 'bool', help: 'no DNS: the client a.b.c.d scores d, category c; d = 255 means no data' },
  {
    name: 'maxDelay',
    kind: 'int',
    arg: 'ms',
    default: 30_000,
    help: 'longest delay of one answer',
    check: (v) => (Number(v) >= 0 && Number(v) < MAX_DELAY_LIMIT_MS ? undefined : `0 to ${MAX_DELAY_LIMIT_MS - 1} (smtpd's session timeout is 300 s)`),
  },
  nameserverFlag('resolver to ask (repeatable; default: the system resolver of /etc/resolv.conf)'),
  {
    name: 'dnsTimeout',
    kind: 'int',
    arg: 'ms',
    default: 2000,
    help: 'give up on a lookup after this long (score unknown)',
    check: (v) => (Number(v) >= 1 && Number(v) <= 60_000 ? undefined : '1 to 60000'),
  },
  {
    name: 'maxInFlight',
    kind: 'int',
    arg: 'n',
    default: 256,
    help: 'most queries outstanding at the resolver at once',
    check: (v) => (Number(v) >= 1 ? undefined : 'at least 1'),
  },
  {
    name: 'cacheSize',
    kind: 'int',
    arg: 'n',
    default: 10_000,
    help: 'answers (and NXDOMAINs) kept for their TTL',
    check: (v) => (Number(v) >= 1 ? undefined : 'at least 1'),
  },
]

/** Builds the filter from parsed flags (the program's `build`). */
export function buildFromFlags(values: FlagValues, log: Logger): FilterDefinition<SenderScoreState> {
  const file = str(values, 'allowlist')
  let allowlist: CidrSet | undefined
  if (file !== undefined && file !== '') {
    try {
      allowlist = loadAddressList(file)
    } catch (err) {
      throw new StartupError(`-allowlist: ${(err as Error).message}`)
    }
    log.info({ file, entries: allowlist.size }, 'allowlist loaded')
  }
  const testMode = bool(values, 'testMode')
  const servers = list(values, 'nameserver')
  const resolver = testMode
    ? undefined
    : createResolver({
        servers: servers.length > 0 ? servers : undefined,
        timeoutMs: num(values, 'dnsTimeout') ?? 2000,
        maxInFlight: num(values, 'maxInFlight') ?? 256,
        cacheSize: num(values, 'cacheSize') ?? 10_000,
      })
  return senderscoreFilter({
    blockBelow: num(values, 'blockBelow') ?? -1,
    blockPhase: (str(values, 'blockPhase') ?? 'connect') as BlockPhase,
    junkBelow: num(values, 'junkBelow') ?? -1,
    slowFactor: num(values, 'slowFactor') ?? -1,
    scoreHeader: bool(values, 'scoreHeader'),
    allowlist,
    testMode,
    maxDelayMs: num(values, 'maxDelay') ?? 30_000,
    resolver,
    log,
  })
}

export const program: ProgramSpec = {
  program: 'filter-senderscore',
  flags: FLAGS,
  build: (values, _rest, log) => buildFromFlags(values, log),
}
