/**
 * The runtime: reads smtpd's lines, keeps sessions, calls the filters'
 * handlers, and writes exactly one answer per request.
 *
 * Order and concurrency (protocol.md §4.4, §8.29): lines are dispatched
 * strictly in the order they arrive; reports update session state at once;
 * requests of different sessions are answered concurrently, in whatever
 * order their (possibly asynchronous) handlers finish. smtpd never sends a
 * session's next request before the previous answer; should it happen anyway
 * (a replayed stream), the later request waits for the earlier one.
 *
 * Several filters can run in one process, in chain order, as smtpd runs a
 * `filter "x" chain { … }`: for each phase the first decision other than
 * proceed wins, and data-lines flow through each filter in turn.
 */

import {
  ANSWER_LINE_LIMIT,
  READ_BUFFER_LIMIT,
  FILTER_PHASES,
  answersTruncated,
  ProtocolError,
  REPORT_EVENTS,
  checkDecision,
  disconnect,
  filterDataline,
  filterResult,
  parseLine,
  proceed,
  registerFilter,
  registerReady,
  registerReport,
  reject,
  splitConnectParam,
  stuff,
  type Decision,
  type FilterRequest,
  type Inbound,
  type Report,
  type ResultContext,
} from '../protocol/index.js'
import type { Answer, Context, DataHandler, FailurePolicy, FilterDefinition, Need, SessionInfo, SmtpdConfig } from './filter.js'
import type { Logger } from './log.js'
import { MessagePipeline, TimeoutError, errText, type PipelineHost, type StageSpec } from './message.js'
import { Session } from './session.js'
import type { SpoolOptions } from './spool.js'
import type { ProtocolWriter } from './writer.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- handler state types vary per filter
type AnyDef = FilterDefinition<any>

/** Reports that keep each declared need current. */
const NEED_REPORTS: Record<Need, readonly string[]> = {
  rdns: ['link-connect'],
  fcrdns: ['link-connect'],
  src: ['link-connect'],
  dest: ['link-connect'],
  helo: ['link-identify'],
  tls: ['link-tls'],
  auth: ['link-auth'],
  msgid: ['tx-begin', 'tx-reset'],
  'mail-from': ['tx-begin', 'tx-mail', 'tx-reset'],
  rcpts: ['tx-begin', 'tx-rcpt', 'tx-reset'],
  headers: [],
}

/** A definition's data handler, counting the `headers` need as a pass-through stream. */
function dataHandler(def: AnyDef): DataHandler<unknown> | undefined {
  if (def.data) return def.data
  return def.needs?.includes('headers') ? { mode: 'stream' } : undefined
}

/**
 * The register lines for a set of filters, derived from their handler tables
 * and needs, each name once (a name registered twice is delivered twice),
 * in smtpd's own order, then register|ready.
 */
export function registrations(defs: readonly AnyDef[]): string[] {
  const reports = new Set<string>(['link-disconnect']) // to drop session state
  const phases = new Set<string>()
  for (const def of defs) {
    for (const e of Object.keys(def.reports ?? {})) reports.add(e)
    for (const n of def.needs ?? []) for (const e of NEED_REPORTS[n]) reports.add(e)
    for (const p of Object.keys(def.phases ?? {})) phases.add(p)
    if (dataHandler(def)) {
      phases.add('data-line')
      // A message held or half-sent must be dropped when the client vanishes mid-DATA.
      reports.add('tx-rollback')
      // A failed data handler with a tempfail policy answers at commit.
      if (def.onFailure === 'tempfail') phases.add('commit')
    }
  }
  return [
    ...REPORT_EVENTS.filter((e) => reports.has(e)).map((e) => registerReport('smtp-in', e)),
    ...FILTER_PHASES.filter((p) => phases.has(p)).map(registerFilter),
    registerReady(),
  ]
}

const TEMPFAIL_TEXT = '4.3.0 Temporary failure, please try again later'

