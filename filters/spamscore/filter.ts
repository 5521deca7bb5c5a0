/**
 * filter-spamscore: a content spam scorer in the filter process (lib/spam: Bayes + named
 * rules), in place of rspamd + Redis + filter-rspamd or SpamAssassin + spamd, with the
 * statistics in a file (or Redis) that `smtpd-filters learn` fills, from Dovecot's
 * imapsieve or a cron over Maildirs.
 *
 * Per message (rspamd's actions and default thresholds):
 * - score >= -rejectAt (15), or the GTUBE test string: `550` at commit;
 * - score >= -subjectAt (off): the Subject is rewritten, and the headers below;
 * - score >= -junkAt (6): the verdict headers with `X-Spam: yes` / `X-Spam-Flag: YES`, which
 *   smtpd's `maildir junk` (mail.maildir -j) files in the Junk folder;
 * - score >= -greylistAt (4): `451` the first time the message is seen, passed on a retry
 *   after -greylistDelay seconds (the greylist lives in the store);
 * - below: passed, with SpamAssassin's `X-Spam-Status: No, score=...` in that dialect.
 * Every incoming X-Spam* field is removed first (a sender must not forge our verdict), except
 * smtpd's own first-line `X-Spam: Yes` (an earlier filter junked the session).
 *
 * Content decisions are answered at commit, never junk there (smtpd 6.8 dies of a junk at
 * commit): "junk" is done with the header. The message is held by the runtime (in memory up
 * to 1 MB, then an unlinked 0600 temp file under -tmpdir); at the end the filter reads the first
 * -maxBytes of it back to scan (no second copy) and passes the rest through unscanned.
 *
 * Authenticated and local (unix socket) sessions are the site's own users sending: they are
 * not scored unless -scoreAuth (then without the session rules, never greylisted, never
 * autolearned), and their X-Spam* fields are removed all the same.
 *
 * On an internal error (the store unreachable, a scan that fails or exceeds its time) the
 * message passes unscored (-onError proceed, the default) or gets a 451 (-onError tempfail);
 * incoming X-Spam* fields are removed either way.
 */

import { accessSync, constants as fsConstants } from 'node:fs'
import { dirname, isAbsolute } from 'node:path'
import { classifyRdns } from '../../lib/dynrdns.js'
import { defineFilter, proceed, reject, type Decision, type FilterDefinition, type HeaderField, type MessageContext, type MessageEdit, type SessionInfo } from '../../lib/filter.js'
import { bool, num, str, UsageError, type FlagSpec, type FlagValues } from '../../lib/flags.js'
import type { Logger } from '../../lib/log.js'
import { StartupError, type ProgramSpec } from '../../lib/main.js'
import { errText, withTimeout } from '../../lib/message.js'
import { BAYES_DEFAULTS, bayesReady } from '../../lib/spam/bayes.js'
import { messageDigest } from '../../lib/spam/digest.js'
import { GREYLIST_DEFAULTS, greylistKey } from '../../lib/spam/greylist.js'
import { isSpamFieldName, renderHeaders, smtpdJunked, spamFieldsToRemove, type Dialect } from '../../lib/spam/headers.js'
import { autolearnClass, DEFAULT_MAX_BYTES, DEFAULT_THRESHOLDS, learnItem, prepare, scorePrepared, type ScoreOptions, type Thresholds } from '../../lib/spam/score.js'
import type { ScanResult, SessionFacts, SpamClass } from '../../lib/spam/types.js'
import { DEFAULT_STORE, isRedisSpec, openStore, StoreError, type LearnItem, type Store } from '../../lib/store/index.js'

// ---- configuration ---------------------------------------------------------------------

export type HeaderDialect = Dialect | 'both'
export type ErrorPolicy = 'proceed' | 'tempfail'
export type GreylistKeyMode = 'message' | 'triplet'

export interface SpamscoreConfig {
  /** -store: a path, redis://host:port/db, or memory: */
  readonly store: string
  readonly dialect: HeaderDialect
  readonly thresholds: Thresholds
  /** rspamd's `subject` setting; %s is the original Subject */
  readonly subjectTemplate: string
  readonly maxBytes: number
  readonly onError: ErrorPolicy
  readonly greylist: { readonly minDelay: number; readonly window: number; readonly key: GreylistKeyMode }
  /** statistics of the (single) recipient, when it has learned enough */
  readonly perUser: boolean
  /** statistics of this user for every message */
  readonly user?: string
  readonly autolearn: boolean
  /** score authenticated and local sessions too */
  readonly scoreAuth: boolean
}

