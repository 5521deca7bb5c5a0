/**
 * Logging: pino, to stderr (fd 2) only, synchronously.
 *
 * pino's default destination is stdout, which is smtpd's protocol channel:
 * one JSON line there makes smtpd exit. smtpd logs every stderr line of a
 * filter as `<filter-name>: <line>` at LOG_ERR with its own timestamp, so the
 * lines carry no time, pid or hostname, and the default level (info) gives
 * one line per session verdict. Synchronous writes cost nothing at that rate
 * and guarantee the last line before an exit is written.
 */

import { pino, type Logger } from 'pino'

export type { Logger }

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

let root: Logger | undefined

export function createLogger(level: LogLevel = 'info', destination = 2): Logger {
  return pino(
    {
      level,
      base: undefined,
      timestamp: false,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: destination, sync: true }),
  )
}

/** The process-wide logger (created on first use at level info). */
export function logger(): Logger {
  root ??= createLogger()
  return root
}

export function setLogLevel(level: LogLevel): void {
  logger().level = level
}

/** For log fields: message data is latin1-decoded bytes; show it as UTF-8 where it is. */
export function printable(latin1: string, max = 200): string {
  const s = Buffer.from(latin1, 'latin1').toString('utf8')
  return s.length > max ? s.slice(0, max) + '…' : s
}
