/**
 * filter-senderscore's policy, in-process (test/lib/driver.ts) with a
 * resolver double: decoding, delay formula, flags, registrations, decisions
 * per score and phase, the header, delays and their cap, allowlist, IPv6 and
 * unix clients, failures, and the rate-limited warnings. The real resolver
 * against a dns2 server is in senderscore-dns.test.ts.
 */

import t from 'tap'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import {
  BLOCK_TEXT,
  buildFromFlags,
  decodeAnswer,
  delayFor,
  FLAGS,
  senderscoreFilter,
  testModeReputation,
  type ScoreResolver,
  type SenderScoreOptions,
} from '../filters/senderscore/filter.js'
import type { DnsResult } from '../lib/dns.js'
import { parseFlags, UsageError } from '../lib/flags.js'
import type { Logger } from '../lib/log.js'
import { COMMON_FLAGS } from '../lib/main.js'
import { CidrSet } from '../lib/net.js'
import { registrations } from '../lib/runtime.js'
import { Driver } from './lib/driver.js'
import { sid, tok } from './lib/stream.js'

const BLOCK = `disconnect|550 ${BLOCK_TEXT}`

/** A logger that keeps its JSON lines. */
function captureLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>)
      cb()
    },
  })
  return { log: pino({ level: 'debug', base: undefined, timestamp: false }, stream) as unknown as Logger, lines }
}

/** A resolver double: name → result (or a function of it), optionally late; counts queries. */
class FakeResolver implements ScoreResolver {
  readonly asked: string[] = []
  constructor(
    private readonly answers: Record<string, DnsResult | { delayMs: number; result: DnsResult } | 'throw'>,
  ) {}

  a(name: string): Promise<DnsResult> {
    this.asked.push(name)
    const a = this.answers[name]
    if (a === 'throw') return Promise.reject(new Error('boom'))
    if (a === undefined) return Promise.resolve({ ok: false, error: 'nxdomain', message: 'ENOTFOUND', temporary: false })
    if ('delayMs' in a) return new Promise((r) => setTimeout(r, a.delayMs, a.result))
    return Promise.resolve(a)
  }
}

const ok = (...values: string[]): DnsResult => ({ ok: true, values, ttl: 60 })
const fail = (error: 'servfail' | 'timeout' | 'refused' | 'error'): DnsResult => ({ ok: false, error, message: error, temporary: true })

/** name of a.b.c.d in the SenderScore zone */
const q = (ip: string) => `${ip.split('.').reverse().join('.')}.score.senderscore.com`

const SCORES: Record<string, DnsResult | { delayMs: number; result: DnsResult } | 'throw'> = {
  [q('192.0.2.5')]: ok('127.0.4.5'),
  [q('192.0.2.50')]: ok('127.0.4.50'),
  [q('192.0.2.95')]: ok('127.0.4.95'),
  [q('192.0.2.100')]: ok('127.0.4.100'),
  [q('192.0.2.0')]: ok('127.0.4.0'),
  [q('192.0.2.127')]: ok('127.255.255.255'),
  [q('192.0.2.128')]: ok('127.255.255.254'),
  [q('192.0.2.66')]: ok('10.0.0.1'),
  [q('192.0.2.67')]: ok('127.0.4.5', '127.0.4.6'),
  [q('192.0.2.68')]: ok('127.0.4.101'),
  [q('192.0.2.23')]: fail('servfail'),
  [q('192.0.2.24')]: fail('timeout'),
  [q('192.0.2.25')]: 'throw',
  [q('192.0.2.30')]: { delayMs: 300, result: ok('127.0.4.30') },
}

async function filter(over: Partial<SenderScoreOptions> = {}, answers = SCORES) {
  const resolver = new FakeResolver(answers)
  const cap = captureLog()
  const def = senderscoreFilter({
    blockBelow: -1,
    blockPhase: 'connect',
    junkBelow: -1,
    slowFactor: -1,
    scoreHeader: false,
    testMode: false,
    maxDelayMs: 30_000,
    resolver,
    log: cap.log,
    ...over,
  })
  const d = new Driver([def])
  d.handshake()
  await d.take() // the registrations
  return { d, resolver, logs: cap.lines, b: d.b }
}