/** The answer of a filter whose handler failed. */
export function failureDecision(policy: FailurePolicy | undefined, phase: string): Decision {
  if (policy !== 'tempfail') return proceed()
  switch (phase) {
    case 'connect':
      // reject at connect leaves the client without a banner (§4.1): disconnect.
      return disconnect(421, TEMPFAIL_TEXT)
    case 'quit':
    case 'rset':
    case 'noop':
    case 'help':
    case 'wiz':
    case 'starttls':
      return proceed()
    default:
      return reject(451, TEMPFAIL_TEXT)
  }
}

function isDecision(d: unknown): d is Decision {
  return typeof d === 'object' && d !== null && typeof (d as { kind?: unknown }).kind === 'string'
}

function isPromise<T>(x: unknown): x is Promise<T> {
  return typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function'
}

interface PhaseEntry {
  readonly index: number
  readonly fn: (...args: never[]) => Answer
}

/** Per filter, per session: the handler context (state created on first use). */
class FilterContext implements Context<unknown> {
  private stateValue: unknown
  private stateMade = false
  private logger: Logger | undefined

  constructor(
    readonly session: Session,
    private readonly def: AnyDef,
    private readonly runtime: Runtime,
  ) {}

  get state(): unknown {
    if (!this.stateMade) {
      this.stateMade = true
      this.stateValue = this.def.newSession?.(this.session)
    }
    return this.stateValue
  }

  get log(): Logger {
    this.logger ??= this.runtime.sessionLogger(this.session.id, this.def.name)
    return this.logger
  }

  get config(): SmtpdConfig {
    return this.runtime.config
  }
}

class SessionRecord {
  readonly contexts: (FilterContext | undefined)[]
  busy = false
  readonly waiting: FilterRequest[] = []
  message: MessagePipeline | undefined
  /** the token and version text of the request that started `message` (for Runtime.dataLineFast) */
  messageToken = ''
  messageVersion = ''
  /** filters whose data handling failed for the message now at commit */
  dataFailed: Set<number> | undefined
  lastSeen = Date.now()

  constructor(
    readonly info: Session,
    filters: number,
  ) {
    this.contexts = new Array<FilterContext | undefined>(filters)
  }
}

export interface RuntimeOptions {
  readonly filters: readonly AnyDef[]
  readonly writer: ProtocolWriter
  readonly log: Logger
  readonly spool?: SpoolOptions
  /** log the filter name on each line (several filters in one process) */
  readonly nameInLogs?: boolean
}

export class Runtime {
  private state: 'config' | 'running' = 'config'
  private readonly raw = new Map<string, string>()
  private readonly subsystems: string[] = []
  private smtpdConfig: SmtpdConfig = { subsystems: [], raw: new Map() }
  private resultCtx: ResultContext = { reportDecisionAllowed: false }
  private readonly sessions = new Map<string, SessionRecord>()
  private readonly phaseTable = new Map<string, PhaseEntry[]>()
  private readonly reportTable = new Map<string, { index: number; fn: (ctx: Context<unknown>, r: Report) => void }[]>()
  private readonly dataStages: { index: number; def: AnyDef; handler: DataHandler<unknown> }[] = []
  private readonly filters: readonly AnyDef[]
  private readonly writer: ProtocolWriter
  private readonly log: Logger
  private readonly spool: SpoolOptions
  private malformedBudget = { tokens: 10, refilled: Date.now(), dropped: 0 }
  private sweeper: NodeJS.Timeout | undefined

