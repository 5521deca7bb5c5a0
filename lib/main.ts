/**
 * Process bootstrap shared by every filter executable.
 *
 * Startup is when an admin is watching: bad flags print the usage and exit 2
 * (Go's flag package does the same), unreadable files and other setup errors
 * print one clear line and exit 1 — smtpd logs the filter's stderr and stops.
 * After startup nothing ends the process but EOF on stdin: smtpd exits with
 * its filters (§4.6), so uncaught errors are logged and survived.
 */

import type { FilterDefinition } from './filter.js'
import { parseFlags, usage, UsageError, type FlagSpec, type FlagValues } from './flags.js'
import { LineSplitter } from './lines.js'
import { createLogger, LOG_LEVELS, type LogLevel, type Logger } from './log.js'
import { errText } from './message.js'
import { Runtime } from './runtime.js'
import { guardStdout, ProtocolWriter } from './writer.js'

/** A configuration error found at startup: reported on one line, exit status 1. */
export class StartupError extends Error {
  override name = 'StartupError'
}

/** Flags every filter accepts. */
export const COMMON_FLAGS: readonly FlagSpec[] = [
  {
    name: 'loglevel',
    kind: 'string',
    arg: 'level',
    default: 'info',
    help: 'log level on stderr: error, warn, info (one line per session verdict), debug',
    check: (v) => ((LOG_LEVELS as readonly string[]).includes(String(v)) ? undefined : `one of ${LOG_LEVELS.join(', ')}`),
  },
  {
    name: 'tmpdir',
    kind: 'string',
    arg: 'dir',
    help: 'directory for messages too large to hold in memory (default $TMPDIR or /tmp)',
  },
]

/**
 * -onError, for filters that have no failure flag of their own (filter-dkimsign and
 * filter-spamscore have theirs): what a handler that throws or does not answer in time
 * gets. Without it, the definition's own policy (proceed unless it says otherwise).
 */
const ON_ERROR: FlagSpec = {
  name: 'onError',
  kind: 'string',
  arg: 'policy',
  help: 'when the filter itself fails (an internal error, a check that does not answer in time): proceed (fail open, the default) or tempfail (421 at connect, 451 later)',
  check: (v) => (v === 'proceed' || v === 'tempfail' ? undefined : 'proceed or tempfail'),
}

/** A program's flags, then the common ones it does not define itself. */
export function programFlags(spec: Pick<ProgramSpec, 'flags'>): FlagSpec[] {
  const own = new Set(spec.flags.map((f) => f.name))
  return [...spec.flags, ...[...COMMON_FLAGS, ON_ERROR].filter((f) => !own.has(f.name))]
}

/** Applies the common -onError to the definitions that did not choose a policy themselves. */
export function withFailurePolicy(spec: Pick<ProgramSpec, 'flags'>, values: FlagValues, defs: FilterDefinition<any>[]): FilterDefinition<any>[] {
  const policy = values.onError
  if (spec.flags.some((f) => f.name === 'onError') || (policy !== 'proceed' && policy !== 'tempfail')) return defs
  return defs.map((d) => (d.onFailure === undefined ? { ...d, onFailure: policy } : d))
}

export interface ProgramSpec {
  /** the installed name, e.g. filter-senderscore */
  readonly program: string
  /** usage synopsis after the program name */
  readonly synopsis?: string
  readonly flags: readonly FlagSpec[]
  /** builds the filter(s) from the parsed flags; may throw StartupError or UsageError */
  readonly build: (values: FlagValues, rest: string[], log: Logger) => FilterDefinition<any> | FilterDefinition<any>[] | Promise<FilterDefinition<any> | FilterDefinition<any>[]>
  /** positional arguments allowed after the flags */
  readonly positional?: boolean
}

/** Parses flags for a program, printing usage and exiting on errors. */
export function parseProgramFlags(spec: ProgramSpec, argv: readonly string[]): { values: FlagValues; rest: string[] } {
  const specs = programFlags(spec)
  try {
    const parsed = parseFlags(argv, specs)
    if (!spec.positional && parsed.rest.length > 0) throw new UsageError(`unexpected argument: ${parsed.rest[0]}`)
    return parsed
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message) process.stderr.write(`${spec.program}: ${err.message}\n`)
      process.stderr.write(usage(spec.program, spec.synopsis ?? '[flags]', specs))
      process.exit(err.help ? 0 : 2)
    }
    throw err
  }
}

/** Runs a filter program: flags, build, then the protocol loop until EOF on stdin. */
export async function runProgram(spec: ProgramSpec, argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const write = guardStdout((text) => process.stderr.write(`stray stdout output redirected to stderr: ${text}`))
  const { values, rest } = parseProgramFlags(spec, argv)
  const log = createLogger((values.loglevel as LogLevel | undefined) ?? 'info')
  let defs: FilterDefinition<any>[]
  try {
    const built = await spec.build(values, rest, log)
    defs = withFailurePolicy(spec, values, Array.isArray(built) ? built : [built])
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${spec.program}: ${err.message}\n`)
      process.exit(2)
    }
    process.stderr.write(`${spec.program}: ${errText(err)}\n`)
    process.exit(1)
  }
  serve(defs, { log, write, tmpdir: values.tmpdir as string | undefined })
}

export interface ServeOptions {
  readonly log: Logger
  readonly write?: ReturnType<typeof guardStdout>
  readonly tmpdir?: string
}

/** The protocol loop on stdin/stdout. Exits 0 at EOF on stdin, after flushing. */
export function serve(defs: FilterDefinition<any>[], opts: ServeOptions): Runtime {
  const { log } = opts
  process.on('uncaughtException', (err) => log.error({ err: errText(err), stack: err.stack }, 'uncaught exception (survived)'))
  process.on('unhandledRejection', (err) => log.error({ err: errText(err) }, 'unhandled rejection (survived)'))
  // smtpd starts filters with setsid(): a HUP or INT is an admin's doing, not a reason to take smtpd down.
  process.on('SIGHUP', () => log.info('SIGHUP ignored'))
  process.stdin.on('error', (err) => log.warn({ err: errText(err) }, 'stdin error'))

  const input = process.stdin
  const writer = new ProtocolWriter(
    process.stdout,
    opts.write ?? guardStdout(() => {}),
    (blocked) => (blocked ? input.pause() : input.resume()),
    (err) => log.warn({ err: errText(err) }, 'stdout error: smtpd is gone?'),
  )
  const runtime = new Runtime({ filters: defs, writer, log, spool: { directory: opts.tmpdir } })
  const splitter = new LineSplitter(
    (line) => runtime.line(line),
    undefined,
    (bytes) => log.warn({ bytes }, 'input line too long for smtpd: dropped'),
  )
  input.on('data', (chunk: Buffer) => {
    splitter.push(chunk)
    // Answers decided while handling this chunk go out now, in one write, rather than
    // after another turn of the event loop; asynchronous answers are batched by the writer.
    writer.flush()
  })
  input.on('end', () => {
    splitter.end()
    runtime.close()
    void writer.end().then(() => process.exit(0))
  })
  return runtime
}
