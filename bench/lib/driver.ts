/**
 * Plays smtpd against any filter command (ours or the Debian peers) and
 * measures it. Like smtpd it sends the config lines, waits for
 * register|ready, forwards only the events and phases the filter registered
 * (filter-senderscore exits on anything else), and — in gated mode — waits
 * for each request's answer before the session's next step and for the
 * filter's "." before commit. At most K sessions are open at once; with
 * `rate`, sessions start at that rate with no cap.
 *
 * It checks that every request gets exactly one answer and every message
 * exactly one "."; with `verify`, that a pass-through returned every line.
 * Filter CPU (user+sys) and peak RSS are read from /proc/<pid> after the
 * last answer, so they cover the filter alone, whatever its language.
 */

import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { LineSplitter } from '../../lib/lines.js'
import { clientIp, makeMessage, sessionId, type MessageSize } from './gen.js'

export interface DriveOptions {
  readonly command: readonly string[]
  readonly sessions: number
  readonly concurrency: number
  /** sessions started per second (paced mode; concurrency is then unbounded) */
  readonly rate?: number
  readonly size?: MessageSize
  readonly version?: string
  /** distinct client IPv4 addresses (DNS-based filters) */
  readonly ips?: number
  readonly rdns?: (ip: string) => string
  readonly verify?: boolean
  /** run the filter inside this network namespace */
  readonly netns?: string
  readonly env?: NodeJS.ProcessEnv
  readonly timeoutMs?: number
  readonly label?: string
  /** discard the filter's stderr (peers that log a line per session) */
  readonly quiet?: boolean
}

export interface Percentiles {
  readonly n: number
  readonly p50: number
  readonly p99: number
}

export interface DriveResult {
  readonly label: string
  readonly sessions: number
  readonly concurrency: number | 'paced'
  readonly rate?: number
  readonly size: MessageSize
  readonly seconds: number
  readonly sessionsPerSec: number
  readonly megabytesPerSec: number
  readonly cpuUserMs: number
  readonly cpuSysMs: number
  /** filter CPU per session (one message per session), µs, startup included (as /usr/bin/time counts it) */
  readonly cpuPerSessionUs: number
  /** the same without the filter's startup (CPU spent before register|ready) */
  readonly workCpuPerSessionUs: number
  readonly peakRssMB: number
  readonly latencyMs: Record<string, Percentiles>
  readonly decisions: Record<string, number>
  readonly errors: string[]
}

const CLK_TCK = 100

function procTimes(pid: number): { user: number; sys: number; hwmKB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const hwm = /VmHWM:\s+(\d+)/.exec(status)
  return { user: (Number(f[11]) * 1000) / CLK_TCK, sys: (Number(f[12]) * 1000) / CLK_TCK, hwmKB: hwm ? Number(hwm[1]) : 0 }
}

function percentiles(xs: number[]): Percentiles {
  if (xs.length === 0) return { n: 0, p50: 0, p99: 0 }
  const s = [...xs].sort((a, b) => a - b)
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!
  return { n: s.length, p50: round(at(0.5)), p99: round(at(0.99)) }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}

interface Waiter {
  readonly token: string
  readonly phase: string
  readonly sent: bigint
  resolve(decision: string): void
}