/** link-connect + connect for session n from src (`ip:port`, `[v6]:port` or `unix:…`). */
function connect(d: Driver, n: number, src: string): void {
  const ip = src.startsWith('unix:') ? 'local' : src.replace(/:\d+$/, '')
  d.send(d.b.linkConnect(sid(n), 'client.example', 'pass', src), d.b.connect(sid(n), tok(n * 16), 'client.example', ip))
}

t.test('decodeAnswer: only a single 127.0.X.Y with Y <= 100 is a score', async (t) => {
  t.same(decodeAnswer(['127.0.4.95']), { kind: 'score', score: 95, category: 4 })
  t.same(decodeAnswer(['127.0.0.0']), { kind: 'score', score: 0, category: 0 })
  t.same(decodeAnswer(['127.0.255.100']), { kind: 'score', score: 100, category: 255 })
  t.same(decodeAnswer(['127.0.4.101']), { kind: 'invalid', answer: '127.0.4.101' })
  t.same(decodeAnswer(['127.255.255.255']), { kind: 'refused', answer: '127.255.255.255' }, 'the Go filter reads score 127')
  t.same(decodeAnswer(['127.255.255.254']), { kind: 'refused', answer: '127.255.255.254' })
  t.same(decodeAnswer(['127.1.0.5']), { kind: 'invalid', answer: '127.1.0.5' })
  t.same(decodeAnswer(['10.0.4.5']), { kind: 'invalid', answer: '10.0.4.5' }, 'a hijacking resolver')
  t.same(decodeAnswer(['127.0.4.5', '127.0.4.6']), { kind: 'invalid', answer: '127.0.4.5,127.0.4.6' }, 'exactly one address, as the Go filter')
  t.same(decodeAnswer([]), { kind: 'invalid', answer: '' })
  t.same(decodeAnswer(['::1']), { kind: 'invalid', answer: '::1' })
  t.same(decodeAnswer(['127.0.4']), { kind: 'invalid', answer: '127.0.4' })
})

t.test('delayFor: upstream HEAD formula factor * (100 - score) / 100, integer, capped', async (t) => {
  t.equal(delayFor(0, 5000, 30_000), 5000, 'score 0 is the worst (PR #26)')
  t.equal(delayFor(95, 5000, 30_000), 250, 'the seed: a score-95 client waits 250 ms per answer')
  t.equal(delayFor(50, 5000, 30_000), 2500)
  t.equal(delayFor(100, 5000, 30_000), 0)
  t.equal(delayFor(-1, 5000, 30_000), 0, 'unknown score: no delay')
  t.equal(delayFor(10, -1, 30_000), 0, 'off by default')
  t.equal(delayFor(10, 0, 30_000), 0)
  t.equal(delayFor(33, 150, 30_000), 100, 'trunc(150 * 67 / 100) = trunc(100.5)')
  t.equal(delayFor(0, 100_000, 30_000), 30_000, 'capped by -maxDelay')
  t.equal(delayFor(0, 100_000, 0), 0, '-maxDelay 0 disables delays')
})

t.test('testModeReputation: last octet is the score, third the category, 255 no data', async (t) => {
  t.same(testModeReputation('1.2.3.42'), { score: 42, category: 3, via: 'test' })
  t.same(testModeReputation('1.2.3.0'), { score: 0, category: 3, via: 'test' })
  t.equal(testModeReputation('255.255.255.255').score, -1)
  t.equal(testModeReputation('1.2.3.200').score, -1, 'out of range: unknown (Go: int8 overflow, 127)')
  t.equal(testModeReputation('2001:db8::1').score, -1)
})

