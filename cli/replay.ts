/**
 * smtpd-filters replay FILE [--expect GOLDEN] [--blind] [--timeout SECS] -- CMD ARGS...
 *
 * Plays smtpd's side of a recorded stream to a filter and prints what the
 * filter answers. FILE is a raw smtpd→filter stream (a `.in` file of
 * ../shared/recordings, one protocol line per line) or a JSON-lines recording
 * made by `smtpd-filters record` (its "in" lines); `.gz` files are read too.
 *
 * Like smtpd, it sends the config lines, waits for register|ready, forwards
 * only the report events and phases the filter registered, and (unless
 * --blind) waits for the answer to each request — and for the message's "."
 * after the last data-line — before sending the next line, so the output
 * order is deterministic. It checks that every request gets exactly one
 * answer. With --expect, the output must equal GOLDEN byte for byte.
 *
 * Exit status: 0 all answered (and equal to GOLDEN), 1 a difference, a
 * missing or extra answer, or the filter died; 2 usage.
 */

import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { parseLine, tokenFirst, type FilterRequest } from '../protocol/index.js'
import { bool, num, parseFlags, str, usage, UsageError, type FlagSpec } from '../lib/flags.js'
import { LineSplitter } from '../lib/lines.js'

const FLAGS: FlagSpec[] = [
  { name: 'expect', kind: 'string', arg: 'golden', help: 'compare the answers with this file; exit 1 on a difference' },
  { name: 'blind', kind: 'bool', help: 'send everything at once instead of waiting for each answer' },
  { name: 'timeout', kind: 'number', arg: 'secs', default: 10, help: 'how long to wait for an answer' },
  { name: 'quiet', kind: 'bool', help: 'do not print the answers' },
]
const SYNOPSIS = 'FILE [--expect GOLDEN] [--blind] [--timeout SECS] -- CMD [ARGS...]'

/** The smtpd→filter lines of a stream or a recording, as latin1 strings. */
export function readStream(path: string): string[] {
  let data = readFileSync(path)
  if (path.endsWith('.gz')) data = gunzipSync(data)
  const text = data.toString('latin1')
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n')
  if (!text.startsWith('{')) return text === '' ? [] : lines
  const out: string[] = []
  for (const l of lines) {
    if (l.trim() === '') continue
    const e = JSON.parse(Buffer.from(l, 'latin1').toString('utf8')) as { dir?: string; line?: string; b64?: string }
    if (e.dir !== 'in') continue
    out.push(e.b64 !== undefined ? Buffer.from(e.b64, 'base64').toString('latin1') : Buffer.from(e.line ?? '', 'utf8').toString('latin1'))
  }
  return out
}

interface Outstanding {
  readonly req: FilterRequest
  resolve(): void
}