  constructor(opts: RuntimeOptions) {
    this.filters = opts.filters
    this.writer = opts.writer
    this.log = opts.log
    this.spool = opts.spool ?? {}
    this.nameInLogs = opts.nameInLogs ?? opts.filters.length > 1
    opts.filters.forEach((def, index) => {
      for (const [phase, fn] of Object.entries(def.phases ?? {})) {
        if (typeof fn !== 'function') continue
        const list = this.phaseTable.get(phase) ?? []
        list.push({ index, fn: fn as PhaseEntry['fn'] })
        this.phaseTable.set(phase, list)
      }
      for (const [event, fn] of Object.entries(def.reports ?? {})) {
        if (typeof fn !== 'function') continue
        const list = this.reportTable.get(event) ?? []
        list.push({ index, fn: fn as (ctx: Context<unknown>, r: Report) => void })
        this.reportTable.set(event, list)
      }
      const handler = dataHandler(def)
      // A stream handler without line or end handlers passes lines untouched: no stage
      // at all, so data-lines go back byte for byte as smtpd sent them (still stuffed).
      if (handler && (handler.mode === 'hold' || handler.line || handler.end)) this.dataStages.push({ index, def, handler })
    })
  }

  private readonly nameInLogs: boolean

  get config(): SmtpdConfig {
    return this.smtpdConfig
  }

  get sessionCount(): number {
    return this.sessions.size
  }

  sessionLogger(id: string, filter: string): Logger {
    return this.log.child(this.nameInLogs ? { filter, session: id } : { session: id })
  }

  /** One input line (latin1, without '\n'). Never throws. */
  line(line: string): void {
    try {
      if (this.dataLineFast(line)) return
    } catch (err) {
      this.log.error({ err: errText(err), stack: err instanceof Error ? err.stack : undefined }, 'internal error on input line')
      return
    }
    let m: Inbound
    try {
      m = parseLine(line)
    } catch (err) {
      this.malformed(`parse error: ${errText(err)}`, line)
      return
    }
    try {
      switch (m.type) {
        case 'config':
          this.onConfig(m.key, m.value)
          return
        case 'report':
          if (this.state === 'running') this.onReport(m)
          return
        case 'unknown-report':
          this.log.debug({ event: m.event, session: m.session }, 'unknown report event ignored')
          return
        case 'filter':
          if (this.state === 'running') this.onRequest(m)
          else this.malformed('filter request before config|ready', line)
          return
        case 'malformed':
          this.malformed(m.reason, line)
          return
      }
    } catch (err) {
      // A bug of ours must not end the process: log it, carry on.
      this.log.error({ err: errText(err), stack: err instanceof Error ? err.stack : undefined }, 'internal error on input line')
    }
  }

  /**
   * The data-lines of a message under way are nearly all of the input (a 4 KB message is ~85
   * of them among ~95 lines): one that continues the message of an idle session, with the
   * version and token of the request that started it, goes straight to the message, without
   * the FilterRequest, the field slices and the checks of parseLine — it passed those checks
   * when the message started, and the session id is a key of the session table only if it
   * passed them too. Anything else (the first line of a message, its ".", another version or
   * token, a busy session, a malformed line) returns false and takes the full parse, which
   * treats it exactly as before. Returns true when the line was handled.
   */
  private dataLineFast(line: string): boolean {
    // filter|VERSION|TIME|SUBSYSTEM|data-line|SESSION|TOKEN|PARAM
    if (!line.startsWith('filter|')) return false
    const p1 = line.indexOf('|', 7)
    const p2 = p1 < 0 ? -1 : line.indexOf('|', p1 + 1)
    const p3 = p2 < 0 ? -1 : line.indexOf('|', p2 + 1)
    if (p3 < 0 || !line.startsWith('data-line|', p3 + 1)) return false
    const p4 = p3 + 10
    const p5 = line.indexOf('|', p4 + 1)
    if (p5 < 0) return false
    const rec = this.sessions.get(line.slice(p4 + 1, p5))
    if (rec === undefined || rec.busy || rec.message === undefined) return false
    const token = rec.messageToken
    const version = rec.messageVersion
    const p6 = p5 + 1 + token.length
    if (line.charCodeAt(p6) !== 124 || !line.startsWith(token, p5 + 1)) return false
    if (p1 !== 7 + version.length || !line.startsWith(version, 7)) return false
    // the "." ends the message: the full path
    if (line.length === p6 + 2 && line.charCodeAt(p6 + 1) === 46) return false
    rec.lastSeen = Date.now()
    rec.message.push(line.slice(p6 + 1))
    return true
  }