t.test('flags: Go syntax, the -whitelist alias, validation at startup', async (t) => {
  const specs = [...FLAGS, ...COMMON_FLAGS]
  const parse = (...argv: string[]) => parseFlags(argv, specs).values
  t.match(parse('-blockBelow', '10', '-junkBelow', '70', '-slowFactor', '5000'), { blockBelow: 10, junkBelow: 70, slowFactor: 5000, blockPhase: 'connect', scoreHeader: undefined })
  t.match(parse('-blockBelow=10', '--junkBelow=70', '--slowFactor', '5000', '-scoreHeader'), { blockBelow: 10, junkBelow: 70, slowFactor: 5000, scoreHeader: true })
  t.match(parse('-scoreHeader=false', '-testMode=true'), { scoreHeader: false, testMode: true })
  t.match(parse('-whitelist', '/etc/x'), { allowlist: '/etc/x' }, '-whitelist is -allowlist')
  t.match(parse('--whitelist=/etc/y'), { allowlist: '/etc/y' })
  t.match(parse('-blockBelow', '-1'), { blockBelow: -1 }, 'a negative value after the flag')
  t.same(parse('-nameserver', '127.0.0.1:5353', '-nameserver', '[::1]:53').nameserver, ['127.0.0.1:5353', '[::1]:53'])
  t.match(parse(), { blockBelow: -1, junkBelow: -1, slowFactor: -1, maxDelay: 30_000, dnsTimeout: 2000, maxInFlight: 256, cacheSize: 10_000 })
  for (const p of ['connect', 'helo', 'ehlo', 'starttls', 'auth', 'mail-from', 'rcpt-to', 'quit']) t.equal(parse('-blockPhase', p).blockPhase, p)
  for (const bad of [
    ['-blockPhase', 'data-line'],
    ['-blockPhase', 'data'],
    ['-blockPhase', 'commit'],
    ['-blockPhase', 'CONNECT'],
    ['-blockBelow', 'ten'],
    ['-maxDelay', '300000'],
    ['-maxDelay', '-1'],
    ['-dnsTimeout', '0'],
    ['-nameserver', 'localhost'],
    ['-nameserver', '127.0.0.1:0'],
    ['-cacheSize', '0'],
    ['-maxInFlight', '0'],
    ['-nosuchflag'],
    ['-slowFactor'],
  ]) {
    t.throws(() => parse(...bad), UsageError, bad.join(' '))
  }
})

t.test('build: an unreadable or bad allowlist is a startup error naming the file', async (t) => {
  const { log } = captureLog()
  const dir = t.testdir({ good: '192.0.2.0/24 # ours\n\n2001:db8::/32\n', bad: '192.0.2.1\nnot-an-ip\n' })
  t.doesNotThrow(() => buildFromFlags({ allowlist: `${dir}/good`, testMode: true }, log))
  t.throws(() => buildFromFlags({ allowlist: `${dir}/bad`, testMode: true }, log), { name: 'StartupError', message: /bad:2: not an IP address/ })
  t.throws(() => buildFromFlags({ allowlist: `${dir}/missing`, testMode: true }, log), { name: 'StartupError', message: /missing: cannot read/ })
})

t.test('registrations: connect always; other phases only when they can answer differently', async (t) => {
  const phasesOf = (over: Partial<SenderScoreOptions>) =>
    registrations([senderscoreFilter({ blockBelow: -1, blockPhase: 'connect', junkBelow: -1, slowFactor: -1, scoreHeader: false, testMode: true, maxDelayMs: 30_000, log: captureLog().log, ...over })])
      .filter((l) => l.startsWith('register|filter|'))
      .map((l) => l.split('|')[3])
  t.same(phasesOf({}), ['connect'])
  t.same(phasesOf({ junkBelow: 70 }), ['connect'])
  t.same(phasesOf({ blockBelow: 10, blockPhase: 'mail-from' }), ['connect', 'mail-from'])
  t.same(phasesOf({ blockBelow: -1, blockPhase: 'mail-from' }), ['connect'], 'no block, no block phase')
  t.same(phasesOf({ scoreHeader: true }), ['connect', 'data-line'])
  t.same(phasesOf({ slowFactor: 5000 }), ['connect', 'helo', 'ehlo', 'starttls', 'auth', 'mail-from', 'rcpt-to', 'data', 'quit', 'commit'])
  const reports = registrations([senderscoreFilter({ blockBelow: -1, blockPhase: 'connect', junkBelow: -1, slowFactor: -1, scoreHeader: false, testMode: true, maxDelayMs: 0, log: captureLog().log })])
    .filter((l) => l.startsWith('register|report|'))
  t.same(reports, ['register|report|smtp-in|link-connect', 'register|report|smtp-in|link-disconnect'], 'the Go filter\'s reports')
})