export const DEFAULT_CONFIG: SpamscoreConfig = {
  store: DEFAULT_STORE,
  dialect: 'both',
  thresholds: { ...DEFAULT_THRESHOLDS },
  subjectTemplate: '***SPAM*** %s',
  maxBytes: DEFAULT_MAX_BYTES,
  onError: 'proceed',
  greylist: { ...GREYLIST_DEFAULTS, key: 'message' },
  perUser: false,
  autolearn: false,
  scoreAuth: false,
}

/** A scan (store lookups included) that takes longer than this is an internal error. */
export const SCAN_TIMEOUT_MS = 30_000

/** Answer texts (smtpd sends them to the client after the code). */
export const TEXT = {
  reject: '5.7.1 Spam message rejected',
  gtube: '5.7.1 Spam message rejected (GTUBE test string)',
  greylist: '4.7.1 Greylisted, please try again later',
  error: '4.3.0 Temporary failure while scanning the message, please try again later',
} as const

// ---- the store, opened lazily (Redis may start after smtpd) ------------------------------

/** Where the filter gets its store; a Redis that is away is retried, at most every 5 s. */
export interface StoreSource {
  get(): Promise<Store>
}

export class StoreRef implements StoreSource {
  private store: Store | undefined
  private opening: Promise<Store> | undefined
  private failedAt = 0
  private lastError: unknown
  private down = false

  constructor(
    readonly spec: string,
    private readonly log: Logger,
    private readonly retryMs = 5000,
    private readonly open: (spec: string) => Promise<Store> = (s) => openStore(s),
  ) {}

  get(): Promise<Store> {
    if (this.store) return Promise.resolve(this.store)
    if (this.opening) return this.opening
    if (this.failedAt && Date.now() - this.failedAt < this.retryMs) return Promise.reject(this.lastError)
    this.opening = this.open(this.spec).then(
      (s) => {
        this.store = s
        this.opening = undefined
        if (this.down) this.log.info({ store: s.location }, 'store reachable again')
        this.down = false
        return s
      },
      (err: unknown) => {
        this.opening = undefined
        this.failedAt = Date.now()
        this.lastError = err
        if (!this.down) this.log.error({ store: this.spec, err: errText(err) }, 'store unreachable: messages pass unscored (or 451 with -onError tempfail) until it is back')
        this.down = true
        throw err
      },
    )
    return this.opening
  }

  async close(): Promise<void> {
    await this.store?.close()
  }
}

// ---- per-session and per-message state ---------------------------------------------------

export interface SessionState {
  /** link-greeting: the name smtpd greets with (for "HELO claims to be us") */
  greeting?: string
  /** the answer at commit for the message just scanned */
  verdict?: Decision
}

/** What a scan decided, for tests and the log line. */
export interface Outcome {
  readonly result?: ScanResult
  readonly decision: Decision
  readonly headers: readonly string[]
  readonly skipped?: string
  readonly error?: string
  readonly greylisted?: boolean
  readonly user?: string
  /** the message was longer than -maxBytes: its first lines were scanned */
  readonly truncated?: boolean
}

// ---- session facts ---------------------------------------------------------------------------

/** The engine's view of the smtpd session (link-connect, link-identify, link-auth, tx-*). */
export function sessionFacts(s: SessionInfo, greeting: string | undefined, now: number): SessionFacts {
  const f: SessionFacts = { time: now, rcptTo: [...s.rcpts] }
  if (s.mailFrom !== undefined) f.mailFrom = s.mailFrom
  if (s.address !== undefined) f.ip = s.address
  if (s.rdns !== undefined) {
    f.rdns = s.rdns.toLowerCase().replace(/\.$/, '')
    f.rdnsDynamic = classifyRdns(f.rdns, s.address).dynamic
  } else if (s.src !== undefined && s.address !== undefined && s.fcrdns !== 'error') {
    // smtpd said <unknown>: no PTR (a temporary DNS failure says fcrdns "error" instead)
    f.rdns = null
  }
  if (s.fcrdns === 'pass' || s.fcrdns === 'fail' || s.fcrdns === 'error') f.fcrdns = s.fcrdns
  // lower case, as `smtpd-filters learn` recovers it from smtpd's Received field
  if (s.helo) f.helo = s.helo.toLowerCase()
  if (s.authUser !== undefined || s.local) f.authenticated = true
  const local: string[] = []
  if (greeting) local.push(greeting)
  const dest = s.dest?.replace(/^\[?([^\]]*?)\]?:\d+$/, '$1')
  if (dest && dest !== s.dest) local.push(dest)
  if (local.length) f.localNames = local
  return f
}

