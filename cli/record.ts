/**
 * smtpd-filters record --out FILE [-- CMD ARGS...]
 *
 * A proc-exec wrapper: smtpd talks to it, it talks to CMD, and every line of
 * both directions (and CMD's stderr) goes to FILE with a timestamp, one JSON
 * object per line, in the format of the project's recordings:
 * `{"seq":N,"t":UNIX,"dir":"in"|"out"|"err","line":TEXT}` (or `"b64"` for lines
 * that are not UTF-8). Without CMD it wraps filter-null: a recording
 * pass-through. `smtpd-filters replay FILE -- CMD` plays FILE back.
 *
 *     filter "rec" proc-exec "smtpd-filters record --out /var/tmp/rdns.jsonl -- /usr/libexec/opensmtpd/filter-rdns -rdns disconnect"
 *
 * The wrapper must not take smtpd down when CMD does: if CMD exits, the
 * wrapper logs it, answers what CMD left unanswered (proceed, and the
 * message's "."), and goes on as a pass-through until smtpd closes stdin.
 * AUTH credentials (the auth request's initial response) are masked in FILE.
 */

import { spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { filterDataline, filterResult, parseLine, proceed, registerFilter, registerReady, registerReport, FILTER_PHASES, REPORT_EVENTS, type FilterRequest } from '../protocol/index.js'
import { parseFlags, str, usage, UsageError, type FlagSpec } from '../lib/flags.js'
import { LineSplitter } from '../lib/lines.js'
import { guardStdout, ProtocolWriter } from '../lib/writer.js'

const FLAGS: FlagSpec[] = [{ name: 'out', kind: 'string', arg: 'file', help: 'append the recording to this file (created with mode 0600)' }]
const SYNOPSIS = '--out FILE [-- CMD [ARGS...]]'

function nullFilterPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'filters', 'null', 'main.js')
}

/** A recording line: text when the bytes are UTF-8, base64 otherwise. */
export function recordEntry(seq: number, dir: string, latin1: string): string {
  const bytes = Buffer.from(latin1, 'latin1')
  const text = bytes.toString('utf8')
  const field = Buffer.from(text, 'utf8').equals(bytes) ? { line: text } : { b64: bytes.toString('base64') }
  return JSON.stringify({ seq, t: Date.now() / 1000, dir, ...field }) + '\n'
}

/** AUTH arguments carry the base64 credentials (protocol.md §3.2): keep only the mechanism. */
export function maskAuth(line: string): string {
  const m = /^(filter\|[^|]*\|[^|]*\|[^|]*\|auth\|[^|]*\|[^|]*\|)(\S+)(\s.*)?$/.exec(line)
  return m && m[3] ? `${m[1]}${m[2]} ********` : line
}

export async function run(argv: string[]): Promise<number> {
  let out: string | undefined
  let cmd: string[]
  try {
    const parsed = parseFlags(argv, FLAGS)
    out = str(parsed.values, 'out')
    if (!out) throw new UsageError('--out is required')
    cmd = parsed.rest.length > 0 ? parsed.rest : [process.execPath, nullFilterPath()]
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message) process.stderr.write(`smtpd-filters record: ${err.message}\n`)
      process.stderr.write(usage('smtpd-filters record', SYNOPSIS, FLAGS))
      return err.help ? 0 : 2
    }
    throw err
  }

  const realWrite = guardStdout((t) => process.stderr.write(t))
  const file = createWriteStream(out, { flags: 'a', mode: 0o600 })
  file.on('error', (err) => process.stderr.write(`smtpd-filters record: ${out}: ${err.message}\n`))
  let seq = 0
  const rec = (dir: string, line: string): void => {
    file.write(recordEntry(++seq, dir, dir === 'in' ? maskAuth(line) : line))
  }
  rec('meta', JSON.stringify({ event: 'start', argv: cmd, pid: process.pid }))

  const writer = new ProtocolWriter(process.stdout, realWrite)
  const send = (line: string): void => {
    writer.line(line)
    rec('out', line)
  }
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] })
  let alive = true
  let configDone = false
  let readySent = false
  // Requests CMD has not answered yet (key: session, or session|data for a message's "."),
  // so that its death does not leave smtpd's sessions hanging.
  const pending = new Map<string, FilterRequest>()

  const registerAll = (): void => {
    if (readySent) return
    for (const e of REPORT_EVENTS) send(registerReport('smtp-in', e))
    for (const p of FILTER_PHASES) send(registerFilter(p))
    send(registerReady())
    readySent = true
  }
  const passThrough = (m: FilterRequest): void => {
    if (m.phase === 'data-line') send(filterDataline(m.version, m.session, m.token, m.param))
    else send(filterResult(m.version, m.session, m.token, m.phase, proceed(), { reportDecisionAllowed: false }))
  }
  const takeOver = (reason: string): void => {
    if (!alive) return
    alive = false
    process.stderr.write(`smtpd-filters record: ${reason}; answering as a pass-through from now on\n`)
    rec('meta', JSON.stringify({ event: 'child-gone', reason }))
    if (configDone) registerAll()
    for (const m of pending.values()) passThrough(m)
    pending.clear()
  }

  const fromSmtpd = new LineSplitter((line) => {
    rec('in', line)
    const m = parseLine(line)
    if (m.type === 'config' && m.key === 'ready') configDone = true
    if (alive) {
      if (m.type === 'filter' && (m.phase !== 'data-line' || m.param === '.')) pending.set(m.phase === 'data-line' ? m.session + '|data' : m.session, m)
      child.stdin.write(line + '\n', 'latin1')
    } else if (m.type === 'config' && m.key === 'ready') registerAll()
    else if (m.type === 'filter') passThrough(m)
  })

  const fromChild = new LineSplitter((line) => {
    rec('out', line)
    if (line === 'register|ready') readySent = true
    if (line.startsWith('filter-result|') || (line.startsWith('filter-dataline|') && line.endsWith('|.'))) {
      // The session id is field 1 since 0.5 and field 2 before: try both.
      const f = line.split('|', 3)
      const suffix = line.startsWith('filter-result|') ? '' : '|data'
      if (!pending.delete(f[1]! + suffix)) pending.delete(f[2]! + suffix)
    }
    writer.line(line)
  })
  const errLines = new LineSplitter((line) => {
    rec('err', line)
    process.stderr.write(Buffer.from(line + '\n', 'latin1'))
  })

  child.stdout.on('data', (c: Buffer) => fromChild.push(c))
  child.stderr.on('data', (c: Buffer) => errLines.push(c))
  child.stdin.on('error', () => {})
  child.on('error', (err) => takeOver(`cannot run ${cmd[0]}: ${err.message}`))

  return await new Promise<number>((resolve) => {
    let stdinDone = false
    child.on('exit', (code, signal) => {
      fromChild.end()
      errLines.end()
      rec('meta', JSON.stringify({ event: 'exit', code, signal }))
      if (!stdinDone) takeOver(`${cmd[0]} exited (${signal ?? code})`)
      else finish()
    })
    process.stdin.on('data', (c: Buffer) => fromSmtpd.push(c))
    process.stdin.on('end', () => {
      stdinDone = true
      fromSmtpd.end()
      rec('meta', JSON.stringify({ event: 'stdin-eof' }))
      if (alive) child.stdin.end()
      else finish()
    })
    const finish = (): void => {
      void writer.end().then(() => file.end(() => resolve(0)))
    }
  })
}