t.test('connect: block > junk > proceed, by score, with the Go text', async (t) => {
  const { d } = await filter({ blockBelow: 10, junkBelow: 70 })
  connect(d, 1, '192.0.2.5:4000')
  connect(d, 2, '192.0.2.50:4000')
  connect(d, 3, '192.0.2.95:4000')
  connect(d, 4, '192.0.2.22:4000') // NXDOMAIN
  connect(d, 5, '192.0.2.0:4000')
  const out = await d.take()
  t.same(out.sort(), [
    d.b.result(sid(1), tok(16), BLOCK),
    d.b.result(sid(2), tok(32), 'junk'),
    d.b.result(sid(3), tok(48), 'proceed'),
    d.b.result(sid(4), tok(64), 'proceed'),
    d.b.result(sid(5), tok(80), BLOCK),
  ].sort())
})

t.test('block phase mail-from: junk at connect, disconnect at mail-from, others proceed', async (t) => {
  const { d, b } = await filter({ blockBelow: 20, junkBelow: 70, blockPhase: 'mail-from' })
  connect(d, 1, '192.0.2.5:4000')
  t.same(await d.take(), [b.result(sid(1), tok(16), 'junk')], 'the recording ss-10-block-mail-from')
  d.send(b.request(sid(1), 'mail-from', tok(17), 'a@example.org'))
  t.same(await d.take(), [b.result(sid(1), tok(17), BLOCK)])
  connect(d, 2, '192.0.2.95:4000')
  d.send(b.request(sid(2), 'mail-from', tok(33), 'a@example.org'))
  t.same(await d.take(), [b.result(sid(2), tok(32), 'proceed'), b.result(sid(2), tok(33), 'proceed')])
})

t.test('unknown scores are never blocked, junked, slowed or written', async (t) => {
  const { d, b, resolver } = await filter({ blockBelow: 101, junkBelow: 101, slowFactor: 100_000, scoreHeader: true })
  const cases = ['192.0.2.22:1', '192.0.2.23:1', '192.0.2.24:1', '192.0.2.25:1', '192.0.2.127:1', '192.0.2.128:1', '192.0.2.66:1', '192.0.2.67:1', '192.0.2.68:1', '[2001:db8::5]:1', 'unix:/var/run/smtpd.sock']
  cases.forEach((src, i) => connect(d, i + 1, src))
  const started = Date.now()
  const out = await d.take(20)
  t.ok(Date.now() - started < 1000, 'no delay')
  t.same(out.sort(), cases.map((_, i) => b.result(sid(i + 1), tok((i + 1) * 16), 'proceed')).sort())
  d.send(b.data(sid(1), tok(17), 'Subject: x\n\nbody\n'))
  t.same(await d.take(), [b.dataline(sid(1), tok(17), 'Subject: x'), b.dataline(sid(1), tok(17), ''), b.dataline(sid(1), tok(17), 'body'), b.dataline(sid(1), tok(17), '.')], 'no header')
  t.equal(resolver.asked.length, 9, 'no query for the IPv6 and unix clients')
  t.notOk(resolver.asked.some((n) => n.includes(':')))
})