// ---- autolearn, batched ---------------------------------------------------------------------

/**
 * Autolearned messages are written in batches (one locked rewrite of a file store per batch,
 * not per message), at most every `delayMs` or every `max` messages, one batch at a time.
 */
export class Autolearner {
  private readonly pending = new Map<string, { cls: SpamClass; user?: string; items: LearnItem[] }>()
  private count = 0
  private timer: NodeJS.Timeout | undefined
  private chain: Promise<void> = Promise.resolve()

  constructor(
    private readonly store: StoreSource,
    private readonly log: Logger,
    private readonly delayMs = 2000,
    private readonly max = 100,
  ) {}

  add(cls: SpamClass, user: string | undefined, item: LearnItem): void {
    const key = `${cls}\0${user ?? ''}`
    let g = this.pending.get(key)
    if (!g) {
      g = { cls, user, items: [] }
      this.pending.set(key, g)
    }
    g.items.push(item)
    if (++this.count >= this.max) void this.flush()
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.delayMs)
      this.timer.unref()
    }
  }

  /** Writes what is pending; resolves when it is written (or failed, logged). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    const groups = [...this.pending.values()]
    this.pending.clear()
    this.count = 0
    this.chain = this.chain.then(async () => {
      for (const g of groups) {
        try {
          const store = await this.store.get()
          const out = await store.learn(g.cls, g.items, g.user)
          const learned = out.filter((o) => o === 'learned' || o === 'moved').length
          this.log.info({ class: g.cls, user: g.user, messages: g.items.length, learned }, 'autolearned')
        } catch (err) {
          this.log.warn({ class: g.cls, messages: g.items.length, err: errText(err) }, 'autolearn failed: messages not learned')
        }
      }
    })
    return this.chain
  }
}

// ---- the filter ------------------------------------------------------------------------------

export interface SpamscoreDeps {
  readonly store: StoreSource
  /** process logger: per-message lines carry the session id themselves */
  readonly log: Logger
  /** ms clock (greylisting, the scan's reference time); default Date.now */
  readonly now?: () => number
  /** called with every message's outcome (tests, benchmarks) */
  readonly onOutcome?: (o: Outcome, ctx: MessageContext<SessionState>) => void
}

/**
 * The Subject rewritten with rspamd's template: %s is the original value (its folding kept);
 * a template without %s replaces it.
 */
export function rewriteSubjectField(name: string, lines: readonly string[], template: string): string[] {
  const i = template.indexOf('%s')
  if (i < 0) return [`${name}: ${template}`]
  const first = lines[0]!
  const out = [`${name}: ${template.slice(0, i)}${first.slice(first.indexOf(':') + 1).replace(/^[ \t]+/, '')}`, ...lines.slice(1)]
  out[out.length - 1] += template.slice(i + 2)
  return out
}

/** A header field as lib/spam/headers.ts sees it: name and unfolded value. */
function fieldRef(f: HeaderField): { name: string; value: string } {
  return { name: f.name, value: f.lines.join('').slice(f.lines[0]!.indexOf(':') + 1) }
}

/**
 * Removes the sender's X-Spam* fields (lib/spam/headers.ts spamFieldsToRemove: those from
 * smtpd's Received field on — above it only smtpd and the filters before us write) and
 * rewrites the Subject. `fields` are the message's header fields as the runtime collected
 * them (up to 1 MB of header): any X-Spam* field beyond them is the sender's.
 */
function headerEdit(fields: readonly HeaderField[], subject: string | undefined): (f: HeaderField, index: number) => readonly string[] | null | undefined {
  const remove = new Set(spamFieldsToRemove(fields.map(fieldRef)))
  let rewritten = false
  return (f, index) => {
    if (isSpamFieldName(f.name)) return index >= fields.length || remove.has(index) ? null : undefined
    if (subject !== undefined && !rewritten && f.lname === 'subject') {
      rewritten = true
      return rewriteSubjectField(f.name, f.lines, subject)
    }
    return undefined
  }
}

