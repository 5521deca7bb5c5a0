/**
 * Every line a filter may write to smtpd, and nothing else.
 *
 * smtpd is unforgiving (protocol.md §4.5): an unknown register name, a
 * decision with a missing or extra parameter, a '\r' at the end of a line
 * (6.7+), junk at commit or a second answer to one request make it exit. The
 * functions here can only produce lines smtpd accepts; what they cannot make
 * acceptable they refuse with a ProtocolError, which the runtime turns into
 * the filter's fallback answer.
 */

import { isFilterPhase, isReportEvent, REPORTABLE_PHASES, REWRITABLE_PHASES } from './events.js'
import { tokenFirst, type ProtocolVersion } from './version.js'

export class ProtocolError extends Error {
  override name = 'ProtocolError'
}

export type Decision =
  | { readonly kind: 'proceed' }
  | { readonly kind: 'junk' }
  | { readonly kind: 'reject'; readonly code: number; readonly text: string }
  | { readonly kind: 'disconnect'; readonly code: number; readonly text: string }
  | { readonly kind: 'rewrite'; readonly value: string }
  | { readonly kind: 'report'; readonly text: string }

const PROCEED: Decision = Object.freeze({ kind: 'proceed' })
const JUNK: Decision = Object.freeze({ kind: 'junk' })

export function proceed(): Decision {
  return PROCEED
}

/** Marks the session (outside a transaction) or the transaction as spam: smtpd adds `X-Spam: Yes`. */
export function junk(): Decision {
  return JUNK
}

/**
 * smtpd accepts a reply only if it starts with a 4xx or 5xx code and a space
 * followed by text (util.c valid_smtp_response plus the 4/5 check in
 * lka_filter.c); otherwise it answers "421 Internal server error" and
 * disconnects. A reject with code 421 is turned into a disconnect by smtpd.
 */
function reply(kind: 'reject' | 'disconnect', code: number, text: string): Decision {
  if (!Number.isInteger(code) || code < 400 || code > 599) throw new ProtocolError(`${kind} needs a 4xx or 5xx code, got ${code}`)
  // RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with its code.
  const clean = oneLine(text).trim().slice(0, 500)
  return { kind, code, text: clean === '' ? (code >= 500 ? 'Rejected' : 'Try again later') : clean }
}

export function reject(code: number, text: string): Decision {
  return reply('reject', code, text)
}

export function disconnect(code: number, text: string): Decision {
  return reply('disconnect', code, text)
}

/** Replaces the command's argument (helo/ehlo name, `<address> [params]` for mail-from/rcpt-to). */
export function rewrite(value: string): Decision {
  const clean = oneLine(value)
  if (clean === '') throw new ProtocolError('rewrite needs a value')
  return { kind: 'rewrite', value: clean }
}

/** smtpd 7.6+ only (fatal "Invalid directive" before). */
export function report(text: string): Decision {
  const clean = oneLine(text)
  if (clean === '') throw new ProtocolError('report needs a text')
  return { kind: 'report', text: clean }
}

/** Answers must be one line: CR and LF (and other controls) become spaces. */
function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x1f\x7f]/.test(s) ? s.replace(/[\x00-\x1f\x7f]/g, ' ') : s
}

export function formatDecision(d: Decision): string {
  switch (d.kind) {
    case 'proceed':
    case 'junk':
      return d.kind
    case 'reject':
    case 'disconnect':
      return `${d.kind}|${d.code} ${d.text}`
    case 'rewrite':
      return `rewrite|${d.value}`
    case 'report':
      return `report|${d.text}`
  }
}

export interface ResultContext {
  /** `report` is a decision only on smtpd 7.6+, which announces itself with `config|protocol`. */
  readonly reportDecisionAllowed: boolean
}

/** Checks that `d` is a decision smtpd survives at `phase`; throws ProtocolError otherwise. */
export function checkDecision(phase: string, d: Decision, ctx: ResultContext): void {
  if (phase === 'data-line') throw new ProtocolError('data-line requests are answered with data-lines, never with a decision')
  switch (d.kind) {
    case 'junk':
      // "filter-reponse junk after DATA": smtpd exits (observed on 6.8 and 7.8).
      if (phase === 'commit') throw new ProtocolError('junk at commit kills smtpd; add a header during data-line instead')
      return
    case 'rewrite':
      if (!REWRITABLE_PHASES.has(phase)) throw new ProtocolError(`rewrite is not possible at ${phase}`)
      return
    case 'report':
      if (!ctx.reportDecisionAllowed) throw new ProtocolError('the report decision needs smtpd 7.6 or later')
      if (!REPORTABLE_PHASES.has(phase)) throw new ProtocolError(`report at ${phase} would replace the command argument`)
      return
    default:
      return
  }
}

function ids(version: ProtocolVersion, session: string, token: string): string {
  return tokenFirst(version) ? `${token}|${session}` : `${session}|${token}`
}

/** `filter-result|SID|TOK|DECISION` (TOK|SID before 0.5). Validates the decision for the phase. */
export function filterResult(version: ProtocolVersion, session: string, token: string, phase: string, d: Decision, ctx: ResultContext): string {
  checkDecision(phase, d, ctx)
  return `filter-result|${ids(version, session, token)}|${formatDecision(d)}`
}

/**
 * `filter-dataline|SID|TOK|LINE` (TOK|SID before 0.5). The line is message
 * data: bytes, possibly with a bare CR, already dot-stuffed. It must not hold
 * '\n'. The trailing '|' of an empty line is mandatory.
 */
export function filterDataline(version: ProtocolVersion, session: string, token: string, line: string): string {
  return `filter-dataline|${ids(version, session, token)}|${line}`
}

export function registerReport(subsystem: 'smtp-in' | 'smtp-out', event: string): string {
  if (!isReportEvent(event) && event !== '*') throw new ProtocolError(`unknown report event ${event}`)
  return `register|report|${subsystem}|${event}`
}

/** Filtering exists only for smtp-in; there is no `*` form. */
export function registerFilter(phase: string): string {
  if (!isFilterPhase(phase)) throw new ProtocolError(`unknown filter phase ${phase}`)
  return `register|filter|smtp-in|${phase}`
}

export function registerReady(): string {
  return 'register|ready'
}