t.test('allowlist: listed clients score 100 without a query, IPv4 and IPv6', async (t) => {
  const { d, b, resolver } = await filter({ blockBelow: 10, junkBelow: 70, slowFactor: 5000, scoreHeader: true, allowlist: new CidrSet(['192.0.2.0/28', '2001:db8::/32']) })
  connect(d, 1, '192.0.2.5:1')
  connect(d, 2, '[2001:db8::7]:1')
  t.same((await d.take()).sort(), [b.result(sid(1), tok(16), 'proceed'), b.result(sid(2), tok(32), 'proceed')].sort())
  t.same(resolver.asked, [])
  d.send(b.data(sid(1), tok(17), 'Subject: x\n'))
  t.equal((await d.take())[0], b.dataline(sid(1), tok(17), 'X-SenderScore: 100'))
})

t.test('IPv4-mapped IPv6 clients are scored as IPv4', async (t) => {
  const { d, b, resolver } = await filter({ blockBelow: 10 })
  connect(d, 1, '[::ffff:192.0.2.5]:1')
  t.same(await d.take(), [b.result(sid(1), tok(16), BLOCK)])
  t.same(resolver.asked, ['5.2.0.192.score.senderscore.com'])
})

t.test('-scoreHeader: first line of every message, also an empty one', async (t) => {
  const { d, b } = await filter({ scoreHeader: true })
  connect(d, 1, '192.0.2.95:1')
  await d.take()
  d.send(b.data(sid(1), tok(17), 'Subject: one\n\n.dot\n'))
  t.same(await d.take(), [
    b.dataline(sid(1), tok(17), 'X-SenderScore: 95'),
    b.dataline(sid(1), tok(17), 'Subject: one'),
    b.dataline(sid(1), tok(17), ''),
    b.dataline(sid(1), tok(17), '..dot'),
    b.dataline(sid(1), tok(17), '.'),
  ], 'header first; stuffing kept')
  d.send(b.data(sid(1), tok(17), 'Subject: two\n'))
  t.same((await d.take())[0], b.dataline(sid(1), tok(17), 'X-SenderScore: 95'), 'the second message of the session too (the Go filter: first only)')
  d.send(b.request(sid(1), 'data-line', tok(17), '.'))
  t.same(await d.take(), [b.dataline(sid(1), tok(17), 'X-SenderScore: 95'), b.dataline(sid(1), tok(17), '.')], 'empty message (upstream 3000-headers.sh)')
})

t.test('delays: every registered phase but data-line, after the lookup', async (t) => {
  const { d, b } = await filter({ slowFactor: 400, blockBelow: 10, blockPhase: 'rcpt-to' })
  // score 50: 200 ms per answer
  connect(d, 1, '192.0.2.50:1')
  const t0 = Date.now()
  t.same(await d.take(100), [], 'not before the delay')
  t.same(await d.take(150), [b.result(sid(1), tok(16), 'proceed')])
  t.ok(Date.now() - t0 >= 195, `connect answered after ${Date.now() - t0} ms`)
  for (const [k, phase, param] of [[1, 'helo', 'x'], [2, 'ehlo', 'x'], [3, 'starttls', ''], [4, 'auth', 'PLAIN'], [5, 'mail-from', 'a@b'], [6, 'rcpt-to', 'c@d'], [7, 'data', ''], [9, 'commit', ''], [10, 'quit', '']] as const) {
    const t1 = Date.now()
    d.send(b.request(sid(1), phase, tok(16 + k), param))
    t.same(await d.take(100), [], `${phase}: not yet`)
    t.same(await d.take(150), [b.result(sid(1), tok(16 + k), 'proceed')], `${phase}: after ~200 ms`)
    t.ok(Date.now() - t1 >= 195, `${phase} answered after ${Date.now() - t1} ms`)
  }
  // score 5, blocked at rcpt-to: 380 ms, then disconnect
  connect(d, 2, '192.0.2.5:1')
  await d.take(400)
  const t2 = Date.now()
  d.send(b.request(sid(2), 'rcpt-to', tok(40), 'c@d'))
  t.same(await d.take(300), [])
  t.same(await d.take(150), [b.result(sid(2), tok(40), BLOCK)], 'the block is delayed too')
  t.ok(Date.now() - t2 >= 375)
})