export function spamscoreFilter(cfg: SpamscoreConfig, deps: SpamscoreDeps): FilterDefinition<SessionState> {
  const { log } = deps
  const now = deps.now ?? Date.now
  const scoreOpt: ScoreOptions = { thresholds: cfg.thresholds, maxBytes: cfg.maxBytes }
  const autolearner = cfg.autolearn ? new Autolearner(deps.store, log) : undefined
  let notReadyWarned = 0

  const scan = async (ctx: MessageContext<SessionState>): Promise<Outcome> => {
    const s = ctx.session
    const t = now()
    const facts = sessionFacts(s, ctx.state.greeting, t)
    // the lines that fit in -maxBytes, from the runtime's copy of the held message
    const held = await ctx.heldMessage(cfg.maxBytes)
    const buf = held.bytes.length > 0 ? held.bytes : Buffer.from('\n') // no line: one empty line, as ever
    const p = prepare(buf, facts, scoreOpt)
    const store = await deps.store.get()
    const rcpts = s.rcpts.map((r) => r.toLowerCase())
    let user = cfg.user ?? (cfg.perUser && rcpts.length === 1 ? rcpts[0] : undefined)
    let lookup = await store.lookup(p.tokens, user)
    if (user !== undefined && !bayesReady(lookup.nspam, lookup.nham)) {
      // This user's statistics cannot vote yet: the site's can.
      user = undefined
      lookup = await store.lookup(p.tokens)
    }
    if (!bayesReady(lookup.nspam, lookup.nham) && t - notReadyWarned > 3600_000) {
      notReadyWarned = t
      log.warn(
        { store: store.location, spam: lookup.nspam, ham: lookup.nham, needed: BAYES_DEFAULTS.minSpam },
        `Bayes does not vote yet (${lookup.nspam} spam and ${lookup.nham} ham learned, ${BAYES_DEFAULTS.minSpam} of each needed): scoring with the rules alone; teach it with smtpd-filters learn`,
      )
    }
    const r = scorePrepared(p, lookup, scoreOpt)
    const gtube = p.gtube

    let decision: Decision = proceed()
    let greylisted = false
    if (r.action === 'reject') decision = reject(550, gtube ? TEXT.gtube : TEXT.reject)
    else if (r.action === 'greylist' && !facts.authenticated) {
      const key =
        cfg.greylist.key === 'message'
          ? greylistKey({ digest: messageDigest(buf), mailFrom: s.mailFrom, rcptTo: rcpts }, 'message')
          : facts.ip !== undefined
            ? greylistKey({ ip: facts.ip, mailFrom: s.mailFrom, rcptTo: rcpts }, 'triplet')
            : undefined
      if (key !== undefined) {
        const g = await store.greylist(key, Math.floor(t / 1000), cfg.greylist)
        if (!g.pass) {
          greylisted = true
          decision = reject(451, TEXT.greylist)
        }
      }
    }

    let headers: string[] = []
    if (decision.kind === 'proceed') {
      headers = renderHeaders(r, cfg.dialect, { reject: cfg.thresholds.reject })
      // smtpd's own `X-Spam: Yes` is already in the message (above its Received field): not twice.
      if (smtpdJunked(ctx.headers.map(fieldRef))) headers = headers.filter((l) => !/^X-Spam: /i.test(l))
    }

    if (autolearner && !facts.authenticated && !greylisted) {
      const cls = autolearnClass(r, lookup)
      if (cls) autolearner.add(cls, user, learnItem(buf, { maxBytes: cfg.maxBytes, session: facts }))
    }
    return { result: r, decision, headers, greylisted, user, truncated: held.truncated }
  }

  const end = async (ctx: MessageContext<SessionState>): Promise<MessageEdit> => {
    const s = ctx.session
    const started = process.hrtime.bigint()
    const at = { session: s.id, bytes: ctx.bytes }
    let outcome: Outcome
    if (!cfg.scoreAuth && (s.authUser !== undefined || s.local)) {
      outcome = { decision: proceed(), headers: [], skipped: s.local ? 'local' : 'authenticated' }
      log.debug({ ...at, reason: outcome.skipped }, 'not scored')
    } else {
      try {
        outcome = await withTimeout(scan(ctx), SCAN_TIMEOUT_MS)
      } catch (err) {
        const e = errText(err)
        outcome = { decision: cfg.onError === 'tempfail' ? reject(451, TEXT.error) : proceed(), headers: [], error: e }
        log.error({ ...at, err: e, answer: cfg.onError === 'tempfail' ? 451 : 'proceed' }, cfg.onError === 'tempfail' ? 'scan failed: message refused with 451' : 'scan failed: message passed unscored')
      }
      const r = outcome.result
      if (r) {
        const ms = Number(process.hrtime.bigint() - started) / 1e6
        log.info(
          {
            ...at,
            score: r.score,
            action: outcome.greylisted ? 'greylist (451)' : r.action === 'greylist' ? 'greylist (passed)' : r.action,
            bayes: r.bayes ? Number(r.bayes.probability.toFixed(4)) : 'not ready',
            symbols: r.symbols.map((x) => x.name).join(','),
            ...(outcome.user ? { user: outcome.user } : {}),
            ...(outcome.truncated ? { scanned: cfg.maxBytes } : {}),
            ms: Number(ms.toFixed(2)),
          },
          'scanned',
        )
      }
    }
    ctx.state.verdict = outcome.decision.kind === 'proceed' ? undefined : outcome.decision
    deps.onOutcome?.(outcome, ctx)
    const rewrite = outcome.result !== undefined && outcome.decision.kind === 'proceed' && outcome.result.action === 'rewrite subject'
    const prepend = [...outcome.headers]
    // no Subject to rewrite: one is added
    if (rewrite && !ctx.headers.some((h) => h.lname === 'subject')) prepend.push(rewriteSubjectField('Subject', ['Subject: '], cfg.subjectTemplate)[0]!.trimEnd())
    const edit: MessageEdit = { header: headerEdit(ctx.headers, rewrite ? cfg.subjectTemplate : undefined) }
    return prepend.length ? { ...edit, prepend } : edit
  }

  return defineFilter<SessionState>({
    name: 'spamscore',
    needs: ['rdns', 'fcrdns', 'src', 'dest', 'helo', 'auth', 'mail-from', 'rcpts'],
    newSession: () => ({}),
    reports: {
      'link-greeting': (ctx, r) => {
        ctx.state.greeting = r.hostname.toLowerCase()
      },
    },
    phases: {
      commit: (ctx) => {
        const v = ctx.state.verdict
        ctx.state.verdict = undefined
        return v ?? proceed()
      },
    },
    data: {
      mode: 'hold',
      end,
    },
    // Our own errors are handled in end(); this is for the runtime's (the spool).
    onFailure: cfg.onError === 'tempfail' ? 'tempfail' : 'proceed',
  })
}