  /** smtpd is gone (EOF on stdin): drop everything. */
  close(): void {
    for (const rec of this.sessions.values()) rec.message?.abort()
    this.sessions.clear()
    if (this.sweeper) clearInterval(this.sweeper)
  }

  private malformed(reason: string, line: string): void {
    // Rate-limited: garbage must not flood smtpd's log (each stderr line is a log entry).
    const b = this.malformedBudget
    const now = Date.now()
    if (now - b.refilled > 60_000) {
      if (b.dropped > 0) this.log.warn({ dropped: b.dropped }, 'more malformed input lines were ignored')
      b.tokens = 10
      b.dropped = 0
      b.refilled = now
    }
    if (b.tokens > 0) {
      b.tokens--
      this.log.warn({ reason, line: line.length > 120 ? line.slice(0, 120) + '…' : line }, 'malformed input line ignored')
    } else b.dropped++
  }

  private onConfig(key: string, value: string): void {
    if (this.state === 'running') {
      this.log.debug({ key }, 'config line after config|ready ignored')
      return
    }
    if (key !== 'ready') {
      if (key === 'subsystem') this.subsystems.push(value)
      this.raw.set(key, value)
      return
    }
    const timeout = Number(this.raw.get('smtp-session-timeout'))
    this.smtpdConfig = {
      smtpdVersion: this.raw.get('smtpd-version'),
      protocol: this.raw.get('protocol'),
      sessionTimeout: Number.isFinite(timeout) && timeout > 0 ? timeout : undefined,
      subsystems: [...this.subsystems],
      admd: this.raw.get('admd'),
      raw: new Map(this.raw),
    }
    // Only smtpd 7.6+ announces its protocol, and only 7.6+ knows the report decision.
    this.resultCtx = { reportDecisionAllowed: this.raw.has('protocol') }
    for (const def of this.filters) {
      try {
        def.onConfig?.(this.smtpdConfig)
      } catch (err) {
        this.log.error({ filter: def.name, err: errText(err) }, 'onConfig failed')
      }
    }
    for (const l of registrations(this.filters)) this.writer.line(l)
    this.writer.flush()
    this.state = 'running'
    this.sweeper = setInterval(() => this.sweep(), 10 * 60_000)
    this.sweeper.unref()
    this.log.debug({ smtpd: this.smtpdConfig.smtpdVersion, protocol: this.smtpdConfig.protocol }, 'registered')
  }

  /** Sessions smtpd never closed (it lost track, or we missed link-disconnect) must not pile up. */
  private sweep(): void {
    const limit = Date.now() - 6 * 3600_000
    for (const [id, rec] of this.sessions) {
      if (rec.lastSeen < limit && !rec.busy) {
        rec.message?.abort()
        this.sessions.delete(id)
      }
    }
  }

  private record(id: string, subsystem: string): SessionRecord {
    let rec = this.sessions.get(id)
    if (!rec) {
      rec = new SessionRecord(new Session(id, subsystem), this.filters.length)
      this.sessions.set(id, rec)
    }
    return rec
  }

  private context(rec: SessionRecord, index: number): FilterContext {
    let c = rec.contexts[index]
    if (!c) {
      c = new FilterContext(rec.info, this.filters[index]!, this)
      rec.contexts[index] = c
    }
    return c
  }

  private onReport(r: Report): void {
    let rec = this.sessions.get(r.session)
    if (!rec) {
      // Nothing to tell anyone about a session we never saw that is ending.
      if (r.event === 'link-disconnect') return
      rec = this.record(r.session, r.subsystem)
    }
    rec.lastSeen = Date.now()
    rec.info.apply(r)
    const handlers = this.reportTable.get(r.event)
    if (handlers) {
      for (const h of handlers) {
        try {
          h.fn(this.context(rec, h.index), r)
        } catch (err) {
          this.log.error({ filter: this.filters[h.index]!.name, event: r.event, session: r.session, err: errText(err) }, 'report handler failed')
        }
      }
    }
    if (r.event === 'tx-rollback') {
      rec.message?.abort()
      rec.message = undefined
    } else if (r.event === 'link-disconnect') {
      rec.message?.abort()
      this.sessions.delete(r.session)
    }
  }

