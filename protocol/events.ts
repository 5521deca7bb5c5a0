/**
 * The names smtpd knows. Registering a name outside these lists makes smtpd's
 * lookup process call fatalx at startup ("Unrecognized report name"), so the
 * serializer only accepts these. The sets are the same from 6.6 to 7.8.
 * Order: smtpd's own tables (lka_filter.c), which is also the order our
 * register lines come out in.
 */

export const REPORT_EVENTS = [
  'link-connect',
  'link-disconnect',
  'link-greeting',
  'link-identify',
  'link-tls',
  'link-auth',
  'tx-reset',
  'tx-begin',
  'tx-mail',
  'tx-rcpt',
  'tx-envelope',
  'tx-data',
  'tx-commit',
  'tx-rollback',
  'protocol-client',
  'protocol-server',
  'filter-report',
  'filter-response',
  'timeout',
] as const

export type ReportEventName = (typeof REPORT_EVENTS)[number]

/**
 * Filter phases. `help` and `wiz` are accepted at registration but smtpd never
 * sends them (it answers those commands itself).
 */
export const FILTER_PHASES = [
  'connect',
  'helo',
  'ehlo',
  'starttls',
  'auth',
  'mail-from',
  'rcpt-to',
  'data',
  'data-line',
  'rset',
  'quit',
  'noop',
  'help',
  'wiz',
  'commit',
] as const

export type FilterPhase = (typeof FILTER_PHASES)[number]

/** smtp-out exists since 6.7 (protocol 0.5); registering it on 6.6 is fatal. */
export const SUBSYSTEMS = ['smtp-in', 'smtp-out'] as const
export type Subsystem = (typeof SUBSYSTEMS)[number]

const reportSet: ReadonlySet<string> = new Set(REPORT_EVENTS)
const phaseSet: ReadonlySet<string> = new Set(FILTER_PHASES)

export function isReportEvent(name: string): name is ReportEventName {
  return reportSet.has(name)
}

export function isFilterPhase(name: string): name is FilterPhase {
  return phaseSet.has(name)
}

/**
 * Phases whose argument a `rewrite` may replace (smtpd re-checks the value
 * with the command's own syntax). At data, rset, quit and commit smtpd
 * refuses arguments and a rewrite leaves the transaction hanging; at connect
 * it is ignored; at starttls it always fails (protocol.md §4.2).
 */
export const REWRITABLE_PHASES: ReadonlySet<string> = new Set(['helo', 'ehlo', 'auth', 'mail-from', 'rcpt-to', 'noop'])

/**
 * Phases at which the 7.6+ `report` decision is harmless: it replaces the
 * command argument, so it breaks helo/ehlo/auth/mail-from/rcpt-to (§4.1).
 */
export const REPORTABLE_PHASES: ReadonlySet<string> = new Set(['connect', 'starttls', 'data', 'rset', 'quit', 'noop', 'commit'])
