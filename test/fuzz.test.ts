/**
 * Fuzz: random and mutated lines — cut fields, unknown events and phases,
 * bad versions, binary garbage, 1 MiB lines, interleaved sessions — against
 * the built filter-null process, and against an in-process chain of filters
 * with asynchronous, failing and message-holding handlers. The process must
 * stay up, every output line must be one smtpd accepts, and every
 * well-formed request must get exactly one answer. The seed is printed; set
 * FUZZ_SEED to replay a run.
 */

import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { junk, proceed, reject, type FilterDefinition } from '../lib/filter.js'
import { LineSplitter } from '../lib/lines.js'
import { Driver } from './lib/driver.js'
import { StreamBuilder } from './lib/stream.js'

const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000)
t.comment(`FUZZ_SEED=${seed}`)

/** mulberry32: a small deterministic PRNG so that a failing seed can be replayed. */
function prng(s: number): () => number {
  return () => {
    s |= 0
    s = (s + 0x6d2b79f5) | 0
    let x = Math.imul(s ^ (s >>> 15), 1 | s)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const rnd = prng(seed)
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(rnd() * 16)]).join('')
const VERSIONS = ['0.4', '0.5', '0.6', '0.7', '0.10', '1.0']
const PHASES = ['connect', 'helo', 'ehlo', 'starttls', 'auth', 'mail-from', 'rcpt-to', 'data', 'data-line', 'rset', 'quit', 'noop', 'commit', 'help', 'wiz', 'bogus-phase']
const EVENTS = ['link-connect', 'link-disconnect', 'link-identify', 'link-auth', 'tx-begin', 'tx-mail', 'tx-rcpt', 'tx-reset', 'tx-rollback', 'tx-commit', 'filter-response', 'protocol-client', 'no-such-event']

function garbage(len: number): string {
  let s = ''
  for (let i = 0; i < len; i++) {
    let c = Math.floor(rnd() * 256)
    if (c === 10) c = 13 // a '\n' would just split the line
    s += String.fromCharCode(c)
  }
  return s
}

interface Generated {
  readonly lines: string[]
  /** well-formed non-data requests: session|token keys, each owed exactly one filter-result */
  readonly owed: Map<string, number>
}

/** Independent of protocol/parse.ts: what smtpd would consider an answerable request. */
const REQUEST = /^filter\|(\d+)\.(\d+)\|[^|]*\|[^|]*\|([^|]*)\|([0-9a-f]{1,16})\|([0-9a-f]{1,16})(\||$)/

function generate(n: number, sessions: number): Generated {
  const b = new StreamBuilder('0.6')
  const sids = Array.from({ length: sessions }, () => hex(16))
  const lines: string[] = [...b.handshake()]
  for (let i = 0; i < n; i++) {
    const sid = pick(sids)
    const v = pick(VERSIONS)
    const r = rnd()
    let line: string
    if (r < 0.3) line = `filter|${v}|1700000000.${hex(6)}|smtp-in|${pick(PHASES)}|${sid}|${hex(16)}|${rnd() < 0.5 ? 'x@example.org' : garbage(Math.floor(rnd() * 40))}`
    else if (r < 0.45) line = `filter|${v}|1.0|smtp-in|data-line|${sid}|${hex(16)}|${rnd() < 0.1 ? '.' : garbage(Math.floor(rnd() * 80))}`
    else if (r < 0.65) line = `report|${v}|1.0|smtp-in|${pick(EVENTS)}|${sid}${rnd() < 0.8 ? '|' + Array.from({ length: Math.floor(rnd() * 5) }, () => garbage(Math.floor(rnd() * 12)).replace(/\|/g, '')).join('|') : ''}`
    else if (r < 0.75) {
      // a well-formed line cut at a random point
      const full = `filter|${v}|1.0|smtp-in|${pick(PHASES)}|${sid}|${hex(16)}|param`
      line = full.slice(0, Math.floor(rnd() * full.length))
    } else if (r < 0.85) line = garbage(Math.floor(rnd() * 300))
    else if (r < 0.9) line = pick(['config|ready', 'config|admd|x', 'register|ready', 'filter-result|a|b|proceed', '|||||||', ''])
    else if (r < 0.95) line = `filter|${pick(['x', '', '0', '0.', '.6', '0.6.1'])}|1|smtp-in|helo|${sid}|${hex(16)}|x`
    else line = `filter|0.6|1|smtp-in|helo|${pick([hex(17), 'XYZ', '', sid + '|'])}|${hex(16)}|x`
    lines.push(line)
  }
  // A few 1 MiB lines: a well-formed data-line and plain garbage.
  lines.splice(Math.floor(lines.length / 2), 0, `filter|0.6|1|smtp-in|data-line|${sids[0]}|${hex(16)}|${'x'.repeat(1 << 20)}`, garbage(1 << 20))
  const owed = new Map<string, number>()
  for (const l of lines) {
    const m = REQUEST.exec(l)
    if (m && m[3] !== 'data-line') owed.set(`${m[4]}|${m[5]}`, (owed.get(`${m[4]}|${m[5]}`) ?? 0) + 1)
  }
  return { lines, owed }
}