t.test('delays never hold other sessions, and data-lines are never delayed', async (t) => {
  const { d, b } = await filter({ slowFactor: 1000, scoreHeader: true })
  connect(d, 1, '192.0.2.5:1') // 950 ms
  connect(d, 2, '192.0.2.100:1') // 0 ms
  t.same(await d.take(), [b.result(sid(2), tok(32), 'proceed')], 'score 100 answers at once')
  d.send(b.request(sid(2), 'data', tok(33)))
  t.same(await d.take(), [b.result(sid(2), tok(33), 'proceed')])
  const t0 = Date.now()
  d.send(b.data(sid(2), tok(34), 'a\n'))
  t.same(await d.take(), [b.dataline(sid(2), tok(34), 'X-SenderScore: 100'), b.dataline(sid(2), tok(34), 'a'), b.dataline(sid(2), tok(34), '.')])
  t.ok(Date.now() - t0 < 900, "data-lines at once, while session 1 waits 950 ms")
  t.same(await d.take(1000), [b.result(sid(1), tok(16), 'proceed')])
})

t.test('-maxDelay caps each answer', async (t) => {
  const { d, b } = await filter({ slowFactor: 100_000, maxDelayMs: 150 })
  connect(d, 1, '192.0.2.0:1') // 100 s uncapped
  const t0 = Date.now()
  t.same(await d.take(300), [b.result(sid(1), tok(16), 'proceed')])
  const took = Date.now() - t0
  t.ok(took >= 145 && took < 1000, `${took} ms`)
})

t.test('a slow lookup holds only its own session', async (t) => {
  const { d, b } = await filter({ blockBelow: 10 })
  connect(d, 1, '192.0.2.30:1') // 300 ms lookup
  connect(d, 2, '192.0.2.5:1')
  t.same(await d.take(), [b.result(sid(2), tok(32), BLOCK)])
  t.same(await d.take(350), [b.result(sid(1), tok(16), 'proceed')])
})

t.test('the lookup starts at link-connect, once; a connect without link-connect looks up itself', async (t) => {
  const { d, b, resolver } = await filter({ blockBelow: 10 })
  d.send(b.linkConnect(sid(1), 'x', 'pass', '192.0.2.5:1'))
  t.same(resolver.asked, [q('192.0.2.5')], 'asked before the connect request')
  d.send(b.connect(sid(1), tok(16), 'x', '192.0.2.5'))
  t.same(await d.take(), [b.result(sid(1), tok(16), BLOCK)])
  t.equal(resolver.asked.length, 1)
  d.send(b.connect(sid(2), tok(32), 'x', '192.0.2.5'))
  t.same(await d.take(), [b.result(sid(2), tok(32), BLOCK)])
  d.send(b.request(sid(3), 'mail-from', tok(48), 'a@b'))
  t.same(await d.take(), [b.result(sid(3), tok(48), 'proceed')], 'a session never announced, at an unhandled phase: proceed, no crash')
})

t.test('verdict log: one info line per session; loud warnings at most once a minute', async (t) => {
  let now = 1_000_000
  const cap = captureLog()
  const def = senderscoreFilter({
    blockBelow: 10, blockPhase: 'connect', junkBelow: 70, slowFactor: -1, scoreHeader: false, testMode: false, maxDelayMs: 0,
    resolver: new FakeResolver(SCORES), log: cap.log, now: () => now,
  })
  const d = new Driver([def], { logLevel: 'silent' })
  d.handshake()
  await d.take()
  for (let i = 1; i <= 5; i++) connect(d, i, '192.0.2.127:1')
  await d.take()
  const refused = () => cap.lines.filter((l) => String(l.msg).startsWith('SenderScore refuses this resolver'))
  t.equal(refused().length, 1, 'five refused answers, one line')
  t.equal(refused()[0]!.level, 50, 'at error level')
  t.match(refused()[0], { answer: '127.255.255.255' })
  now += 61_000
  connect(d, 6, '192.0.2.128:1')
  await d.take()
  t.equal(refused().length, 2, 'again after a minute')
  t.match(refused()[1], { suppressed: 4, answer: '127.255.255.254' }, 'with the count held back')
  connect(d, 7, '192.0.2.23:1')
  connect(d, 8, '192.0.2.23:1')
  await d.take()
  t.equal(cap.lines.filter((l) => l.error === 'servfail').length, 1, 'DNS failures: one warning')
})

