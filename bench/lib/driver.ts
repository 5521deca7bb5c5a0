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

  let batch: string[] = []
  let scheduled = false
  const send = (lines: string[]): void => {
    for (const l of lines) batch.push(l)
    if (!scheduled) {
      scheduled = true
      setImmediate(() => {
        scheduled = false
        const data = batch.join('\n') + '\n'
        batch = []
        child.stdin.write(data, 'latin1')
      })
    }
  }

  let ts = 1700000000
  const t = (): string => (ts += 0.0001).toFixed(6)
  const rep = (sid: string, event: string, ...p: string[]): string | undefined =>
    reports.has(event) || reports.has('*') ? `report|${version}|${t()}|smtp-in|${event}|${sid}${p.length ? '|' + p.join('|') : ''}` : undefined

  const answers = new LineSplitter((line) => {
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
      if (rest === '.') {
        const w = dotWaiting.get(sid)
        if (!w) {
          errors.push(`unexpected end of message for ${sid}`)
          return
        }
        dotWaiting.delete(sid)
        ;(latency.dot ??= []).push(Number(process.hrtime.bigint() - w.sent) / 1e6)
        w.resolve('.')
      } else if (o.verify) {
        const k = echoed.get(sid) ?? 0
        if (stuffed[k] !== rest && errors.length < 20) errors.push(`${sid}: line ${k} differs`)
        echoed.set(sid, k + 1)
      }
    } else errors.push(`not a protocol answer: ${line.slice(0, 120)}`)
  })
  child.stdout.on('data', (c: Buffer) => answers.push(c))

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
        const lines = stuffed.map((l) => `filter|${version}|${t()}|smtp-in|data-line|${sid}|${tok}|${l}`)
        const dot = new Promise<string>((resolve) => dotWaiting.set(sid, { token: tok, phase: 'dot', sent: 0n, resolve }))
        send(lines)
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