/** Every line we may write: what smtpd accepts (protocol.md §4.5). */
const ACCEPTABLE = /^(register\|(report\|smtp-in\|[a-z-]+|filter\|smtp-in\|[a-z-]+|ready)|filter-result\|[0-9a-f]{1,16}\|[0-9a-f]{1,16}\|(proceed|junk|(reject|disconnect)\|[45]\d\d [^\r\n]+|rewrite\|[^\r\n]+)|filter-dataline\|[0-9a-f]{1,16}\|[0-9a-f]{1,16}\|[^\n]*)$/

function checkAnswers(t: Test, out: string[], g: Generated): void {
  // A '\r' ending a decision line kills smtpd 6.7+; in a data-line it is message content.
  const bad = out.filter((l) => !ACCEPTABLE.test(l) || (l.endsWith('\r') && !l.startsWith('filter-dataline|')))
  t.same(bad.slice(0, 3), [], 'every output line is one smtpd accepts')
  const got = new Map<string, number>()
  for (const l of out) {
    const m = /^filter-result\|([0-9a-f]+)\|([0-9a-f]+)\|/.exec(l)
    if (!m) continue
    // Either order (0.4 answers token first): count under the request's key.
    const k = g.owed.has(`${m[1]}|${m[2]}`) ? `${m[1]}|${m[2]}` : `${m[2]}|${m[1]}`
    got.set(k, (got.get(k) ?? 0) + 1)
  }
  let missing = 0
  let extra = 0
  for (const [k, n] of g.owed) {
    const a = got.get(k) ?? 0
    if (a < n) missing++
    if (a > n) extra++
  }
  for (const k of got.keys()) if (!g.owed.has(k)) extra++
  t.equal(missing, 0, `each of ${g.owed.size} well-formed requests answered`)
  t.equal(extra, 0, 'no request answered twice, no answer to a request never made')
}

t.test('filter-null process: 12,000 fuzzed lines', async (t) => {
  const g = generate(12_000, 40)
  const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'dist/filters/null/main.js')], { stdio: ['pipe', 'pipe', 'pipe'] })
  const out: string[] = []
  const splitter = new LineSplitter((l) => out.push(l))
  child.stdout.on('data', (c: Buffer) => splitter.push(c))
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  let exitedEarly = false
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  void exit.then(() => (exitedEarly = !ended))
  let ended = false
  for (const l of g.lines) {
    if (!child.stdin.write(l + '\n', 'latin1')) await new Promise((r) => child.stdin.once('drain', r))
  }
  // A last ordinary request proves it is still answering.
  child.stdin.write('filter|0.6|1|smtp-in|helo|00000000000000aa|00000000000000bb|still.alive\n')
  await new Promise((r) => setTimeout(r, 1500))
  t.notOk(exitedEarly, 'the process stayed up')
  ended = true
  child.stdin.end()
  t.equal(await exit, 0, 'exit 0 at EOF on stdin')
  t.ok(out.includes('filter-result|00000000000000aa|00000000000000bb|proceed'), 'still answering after the fuzz')
  checkAnswers(t, out.filter((l) => !l.includes('00000000000000bb')), g)
  t.ok(stderr.split('\n').length < 200, `stderr stays short (${stderr.split('\n').length} lines): malformed-line warnings are rate-limited`)
})

t.test('in-process chain with async, failing and holding filters: 10,000 fuzzed lines', async (t) => {
  let n = 0
  const flaky: FilterDefinition = {
    name: 'flaky',
    answerTimeoutMs: 50,
    phases: {
      helo: () => {
        if (++n % 7 === 0) throw new Error('flaky')
        return proceed()
      },
      ehlo: async () => (n++ % 5 === 0 ? new Promise(() => {}) : junk()),
      'mail-from': async () => {
        await new Promise((r) => setTimeout(r, Math.floor(rnd() * 5)))
        return rnd() < 0.5 ? proceed() : reject(550, 'no')
      },
      commit: () => junk(),
    },
  }
  const holder: FilterDefinition = {
    name: 'holder',
    onFailure: 'tempfail',
    phases: { data: () => proceed() },
    data: {
      mode: 'hold',
      line: () => {
        if (rnd() < 0.001) throw new Error('line failure')
      },
      end: async () => {
        await new Promise((r) => setTimeout(r, 1))
        return { prepend: ['X-Held: yes'] }
      },
    },
  }
  const streamer: FilterDefinition = { name: 'streamer', data: { mode: 'stream', line: (_c, l, out) => out.write(l) } }
  const g = generate(10_000, 30)
  const d = new Driver([flaky, holder, streamer], { spool: { memoryLimit: 4096 } })
  for (const l of g.lines) d.send(l)
  const out = await d.take(400)
  checkAnswers(t, out, g)
})