export async function run(argv: string[]): Promise<number> {
  let file: string
  let cmd: string[]
  let values
  try {
    const parsed = parseFlags(argv, FLAGS, { interspersed: true })
    values = parsed.values
    cmd = parsed.rest
    const args = parsed.positional
    if (args.length !== 1) throw new UsageError('one FILE is needed')
    if (cmd.length === 0) throw new UsageError('the filter command is missing')
    file = args[0]!
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message) process.stderr.write(`smtpd-filters replay: ${err.message}\n`)
      process.stderr.write(usage('smtpd-filters replay', SYNOPSIS, FLAGS))
      return err.help ? 0 : 2
    }
    throw err
  }
  const expect = str(values, 'expect')
  const blind = bool(values, 'blind')
  const quiet = bool(values, 'quiet')
  const timeoutMs = (num(values, 'timeout') ?? 10) * 1000
  const lines = readStream(file)

  const problems: string[] = []
  const output: string[] = []
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] })
  child.stdin.on('error', () => {})
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined
  const exitPromise = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      exited = { code, signal }
      resolve()
    }),
  )
  child.on('error', (err) => problems.push(`cannot run ${cmd[0]}: ${err.message}`))

  const reports = new Set<string>()
  const phases = new Set<string>()
  let ready: (() => void) | undefined
  const readyPromise = new Promise<void>((resolve) => (ready = resolve))
  // Outstanding requests by session (one at a time per session in smtpd) and messages awaiting ".".
  const results = new Map<string, Outstanding[]>()
  const dots = new Map<string, Outstanding[]>()

  const settle = (map: Map<string, Outstanding[]>, ids: string[], line: string): void => {
    for (const id of ids) {
      const q = map.get(id)
      const o = q?.[0]
      if (!o) continue
      const want = tokenFirst(o.req.version) ? `${o.req.token}|${o.req.session}` : `${o.req.session}|${o.req.token}`
      if (!line.includes(`|${want}|`)) continue
      q!.shift()
      if (q!.length === 0) map.delete(id)
      o.resolve()
      return
    }
    problems.push(`answer to no outstanding request: ${line.slice(0, 160)}`)
  }

  const fromFilter = new LineSplitter((line) => {
    output.push(line)
    if (!quiet) process.stdout.write(Buffer.from(line + '\n', 'latin1'))
    const f = line.split('|')
    if (f[0] === 'register') {
      if (f[1] === 'ready') ready?.()
      else if (f[1] === 'report') reports.add(f[3]!)
      else if (f[1] === 'filter') phases.add(f[3]!)
      return
    }
    if (f[0] === 'filter-result') settle(results, [f[1]!, f[2]!], line)
    else if (f[0] === 'filter-dataline' && line.endsWith('|.')) settle(dots, [f[1]!, f[2]!], line)
    else if (f[0] !== 'filter-dataline') problems.push(`not a protocol answer: ${line.slice(0, 160)}`)
  })
  child.stdout.on('data', (c: Buffer) => fromFilter.push(c))
  child.stdout.on('end', () => fromFilter.end())

  const send = (line: string): void => {
    child.stdin.write(line + '\n', 'latin1')
  }
  const wait = (p: Promise<void>, what: string): Promise<void> => {
    let timer: NodeJS.Timeout
    return Promise.race([
      p,
      exitPromise.then(() => {
        throw new Error(`the filter exited while ${what}`)
      }),
      new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer after ${timeoutMs} ms while ${what}`)), timeoutMs)
      }),
    ]).finally(() => clearTimeout(timer))
  }
  const outstanding = (map: Map<string, Outstanding[]>, req: FilterRequest): Promise<void> =>
    new Promise<void>((resolve) => {
      const q = map.get(req.session) ?? []
      q.push({ req, resolve })
      map.set(req.session, q)
    })

  const pendingAnswers: Promise<void>[] = []
  try {
    let i = 0
    for (; i < lines.length; i++) {
      send(lines[i]!)
      if (lines[i] === 'config|ready') break
    }
    await wait(readyPromise, 'waiting for register|ready')
    for (i++; i < lines.length; i++) {
      const line = lines[i]!
      const m = parseLine(line)
      if (m.type === 'report' || m.type === 'unknown-report') {
        // smtpd sends only the events the filter registered.
        if (!reports.has(m.event) && !reports.has('*')) continue
      } else if (m.type === 'filter') {
        if (!phases.has(m.phase)) continue
      }
      let answer: Promise<void> | undefined
      if (m.type === 'filter' && m.phase !== 'data-line') answer = outstanding(results, m)
      else if (m.type === 'filter' && m.param === '.') answer = outstanding(dots, m)
      send(line)
      if (!answer) continue
      if (blind) pendingAnswers.push(wait(answer, `waiting for the answer to: ${line.slice(0, 160)}`))
      else await wait(answer, `waiting for the answer to: ${line.slice(0, 160)}`)
    }
    await Promise.all(pendingAnswers)
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err))
  }
  child.stdin.end()
  let exitTimer: NodeJS.Timeout | undefined
  const gone = await Promise.race([exitPromise.then(() => true), new Promise<boolean>((r) => (exitTimer = setTimeout(() => r(false), timeoutMs)))])
  clearTimeout(exitTimer)
  if (!gone) {
    problems.push('the filter did not exit after EOF on stdin')
    child.kill('SIGKILL')
  } else if (exited && exited.code !== 0) problems.push(`the filter exited with ${exited.signal ?? exited.code} (smtpd would exit with it)`)

  if (expect !== undefined) {
    const golden = readStream(expect)
    const n = Math.max(golden.length, output.length)
    for (let k = 0; k < n; k++) {
      if (golden[k] !== output[k]) {
        problems.push(`line ${k + 1} differs from ${expect}:\n  expected: ${golden[k]?.slice(0, 200) ?? '(nothing)'}\n  got:      ${output[k]?.slice(0, 200) ?? '(nothing)'}`)
        break
      }
    }
  }
  for (const p of problems) process.stderr.write(`smtpd-filters replay: ${p}\n`)
  return problems.length > 0 ? 1 : 0
}