t.test('verdict line fields', async (t) => {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({ write(c: Buffer, _e, cb) { for (const l of c.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>); cb() } })
  const { Runtime } = await import('../lib/runtime.js')
  const { ProtocolWriter } = await import('../lib/writer.js')
  const { PassThrough } = await import('node:stream')
  const log = pino({ level: 'info', base: undefined, timestamp: false }, stream) as unknown as Logger
  const def = senderscoreFilter({ blockBelow: 10, blockPhase: 'mail-from', junkBelow: 70, slowFactor: 100, scoreHeader: false, testMode: false, maxDelayMs: 30_000, resolver: new FakeResolver(SCORES), log })
  const rt = new Runtime({ filters: [def], writer: new ProtocolWriter(new PassThrough()), log })
  const d = new Driver([def])
  for (const l of d.b.handshake()) rt.line(l)
  rt.line(d.b.linkConnect(sid(1), 'x', 'pass', '192.0.2.5:1'))
  rt.line(d.b.connect(sid(1), tok(16), 'x', '192.0.2.5'))
  await new Promise((r) => setTimeout(r, 150))
  rt.line(d.b.request(sid(1), 'mail-from', tok(17), 'a@b'))
  rt.line(d.b.linkConnect(sid(2), 'x', 'pass', '[2001:db8::1]:1'))
  rt.line(d.b.connect(sid(2), tok(32), 'x', '[2001:db8::1]'))
  await new Promise((r) => setTimeout(r, 150))
  const v = lines.filter((l) => l.msg === 'verdict')
  t.same(v, [
    { level: 30, session: sid(1), addr: '192.0.2.5', score: 5, category: 4, via: 'dns', action: 'junk', delayMs: 95, msg: 'verdict' },
    { level: 30, session: sid(1), addr: '192.0.2.5', score: 5, category: 4, via: 'dns', phase: 'mail-from', action: 'disconnect', delayMs: 95, msg: 'verdict' },
    { level: 30, session: sid(2), addr: '2001:db8::1', score: null, via: 'none', reason: 'IPv6', action: 'proceed', msg: 'verdict' },
  ])
  rt.close()
})

t.test('-testMode answers in input order, delays included', async (t) => {
  const def = senderscoreFilter({ blockBelow: 10, blockPhase: 'connect', junkBelow: 70, slowFactor: 200, scoreHeader: false, testMode: true, maxDelayMs: 30_000, log: captureLog().log })
  const d = new Driver([def])
  d.handshake()
  await d.take()
  connect(d, 1, '1.2.3.50:1') // 100 ms
  connect(d, 2, '1.2.3.100:1') // 0 ms, but after session 1
  connect(d, 3, '1.2.3.5:1') // 190 ms
  t.same(await d.take(450), [d.b.result(sid(1), tok(16), 'junk'), d.b.result(sid(2), tok(32), 'proceed'), d.b.result(sid(3), tok(48), BLOCK)])
})

t.test('protocol 0.4 and 0.7 orders', async (t) => {
  for (const version of ['0.4', '0.7']) {
    const def = senderscoreFilter({ blockBelow: 10, blockPhase: 'connect', junkBelow: 70, slowFactor: -1, scoreHeader: true, testMode: false, maxDelayMs: 0, resolver: new FakeResolver(SCORES), log: captureLog().log })
    const d = new Driver([def], { version })
    d.handshake()
    await d.take()
    connect(d, 1, '192.0.2.50:1')
    d.send(d.b.data(sid(1), tok(17), 'a\n'))
    t.same(await d.take(), [d.b.result(sid(1), tok(16), 'junk'), d.b.dataline(sid(1), tok(17), 'X-SenderScore: 50'), d.b.dataline(sid(1), tok(17), 'a'), d.b.dataline(sid(1), tok(17), '.')], version)
  }
})