  private onRequest(req: FilterRequest): void {
    const rec = this.record(req.session, req.subsystem)
    rec.lastSeen = Date.now()
    if (rec.busy) {
      rec.waiting.push(req)
      return
    }
    this.process(rec, req)
  }

  private process(rec: SessionRecord, req: FilterRequest): void {
    if (req.phase === 'data-line') this.dataLine(rec, req)
    else this.answer(rec, req)
  }

  private release(rec: SessionRecord): void {
    rec.busy = false
    while (!rec.busy && rec.waiting.length > 0) this.process(rec, rec.waiting.shift()!)
  }

  private dataLine(rec: SessionRecord, req: FilterRequest): void {
    if (req.param !== '.') {
      rec.message ??= this.newMessage(rec, req)
      rec.message.push(req.param)
      return
    }
    const message = rec.message ?? this.newMessage(rec, req)
    rec.message = undefined
    rec.busy = true
    void message.end().then((failed) => {
      rec.dataFailed = failed.size > 0 ? failed : undefined
      this.release(rec)
    })
  }

  private newMessage(rec: SessionRecord, req: FilterRequest): MessagePipeline {
    rec.dataFailed = undefined
    const { version, session, token } = req
    rec.messageToken = token
    rec.messageVersion = version.text
    const writer = this.writer
    // Two limits on the lines smtpd reads back (usr.sbin/smtpd, all versions): its input
    // buffer holds 64 KiB, so an answer line of 65,536 bytes or more with its '\n' is
    // never read and smtpd's whole channel to this filter stalls (iobuf.c IOBUF_MAX,
    // lka_filter.c processor_io); and smtpd < 7.4 keeps only the first 2,047 bytes of
    // each line (LINE_MAX, fixed in 7.4). Below 7.4 a long line is cut where smtpd would
    // cut it (the same delivered bytes, without the stall); from 7.4 a line longer than
    // the buffer is split in two rather than lose bytes. Either way it is logged once.
    const cut = answersTruncated(version)
    const maxLine = (cut ? ANSWER_LINE_LIMIT : READ_BUFFER_LIMIT) - filterDataline(version, session, token, '').length
    let warned = false
    let prefix: Buffer | undefined
    const write = (line: string): void => {
      if (line.length <= maxLine) {
        writer.line(filterDataline(version, session, token, line))
        return
      }
      if (!warned) {
        warned = true
        this.log.warn(
          { session, bytes: line.length, kept: maxLine },
          cut
            ? 'message line too long for smtpd < 7.4, which cuts what a filter sends back: cut as smtpd would (fixed in smtpd 7.4)'
            : 'message line too long for smtpd to read back from a filter: split in two',
        )
      }
      if (cut) writer.line(filterDataline(version, session, token, line.slice(0, maxLine)))
      else for (let i = 0; i < line.length; i += maxLine) writer.line(filterDataline(version, session, token, line.slice(i, i + maxLine)))
    }
    const host: PipelineHost = {
      // All data-lines of a message share one token; the answer order follows the request's version.
      write,
      writeLines: (src: Buffer, start: number, end: number) => {
        prefix ??= Buffer.from(filterDataline(version, session, token, ''), 'latin1')
        writer.datalines(prefix, src, start, end, maxLine, (line) => write(stuff(line)))
      },
      ready: () => writer.ready(),
      log: this.log,
      spool: this.spool,
    }
    const specs: StageSpec[] = this.dataStages.map((s) => ({ index: s.index, def: s.def, handler: s.handler, base: this.context(rec, s.index), version }))
    return new MessagePipeline(host, specs)
  }

