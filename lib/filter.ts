/**
 * The API a filter is written against: a table of handlers, like
 * libopensmtpd's osmtpd_register_* calls. A phase handler returns a decision
 * (`proceed()`, `junk()`, `reject(550, "…")`, …) or a promise of one; the
 * runtime writes the answer line, exactly once. What is registered with smtpd
 * is derived from this table (see `registrations` in runtime.ts), so handled
 * and registered cannot drift apart.
 */

import type { Decision, ProtocolVersion, Report, ReportEventName } from '../protocol/index.js'
import type { Logger } from './log.js'

export { proceed, junk, reject, disconnect, rewrite, report, type Decision } from '../protocol/index.js'

export type Answer = Decision | Promise<Decision>

/** What smtpd told us at startup (config lines). */
export interface SmtpdConfig {
  readonly smtpdVersion?: string
  /** `config|protocol|…`, sent by smtpd 7.6+ only */
  readonly protocol?: string
  readonly sessionTimeout?: number
  readonly subsystems: readonly string[]
  /** `config|admd|…` (6.8+): the authserv-id for Authentication-Results */
  readonly admd?: string
  /** every config line, including keys we do not know */
  readonly raw: ReadonlyMap<string, string>
}

/** The session facts the runtime keeps current from reports (like libopensmtpd's osmtpd_ctx). */
export interface SessionInfo {
  readonly id: string
  readonly subsystem: string
  /** first PTR name as smtpd found it; undefined when smtpd said `<unknown>` */
  readonly rdns?: string
  /** smtpd's own FCrDNS verdict: pass, fail or error */
  readonly fcrdns?: string
  /** link-connect source as written: `1.2.3.4:port`, `[v6]:port` or `unix:/path` */
  readonly src?: string
  readonly dest?: string
  /** the client IP without port or brackets; undefined for unix-socket (local) sessions */
  readonly address?: string
  readonly family?: 4 | 6
  /** a local submission over the unix socket */
  readonly local: boolean
  readonly heloMethod?: string
  readonly helo?: string
  readonly tls?: string
  readonly authResult?: string
  /** set only when link-auth said pass */
  readonly authUser?: string
  readonly msgid?: string
  readonly mailFrom?: string
  readonly rcpts: readonly string[]
}

/**
 * What a filter declares it needs, like osmtpd_need(): the runtime then
 * registers the reports that keep those session fields current.
 */
export type Need = 'rdns' | 'fcrdns' | 'src' | 'dest' | 'helo' | 'tls' | 'auth' | 'msgid' | 'mail-from' | 'rcpts' | 'headers'

export interface Context<S> {
  readonly session: SessionInfo
  /** this filter's own per-session state (from `newSession`) */
  readonly state: S
  /** logger with the session id bound */
  readonly log: Logger
  readonly config: SmtpdConfig
}

export type ReportHandlers<S> = {
  readonly [E in ReportEventName]?: (ctx: Context<S>, report: Extract<Report, { event: E }>) => void
}

/** One handler per phase, named as smtpd names the phases. */
export interface PhaseHandlers<S> {
  readonly connect?: (ctx: Context<S>, rdns: string, src: string) => Answer
  readonly helo?: (ctx: Context<S>, identity: string) => Answer
  readonly ehlo?: (ctx: Context<S>, identity: string) => Answer
  readonly starttls?: (ctx: Context<S>) => Answer
  /** the raw AUTH arguments, credentials included: never log them */
  readonly auth?: (ctx: Context<S>, args: string) => Answer
  readonly 'mail-from'?: (ctx: Context<S>, address: string) => Answer
  readonly 'rcpt-to'?: (ctx: Context<S>, address: string) => Answer
  readonly data?: (ctx: Context<S>) => Answer
  readonly rset?: (ctx: Context<S>) => Answer
  readonly quit?: (ctx: Context<S>) => Answer
  readonly noop?: (ctx: Context<S>) => Answer
  readonly help?: (ctx: Context<S>) => Answer
  readonly wiz?: (ctx: Context<S>) => Answer
  /** after the message; a decision taken from content is given here (never junk) */
  readonly commit?: (ctx: Context<S>) => Answer
}