// ---- flags and startup ------------------------------------------------------------------------

const DIALECTS: Record<string, HeaderDialect> = { spamassassin: 'spamassassin', sa: 'spamassassin', rspamd: 'rspamd', both: 'both' }

/** A score or `off`. */
function scoreOrOff(v: string | number | boolean): string | undefined {
  const s = String(v)
  return s === 'off' || (s.trim() !== '' && Number.isFinite(Number(s))) ? undefined : 'a score or "off"'
}

export const FLAGS: readonly FlagSpec[] = [
  { name: 'store', kind: 'string', arg: 'store', default: DEFAULT_STORE, help: 'statistics and greylist: a file, redis://[:password@]host[:port][/db], unix:///path.sock?db=N, or memory: (this process only); the same value as smtpd-filters learn --store' },
  {
    name: 'headers',
    kind: 'string',
    arg: 'dialect',
    default: 'both',
    help: 'verdict header fields: spamassassin (X-Spam-Flag, X-Spam-Level, X-Spam-Status), rspamd (filter-rspamd\'s X-Spam, X-Spam-Score, X-Spam-Status) or both',
    check: (v) => (String(v) in DIALECTS ? undefined : 'spamassassin, rspamd or both'),
  },
  { name: 'greylistAt', kind: 'string', arg: 'score', default: '4', help: 'from this score (and below -junkAt): 451 the first time a message is seen, passed on a retry; off disables', check: scoreOrOff },
  { name: 'junkAt', kind: 'string', arg: 'score', default: '6', help: 'from this score: the spam headers (X-Spam: yes, X-Spam-Flag: YES), which smtpd\'s maildir junk files in Junk; the "required" score', check: (v) => (String(v) !== 'off' && scoreOrOff(v) === undefined ? undefined : 'a score') },
  { name: 'rejectAt', kind: 'string', arg: 'score', default: '15', help: 'from this score: 550 at commit; off disables (GTUBE is rejected all the same)', check: scoreOrOff },
  { name: 'subjectAt', kind: 'string', arg: 'score', default: 'off', help: 'from this score: rewrite the Subject with -subject; off disables', check: scoreOrOff },
  { name: 'subject', kind: 'string', arg: 'template', default: '***SPAM*** %s', help: 'the rewritten Subject; %s is the original one' },
  { name: 'maxBytes', kind: 'int', arg: 'bytes', default: DEFAULT_MAX_BYTES, help: 'scan at most the first this many bytes of a message; the rest passes unscanned', check: (v) => (Number(v) >= 1024 ? undefined : 'at least 1024') },
  {
    name: 'onError',
    kind: 'string',
    arg: 'policy',
    default: 'proceed',
    help: 'when the store or the scan fails: proceed (pass the message unscored) or tempfail (451 at commit, the client retries)',
    check: (v) => (v === 'proceed' || v === 'tempfail' ? undefined : 'proceed or tempfail'),
  },
  { name: 'greylistDelay', kind: 'int', arg: 'seconds', default: GREYLIST_DEFAULTS.minDelay, help: 'a retry passes the greylist only after this long', check: (v) => (Number(v) >= 0 ? undefined : 'not negative') },
  { name: 'greylistWindow', kind: 'int', arg: 'seconds', default: GREYLIST_DEFAULTS.window, help: 'a retry later than this after the first attempt is greylisted again', check: (v) => (Number(v) > 0 ? undefined : 'positive') },
  {
    name: 'greylistKey',
    kind: 'string',
    arg: 'key',
    default: 'message',
    help: 'what a retry must repeat: message (the message digest, sender and recipients; any client address of a sender\'s pool) or triplet (client /24 or /64, sender, recipients)',
    check: (v) => (v === 'message' || v === 'triplet' ? undefined : 'message or triplet'),
  },
  { name: 'perUser', kind: 'bool', help: 'score with the statistics of the recipient (a message with one recipient), learned with smtpd-filters learn --user ADDRESS; the site\'s while that user has not learned 200 spam and 200 ham' },
  { name: 'user', kind: 'string', arg: 'name', help: 'score every message with the statistics of this user (learn --user name)' },
  { name: 'autolearn', kind: 'bool', help: 'learn on strong agreement only: spam at score >= 12 with >= 3 points from rules, ham at <= -1 without any rule; never more than 4x one class than the other (+50)' },
  { name: 'scoreAuth', kind: 'bool', help: 'score authenticated and local (unix socket) sessions too (without the session rules, never greylisted nor autolearned); default: they pass unscored' },
]