  private answer(rec: SessionRecord, req: FilterRequest): void {
    if (req.phase === 'connect') {
      const { rdns, src } = splitConnectParam(req.param)
      rec.info.applyConnect(rdns, src)
    }
    const entries = this.phaseTable.get(req.phase) ?? []
    const dataFailed = req.phase === 'commit' ? rec.dataFailed : undefined
    if (req.phase === 'commit') rec.dataFailed = undefined
    let answered = false
    let step = 0
    let i = 0

    const finish = (d: Decision): void => {
      if (answered) return
      answered = true
      let line: string
      try {
        line = filterResult(req.version, req.session, req.token, req.phase, d, this.resultCtx)
      } catch {
        line = filterResult(req.version, req.session, req.token, req.phase, proceed(), this.resultCtx)
      }
      this.writer.line(line)
      if (rec.busy) this.release(rec)
    }

    const run = (): void => {
      while (i < entries.length) {
        const { index, fn } = entries[i++]!
        const def = this.filters[index]!
        if (dataFailed?.has(index)) {
          // This filter's data handling failed: its policy answers, not its commit handler.
          const d = failureDecision(def.onFailure, req.phase)
          if (d.kind !== 'proceed') return finish(d)
          continue
        }
        let r: Answer
        try {
          r = this.invoke(fn, this.context(rec, index), req)
        } catch (err) {
          r = this.failed(index, req, err)
        }
        if (isPromise<Decision>(r)) {
          rec.busy = true
          const mine = ++step
          const timer = setTimeout(() => {
            if (answered || mine !== step) return
            step++
            const d = this.failed(index, req, new TimeoutError(`no answer after ${def.answerTimeoutMs ?? 60_000} ms`))
            if (d.kind !== 'proceed') finish(d)
            else run()
          }, def.answerTimeoutMs ?? 60_000)
          r.then(
            (value) => {
              clearTimeout(timer)
              if (answered || mine !== step) return
              const d = this.normalize(index, req, value)
              if (d.kind !== 'proceed') finish(d)
              else run()
            },
            (err: unknown) => {
              clearTimeout(timer)
              if (answered || mine !== step) return
              const d = this.failed(index, req, err)
              if (d.kind !== 'proceed') finish(d)
              else run()
            },
          )
          return
        }
        const d = this.normalize(index, req, r)
        if (d.kind !== 'proceed') return finish(d)
      }
      finish(proceed())
    }
    run()
  }

  private invoke(fn: PhaseEntry['fn'], ctx: Context<unknown>, req: FilterRequest): Answer {
    const call = fn as (...args: unknown[]) => Answer
    switch (req.phase) {
      case 'connect': {
        const { rdns, src } = splitConnectParam(req.param)
        return call(ctx, rdns, src)
      }
      case 'helo':
      case 'ehlo':
      case 'auth':
      case 'mail-from':
      case 'rcpt-to':
        return call(ctx, req.param)
      default:
        return call(ctx)
    }
  }

  /** Makes a handler's decision one smtpd survives, or replaces it with the failure answer. */
  private normalize(index: number, req: FilterRequest, value: unknown): Decision {
    if (!isDecision(value)) return this.failed(index, req, new Error(`handler returned ${String(value)} instead of a decision`))
    let d = value
    // reject at connect leaves a session with no banner (observed): disconnect instead.
    if (req.phase === 'connect' && d.kind === 'reject') d = disconnect(d.code, d.text)
    try {
      checkDecision(req.phase, d, this.resultCtx)
      return d
    } catch (err) {
      if (err instanceof ProtocolError) return this.failed(index, req, err)
      throw err
    }
  }

  private failed(index: number, req: FilterRequest, err: unknown): Decision {
    const def = this.filters[index]!
    const d = failureDecision(def.onFailure, req.phase)
    this.log.error(
      { filter: def.name, session: req.session, phase: req.phase, err: errText(err), answer: d.kind },
      err instanceof TimeoutError ? 'handler timed out' : 'handler failed',
    )
    return d
  }
}

export type { SessionInfo }