/** A header field of a message: its first line and continuation lines, as they are (latin1). */
export interface HeaderField {
  /** the name as written */
  readonly name: string
  /** the name lower-cased */
  readonly lname: string
  readonly lines: readonly string[]
}

export interface MessageContext<S> extends Context<S> {
  /** header fields seen so far in this filter's input (complete once the body starts) */
  readonly headers: readonly HeaderField[]
  /** bytes of message seen so far (line bytes plus line ends) */
  readonly bytes: number
  /**
   * the protocol version of this message's data-line requests (smtpd < 7.6 announces no
   * `config|protocol`): below 0.7, smtpd truncates answer lines (`answersTruncated`)
   */
  readonly version: ProtocolVersion
  /**
   * Hold mode, for `end`: the message as held, the lines that fit whole in `maxBytes` (latin1
   * bytes, unstuffed, each line ending in '\n'), read back from the runtime's own copy (in
   * memory or in its temp file), so that a filter keeps no second one. Stream mode: empty.
   */
  heldMessage(maxBytes?: number): Promise<{ bytes: Buffer; truncated: boolean }>
}

/** Where a data handler sends its lines (plain, unstuffed; the runtime stuffs them). */
export interface LineSink {
  write(line: string): void
}

/**
 * Streaming data handler: sees each line as it arrives and writes what
 * should follow (the line itself, or other lines). Without `line`, lines
 * pass through unchanged. `end` may write more lines; the runtime writes
 * the final "." after it.
 */
export interface StreamData<S> {
  readonly mode: 'stream'
  readonly line?: (ctx: MessageContext<S>, line: string, out: LineSink) => void
  readonly end?: (ctx: MessageContext<S>, out: LineSink) => void | Promise<void>
}

/**
 * Held data handler: the runtime keeps the whole message (in memory up to a
 * limit, then in an unlinked 0600 temp file), shows each line to `line` as
 * it arrives (to hash or scan incrementally) and, at the end, re-emits the
 * message with the edit `end` returns. If `line` or `end` fails, the
 * message goes on unchanged and the filter's failure policy decides at commit.
 */
export interface HoldData<S> {
  readonly mode: 'hold'
  readonly line?: (ctx: MessageContext<S>, line: string) => void
  readonly end: (ctx: MessageContext<S>) => MessageEdit | Promise<MessageEdit>
}

export interface MessageEdit {
  /** lines to put before the message (e.g. a DKIM-Signature, X-Spam headers) */
  readonly prepend?: readonly string[]
  /**
   * Called for each header field: undefined keeps it, null removes it, an
   * array of lines replaces it.
   */
  readonly header?: (field: HeaderField, index: number) => readonly string[] | null | undefined
}

export type DataHandler<S> = StreamData<S> | HoldData<S>

/**
 * What to answer when a handler throws, its promise rejects, or it does not
 * answer in time: `proceed` (fail open, the default) or `tempfail`
 * (421 at connect, 451 elsewhere).
 */
export type FailurePolicy = 'proceed' | 'tempfail'

export interface FilterDefinition<S = undefined> {
  /** short name, used in logs when several filters share a process */
  readonly name: string
  readonly needs?: readonly Need[]
  /** creates this filter's per-session state */
  readonly newSession?: (session: SessionInfo) => S
  readonly reports?: ReportHandlers<S>
  readonly phases?: PhaseHandlers<S>
  readonly data?: DataHandler<S>
  readonly onFailure?: FailurePolicy
  /** a handler that has not answered after this long gets the failure answer (default 60 s) */
  readonly answerTimeoutMs?: number
  /** called once smtpd's configuration is known, before registering */
  readonly onConfig?: (config: SmtpdConfig) => void
}

/** Helper so that a definition's state type is inferred from `newSession`. */
export function defineFilter<S = undefined>(def: FilterDefinition<S>): FilterDefinition<S> {
  return def
}