function threshold(values: FlagValues, name: string): number | null {
  const v = str(values, name)!
  return v === 'off' ? null : Number(v)
}

export function configFromFlags(values: FlagValues): SpamscoreConfig {
  const junkAt = threshold(values, 'junkAt')
  if (junkAt === null) throw new UsageError('-junkAt cannot be off')
  const thresholds: Thresholds = {
    greylist: threshold(values, 'greylistAt'),
    addHeader: junkAt,
    reject: threshold(values, 'rejectAt'),
    rewriteSubject: threshold(values, 'subjectAt'),
  }
  const template = str(values, 'subject') ?? DEFAULT_CONFIG.subjectTemplate
  if (/[\r\n]/.test(template)) throw new UsageError('-subject: no line break')
  const user = str(values, 'user')
  if (user !== undefined && bool(values, 'perUser')) throw new UsageError('-user and -perUser exclude each other')
  if (user === '') throw new UsageError('-user: empty')
  const store = str(values, 'store') ?? DEFAULT_STORE
  if (store === '') throw new UsageError('-store: empty')
  // smtpd starts filters in its own working directory, not the admin's: a relative path
  // would name another file than `smtpd-filters learn --store` with the same value.
  if (store !== 'memory:' && !isRedisSpec(store) && !/^[a-z][a-z0-9+.-]*:\/\//i.test(store) && !isAbsolute(store)) {
    throw new UsageError(`-store ${store}: give an absolute path (smtpd runs filters in its own directory)`)
  }
  return {
    store,
    dialect: DIALECTS[str(values, 'headers') ?? 'both']!,
    thresholds,
    subjectTemplate: template,
    maxBytes: num(values, 'maxBytes') ?? DEFAULT_MAX_BYTES,
    onError: (str(values, 'onError') ?? 'proceed') as ErrorPolicy,
    greylist: {
      minDelay: num(values, 'greylistDelay') ?? GREYLIST_DEFAULTS.minDelay,
      window: num(values, 'greylistWindow') ?? GREYLIST_DEFAULTS.window,
      key: (str(values, 'greylistKey') ?? 'message') as GreylistKeyMode,
    },
    perUser: bool(values, 'perUser'),
    ...(user !== undefined ? { user: user.toLowerCase() } : {}),
    autolearn: bool(values, 'autolearn'),
    scoreAuth: bool(values, 'scoreAuth'),
  }
}