export async function drive(o: DriveOptions): Promise<DriveResult> {
  const version = o.version ?? '0.6'
  // Requests and answers are written and read in the session|token order of 0.5 and later.
  if (/^0\.[0-4]$/.test(version)) throw new Error(`drive: protocol ${version} (token|session order) is not supported`)
  const size = o.size ?? '4k'
  const ips = o.ips ?? 8
  const errors: string[] = []
  const latency: Record<string, number[]> = {}
  const decisions: Record<string, number> = {}
  const message = makeMessage(size)
  const stuffed = message.map((l) => (l.startsWith('.') ? '.' + l : l))
  const messageBytes = message.reduce((a, l) => a + l.length + 2, 0)

  const argv = o.netns ? ['ip', 'netns', 'exec', o.netns, ...o.command] : [...o.command]
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', o.quiet ? 'ignore' : 'inherit'], env: o.env ?? process.env })
  child.stdin.on('error', (e) => errors.push(`stdin: ${e.message}`))
  let exited = false
  child.on('exit', (code, sig) => {
    exited = true
    if (!done) errors.push(`filter exited early (${sig ?? code})`)
  })
  let done = false

  const reports = new Set<string>()
  const phases = new Set<string>()
  let ready!: () => void
  const readyP = new Promise<void>((r) => (ready = r))
  const waiting = new Map<string, Waiter>()
  const dotWaiting = new Map<string, Waiter>()
  const echoed = new Map<string, number>()

  // Lines (strings, without '\n') and ready-made blocks of lines (Buffers, each line ending
  // in '\n'), written in order once per turn of the event loop.
  let batch: (string | Buffer)[] = []
  let scheduled = false
  const flush = (): void => {
    scheduled = false
    let run: string[] = []
    for (const item of batch) {
      if (typeof item === 'string') run.push(item)
      else {
        if (run.length) child.stdin.write(run.join('\n') + '\n', 'latin1')
        run = []
        child.stdin.write(item)
      }
    }
    if (run.length) child.stdin.write(run.join('\n') + '\n', 'latin1')
    batch = []
  }
  const send = (lines: (string | Buffer)[]): void => {
    for (const l of lines) batch.push(l)
    if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
  }

  let ts = 1700000000
  const t = (): string => (ts += 0.0001).toFixed(6)

  // A message's data-lines, built once: every line's prefix
  // (filter|V|TS|smtp-in|data-line|SID|TOKEN|) has the same length, so a session copies the
  // block and stamps its own prefix at each line's offset. Like smtpd, which sends the lines
  // it read in one go with one timestamp, all lines of a message carry the same time. The
  // driver's own CPU stays well below the filter's even for 5 MB messages (building 65,000
  // strings per message made the driver the bottleneck of the MB/s figure).
  const dataPrefix = (time: string, sid: string, tok: string): string => `filter|${version}|${time}|smtp-in|data-line|${sid}|${tok}|`
  const prefixLength = dataPrefix(t(), sessionId(0), (0xd0c0000000000000n).toString(16)).length
  const lineOffsets: number[] = []
  const dataBlock = (() => {
    let total = 0
    for (const l of stuffed) total += prefixLength + l.length + 1
    const b = Buffer.allocUnsafe(total)
    let off = 0
    for (const l of stuffed) {
      lineOffsets.push(off)
      off += prefixLength
      off += b.write(l, off, 'latin1')
      b[off++] = 10
    }
    return b
  })()
  const dataLines = (sid: string, tok: string): (string | Buffer)[] => {
    const prefix = Buffer.from(dataPrefix(t(), sid, tok), 'latin1')
    if (prefix.length !== prefixLength) return stuffed.map((l) => `filter|${version}|${t()}|smtp-in|data-line|${sid}|${tok}|${l}`)
    const b = Buffer.from(dataBlock)
    for (const off of lineOffsets) prefix.copy(b, off)
    return [b]
  }
  const rep = (sid: string, event: string, ...p: string[]): string | undefined =>
    reports.has(event) || reports.has('*') ? `report|${version}|${t()}|smtp-in|${event}|${sid}${p.length ? '|' + p.join('|') : ''}` : undefined

  const onAnswer = (line: string): void => {
    if (line.startsWith('register|')) {
      const f = line.split('|')
      if (f[1] === 'ready') ready()
      else if (f[1] === 'report') reports.add(f[3]!)
      else if (f[1] === 'filter') phases.add(f[3]!)
      return
    }
    const p1 = line.indexOf('|')
    const p2 = line.indexOf('|', p1 + 1)
    const p3 = line.indexOf('|', p2 + 1)
    const kind = line.slice(0, p1)
    const sid = line.slice(p1 + 1, p2)
    const rest = line.slice(p3 + 1)
    if (kind === 'filter-result') {
      const w = waiting.get(sid)
      if (!w || line.slice(p2 + 1, p3) !== w.token) {
        errors.push(`unexpected answer: ${line.slice(0, 120)}`)
        return
      }
      waiting.delete(sid)
      const ms = Number(process.hrtime.bigint() - w.sent) / 1e6
      ;(latency[w.phase] ??= []).push(ms)
      const d = rest.split('|')[0]!
      decisions[d] = (decisions[d] ?? 0) + 1
      w.resolve(d)
    } else if (kind === 'filter-dataline') {
      if (rest === '.') onDot(sid)
      else if (o.verify) {
        const k = echoed.get(sid) ?? 0
        if (stuffed[k] !== rest && errors.length < 20) errors.push(`${sid}: line ${k} differs`)
        echoed.set(sid, k + 1)
      }
    } else errors.push(`not a protocol answer: ${line.slice(0, 120)}`)
  }
  const onDot = (sid: string): void => {
    const w = dotWaiting.get(sid)
    if (!w) {
      errors.push(`unexpected end of message for ${sid}`)
      return
    }
    dotWaiting.delete(sid)
    ;(latency.dot ??= []).push(Number(process.hrtime.bigint() - w.sent) / 1e6)
    w.resolve('.')
  }
  // Echoed data-lines are not turned into strings unless they are checked (verify): the
  // "." that ends a message is found in the bytes.
  const DATALINE = Buffer.from('filter-dataline|')
  const answers = new LineSplitter(onAnswer)
  let tail: Buffer | null = null
  const onChunk = (chunk: Buffer): void => {
    if (o.verify) return answers.push(chunk)
    const buf = tail ? Buffer.concat([tail, chunk]) : chunk
    tail = null
    let s = 0
    for (;;) {
      const e = buf.indexOf(10, s)
      if (e < 0) break
      if (e - s > DATALINE.length && buf.compare(DATALINE, 0, DATALINE.length, s, s + DATALINE.length) === 0) {
        const p2 = buf.indexOf(124, s + DATALINE.length)
        const p3 = p2 >= 0 && p2 < e ? buf.indexOf(124, p2 + 1) : -1
        if (p3 >= 0 && p3 < e) {
          if (p3 === e - 2 && buf[e - 1] === 46) onDot(buf.toString('latin1', s + DATALINE.length, p2))
          s = e + 1
          continue
        }
      }
      onAnswer(buf.toString('latin1', s, e))
      s = e + 1
    }
    if (s < buf.length) tail = Buffer.from(buf.subarray(s))
  }
  child.stdout.on('data', onChunk)

  const ask = (sid: string, phase: string, token: string, param: string, before: (string | undefined)[] = []): Promise<string> => {
    const lines = before.filter((l): l is string => l !== undefined)
    if (!phases.has(phase)) {
      if (lines.length) send(lines)
      return Promise.resolve('proceed')
    }
    return new Promise<string>((resolve) => {
      lines.push(`filter|${version}|${t()}|smtp-in|${phase}|${sid}|${token}|${param}`)
      waiting.set(sid, { token, phase, sent: process.hrtime.bigint(), resolve })
      send(lines)
    })
  }

  const runSession = async (i: number): Promise<void> => {
    const sid = sessionId(i)
    const tk = (k: number): string => (0xd0c0000000000000n + BigInt(i * 16 + k)).toString(16)
    const ip = clientIp(i, ips)
    const rdns = o.rdns?.(ip) ?? `host-${ip.replace(/\./g, '-')}.example.org`
    const msgid = (0x10000000 + (i % 0xeffffff)).toString(16)
    const end = (): void => {
      const l = rep(sid, 'link-disconnect')
      if (l) send([l])
    }
    let d = await ask(sid, 'connect', tk(0), `${rdns}|${ip}`, [rep(sid, 'link-connect', rdns, 'pass', `${ip}:${40000 + (i % 20000)}`, '127.0.0.1:25')])
    if (d === 'disconnect') return end()
    d = await ask(sid, 'ehlo', tk(1), rdns, [rep(sid, 'link-greeting', 'mx.test.example')])
    if (d === 'disconnect') return end()
    d = await ask(sid, 'mail-from', tk(2), 'alice@example.org', [rep(sid, 'link-identify', 'EHLO', rdns)])
    if (d === 'disconnect') return end()
    if (d !== 'reject') {
      d = await ask(sid, 'rcpt-to', tk(3), 'bob@example.net', [rep(sid, 'tx-begin', msgid), rep(sid, 'tx-mail', msgid, 'ok', 'alice@example.org')])
      if (d === 'disconnect') return end()
      d = await ask(sid, 'data', tk(4), '', [rep(sid, 'tx-envelope', msgid, msgid + '00000001'), rep(sid, 'tx-rcpt', msgid, 'ok', 'bob@example.net')])
      if (d === 'disconnect') return end()
      if (phases.has('data-line')) {
        const tok = tk(5)
        const dot = new Promise<string>((resolve) => dotWaiting.set(sid, { token: tok, phase: 'dot', sent: 0n, resolve }))
        send(dataLines(sid, tok))
        // The latency of "." runs from our "." to theirs: the end-of-message cost.
        const w = dotWaiting.get(sid)!
        dotWaiting.set(sid, { ...w, sent: process.hrtime.bigint() })
        send([`filter|${version}|${t()}|smtp-in|data-line|${sid}|${tok}|.`])
        await dot
      }
      d = await ask(sid, 'commit', tk(6), '', [rep(sid, 'tx-data', msgid, 'ok')])
      if (d === 'disconnect') return end()
      const after = [rep(sid, 'tx-commit', msgid, String(messageBytes)), rep(sid, 'tx-reset', msgid)]
      d = await ask(sid, 'quit', tk(7), '', after)
    } else d = await ask(sid, 'quit', tk(7), '')
    end()
  }

  const timeout = o.timeoutMs ?? 600_000
  const timer = setTimeout(() => errors.push(`timed out after ${timeout} ms`), timeout)
  send(version === '0.7' ? ['config|smtpd-version|7.8.0-portable', 'config|protocol|0.7'] : ['config|smtpd-version|6.8.0p2'])
  send(['config|smtp-session-timeout|300', 'config|subsystem|smtp-in', 'config|admd|mx.test.example', 'config|ready'])
  await readyP
  let startup = { user: 0, sys: 0, hwmKB: 0 }
  try {
    startup = procTimes(child.pid!)
  } catch {
    // the filter is gone already: reported below
  }
  const started = process.hrtime.bigint()
  if (o.rate) {
    const all: Promise<void>[] = []
    for (let i = 0; i < o.sessions; i++) {
      const due = Number(started) / 1e6 + (i * 1000) / o.rate
      const wait = due - Number(process.hrtime.bigint()) / 1e6
      if (wait > 1) await new Promise((r) => setTimeout(r, wait))
      all.push(runSession(i))
    }
    await Promise.all(all)
  } else {
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < o.sessions && errors.length < 50 && !exited) await runSession(next++)
    }
    await Promise.all(Array.from({ length: Math.min(o.concurrency, o.sessions) }, worker))
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  clearTimeout(timer)
  await new Promise((r) => setTimeout(r, 50))
  let cpu = { user: 0, sys: 0, hwmKB: 0 }
  try {
    if (!exited) cpu = procTimes(child.pid!)
  } catch (e) {
    errors.push(`cannot read /proc: ${(e as Error).message}`)
  }
  done = true
  child.stdin.end()
  await new Promise<void>((r) => (exited ? r() : child.on('exit', () => r())))
  const latencyMs = Object.fromEntries(Object.entries(latency).map(([k, v]) => [k, percentiles(v)]))
  return {
    label: o.label ?? o.command.join(' '),
    sessions: o.sessions,
    concurrency: o.rate ? 'paced' : o.concurrency,
    rate: o.rate,
    size,
    seconds: round(seconds),
    sessionsPerSec: Math.round(o.sessions / seconds),
    megabytesPerSec: round((o.sessions * messageBytes) / seconds / 1e6),
    cpuUserMs: cpu.user,
    cpuSysMs: cpu.sys,
    cpuPerSessionUs: Math.round(((cpu.user + cpu.sys) * 1000) / o.sessions),
    workCpuPerSessionUs: Math.round(((cpu.user + cpu.sys - startup.user - startup.sys) * 1000) / o.sessions),
    peakRssMB: round(cpu.hwmKB / 1024),
    latencyMs,
    decisions,
    errors,
  }
}