/** Thresholds in an order where some action can never happen: worth a warning, not an exit. */
export function thresholdWarnings(t: Thresholds): string[] {
  const out: string[] = []
  if (t.greylist !== null && t.greylist >= t.addHeader) out.push(`-greylistAt ${t.greylist} is not below -junkAt ${t.addHeader}: nothing is greylisted`)
  if (t.reject !== null && t.reject <= t.addHeader) out.push(`-rejectAt ${t.reject} is not above -junkAt ${t.addHeader}: nothing is junked, spam is rejected`)
  if (t.rewriteSubject !== null && t.reject !== null && t.rewriteSubject >= t.reject) out.push(`-subjectAt ${t.rewriteSubject} is not below -rejectAt ${t.reject}: no Subject is rewritten`)
  if (t.rewriteSubject !== null && t.rewriteSubject < t.addHeader) out.push(`-subjectAt ${t.rewriteSubject} is below -junkAt ${t.addHeader}: a rewritten message is marked as spam (and junked) too`)
  return out
}

/** Why a directory (or the nearest existing parent, which would have to create it) is not writable, or undefined. */
export function unwritableDir(dir: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    try {
      accessSync(d, fsConstants.W_OK | fsConstants.X_OK)
      return undefined
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' && d !== dirname(d)) continue
      return code === 'ENOENT' ? 'missing' : `${code ?? errText(err)}${d === dir ? '' : ` on ${d}`}`
    }
  }
}

async function build(values: FlagValues, _rest: string[], log: Logger): Promise<FilterDefinition<SessionState>> {
  const cfg = configFromFlags(values)
  for (const w of thresholdWarnings(cfg.thresholds)) log.warn(w)
  const ref = new StoreRef(cfg.store, log)
  // At startup an admin is watching: a bad URL, an unreadable or corrupt file ends here.
  // A Redis that is not up yet is not fatal (at boot it may start after smtpd).
  try {
    const store = await ref.get()
    const st = await store.stats(cfg.user)
    const ready = bayesReady(st.nspam, st.nham)
    log.info(
      { store: store.location, kind: store.kind, spam: st.nspam, ham: st.nham, tokens: st.tokens, bayes: ready ? 'votes' : 'not ready' },
      ready ? 'ready' : `ready; Bayes does not vote until ${BAYES_DEFAULTS.minSpam} spam and ${BAYES_DEFAULTS.minHam} ham are learned (smtpd-filters learn)`,
    )
  } catch (err) {
    if (err instanceof StoreError && err.code === 'ECONN') log.warn({ store: cfg.store, err: errText(err) }, 'store not reachable yet: retried for each message')
    else throw new StartupError(`store ${cfg.store}: ${errText(err)}`)
  }
  // The greylist is written beside a file store: say so now rather than at the first message.
  if (cfg.thresholds.greylist !== null && isAbsolute(cfg.store)) {
    const problem = unwritableDir(dirname(cfg.store))
    if (problem) log.warn({ dir: dirname(cfg.store), problem }, `the store's directory is not writable by this user (${problem}): greylisting fails and messages in the greylist band pass (or get -onError's answer)`)
  }
  return spamscoreFilter(cfg, { store: ref, log })
}

export const program: ProgramSpec = {
  program: 'filter-spamscore',
  synopsis: '[-autolearn] [-perUser | -user name] [-scoreAuth] [-store store] [-headers dialect] [-greylistAt score] [-junkAt score] [-rejectAt score] [-subjectAt score] [-maxBytes bytes] [-onError policy]',
  flags: FLAGS,
  build,
}
