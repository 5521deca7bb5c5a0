/**
 * filter-senderscore (the built executable) against a hermetic DNS: a dns2
 * zone server on 127.0.0.1 with a random port, given with -nameserver. It
 * answers d.c.b.a.score.senderscore.com with fixture scores, NXDOMAIN,
 * SERVFAIL, 5-second answers and 127.255.255.255. Proves: decisions per
 * score, A-only queries, cache and coalescing, fail-open on errors and
 * timeouts, the loud 127.255.255.255 log, and that a 5 s answer for one
 * session does not delay another.
 */

import t from 'tap'
import { startZoneServer, type ZoneServer } from './lib/dns-zone-server.js'
import type { Zone } from './lib/zone.js'
import { built, FilterProc } from './fixtures/senderscore/proc.js'

const BLOCK = 'disconnect|550 your IP reputation is too low for this MX'
const q = (ip: string) => `${ip.split('.').reverse().join('.')}.score.senderscore.com`

const ZONE: Zone = {
  [q('192.0.2.5')]: { A: ['127.0.4.5'] },
  [q('192.0.2.50')]: { A: ['127.0.4.50'] },
  [q('192.0.2.95')]: { A: ['127.0.4.95'] },
  [q('192.0.2.23')]: { rcode: 'SERVFAIL' },
  [q('192.0.2.30')]: { A: ['127.0.4.5'], delayMs: 5000 },
  [q('192.0.2.40')]: { A: ['127.255.255.255'] },
  [q('192.0.2.41')]: { A: ['127.255.255.255'] },
  [q('192.0.2.60')]: { A: ['127.0.4.60'], ttl: 300 },
  // 192.0.2.22: absent, NXDOMAIN
}

let dns: ZoneServer
t.before(async () => {
  dns = await startZoneServer(ZONE, { port: 0, host: '127.0.0.1' })
})
t.teardown(() => dns?.close())

let n = 0
/** A session's link-connect and connect request (protocol 0.6, as smtpd 6.8). */
function session(ip: string): { sid: string; tok: string; lines: string[] } {
  const sid = (0x5e55000000000000n + BigInt(++n)).toString(16)
  const tok = (0x70c0000000000000n + BigInt(n)).toString(16)
  return {
    sid,
    tok,
    lines: [
      `report|0.6|1700000000.000001|smtp-in|link-connect|${sid}|client.example|pass|${ip}:40000|127.0.0.1:25`,
      `filter|0.6|1700000000.000002|smtp-in|connect|${sid}|${tok}|client.example|${ip}`,
    ],
  }
}
const result = (s: { sid: string; tok: string }, d: string) => `filter-result|${s.sid}|${s.tok}|${d}`

function start(args: string[]): FilterProc {
  const p = new FilterProc(['-nameserver', `127.0.0.1:${dns.port}`, ...args])
  p.send('config|smtpd-version|6.8.0p2', 'config|smtp-session-timeout|300', 'config|subsystem|smtp-in', 'config|ready')
  return p
}

t.test('built first', async (t) => {
  t.ok(built(), 'npm run build has been run')
})

t.test('decisions from DNS scores; unknown scores proceed', async (t) => {
  dns.clearQueries()
  const p = start(['-blockBelow', '10', '-junkBelow', '70', '-scoreHeader'])
  await p.registered()
  const s5 = session('192.0.2.5')
  const s50 = session('192.0.2.50')
  const s95 = session('192.0.2.95')
  const nx = session('192.0.2.22')
  const sf = session('192.0.2.23')
  p.send(s5.lines, s50.lines, s95.lines, nx.lines, sf.lines)
  await p.waitFor(result(s5, BLOCK))
  await p.waitFor(result(s50, 'junk'))
  await p.waitFor(result(s95, 'proceed'))
  await p.waitFor(result(nx, 'proceed'))
  await p.waitFor(result(sf, 'proceed'))
  p.send(`filter|0.6|1700000000.000003|smtp-in|data-line|${s95.sid}|aaaa|Subject: hi`, `filter|0.6|1700000000.000004|smtp-in|data-line|${s95.sid}|aaaa|.`)
  await p.waitFor(`filter-dataline|${s95.sid}|aaaa|.`)
  const data = p.answers().filter((l) => l.startsWith('filter-dataline'))
  t.same(data, [`filter-dataline|${s95.sid}|aaaa|X-SenderScore: 95`, `filter-dataline|${s95.sid}|aaaa|Subject: hi`, `filter-dataline|${s95.sid}|aaaa|.`])
  t.equal((await p.end()).code, 0)
  const verdicts = p.logs().filter((l) => l.msg === 'verdict')
  t.match(verdicts.find((l) => l.session === s5.sid), { addr: '192.0.2.5', score: 5, category: 4, via: 'dns', action: 'disconnect' })
  t.match(verdicts.find((l) => l.session === nx.sid), { score: null, reason: 'no data', action: 'proceed' })
  t.match(verdicts.find((l) => l.session === sf.sid), { score: null, reason: 'servfail', action: 'proceed' })
  t.ok(p.logs().some((l) => l.level === 'warn' && l.error === 'servfail'), 'the failure is logged')
  const types = new Set(dns.queries().map((e) => e.type))
  t.same([...types], ['A'], 'A queries only (no AAAA): half the quota of the Go filter')
})

t.test('127.255.255.255: unknown, logged loudly once', async (t) => {
  const p = start(['-blockBelow', '101', '-junkBelow', '101', '-scoreHeader'])
  await p.registered()
  const a = session('192.0.2.40')
  const b = session('192.0.2.41')
  p.send(a.lines, b.lines)
  await p.waitFor(result(a, 'proceed'))
  await p.waitFor(result(b, 'proceed'))
  await p.end()
  const loud = p.logs().filter((l) => String(l.msg).startsWith('SenderScore refuses this resolver'))
  t.equal(loud.length, 1, 'one line for two refused answers within a minute')
  t.equal(loud[0]?.level, 'error')
  t.match(p.logs().filter((l) => l.msg === 'verdict'), [{ score: null, reason: 'refused (127.255.255.255)' }, { score: null, reason: 'refused (127.255.255.255)' }])
})

t.test('cache and coalescing: one query per name per TTL, NXDOMAIN included', async (t) => {
  dns.clearQueries()
  const p = start(['-blockBelow', '10'])
  await p.registered()
  // Three sessions from one IP at once: one query in flight.
  const same = [session('192.0.2.60'), session('192.0.2.60'), session('192.0.2.60')]
  p.send(same.flatMap((s) => s.lines))
  for (const s of same) await p.waitFor(result(s, 'proceed'))
  // Later sessions: from the cache.
  const again = session('192.0.2.60')
  p.send(again.lines)
  await p.waitFor(result(again, 'proceed'))
  const nx1 = session('192.0.2.22')
  p.send(nx1.lines)
  await p.waitFor(result(nx1, 'proceed'))
  const nx2 = session('192.0.2.22')
  p.send(nx2.lines)
  await p.waitFor(result(nx2, 'proceed'))
  await p.end()
  const asked = dns.queries().map((e) => `${e.type} ${e.name}`)
  t.same(asked, [`A ${q('192.0.2.60')}`, `A ${q('192.0.2.22')}`], 'one query each')
})

t.test('a lookup that times out fails open, after -dnsTimeout', async (t) => {
  const p = start(['-blockBelow', '10', '-dnsTimeout', '1000'])
  await p.registered()
  const slow = session('192.0.2.30')
  const sent = p.now()
  p.send(slow.lines)
  const got = await p.waitFor(result(slow, 'proceed'), 5000)
  const took = got.at - sent
  t.ok(took >= 950 && took < 2500, `answered after ${Math.round(took)} ms (timeout 1000 ms), not the 5 s answer`)
  await p.end()
  t.match(p.logs().find((l) => l.msg === 'verdict'), { score: null, reason: 'timeout', action: 'proceed' })
})

t.test('a 5 s answer for one session does not delay another', async (t) => {
  dns.clearQueries()
  const p = start(['-blockBelow', '10', '-junkBelow', '70', '-dnsTimeout', '12000'])
  await p.registered()
  const slow = session('192.0.2.30') // answered after 5 s: score 5
  const t0 = p.now()
  p.send(slow.lines)
  // Other sessions arrive while the slow one waits.
  const fast = [session('192.0.2.50'), session('192.0.2.95'), session('192.0.2.5'), session('192.0.2.22')]
  await new Promise((r) => setTimeout(r, 100))
  const t1 = p.now()
  p.send(fast.flatMap((s) => s.lines))
  const answers = await Promise.all(fast.map((s, i) => p.waitFor(result(s, ['junk', 'proceed', BLOCK, 'proceed'][i]!), 3000)))
  const worst = Math.max(...answers.map((a) => a.at - t1))
  t.ok(worst < 500, `the other sessions answered within ${Math.round(worst)} ms`)
  t.notOk(p.lines.some((l) => l.text.startsWith(`filter-result|${slow.sid}|`)), 'while the slow one still waits')
  const late = await p.waitFor(result(slow, BLOCK), 10_000)
  t.ok(late.at - t0 >= 4900, `the slow session got its real score after ${Math.round(late.at - t0)} ms`)
  await p.end()
  t.ok(dns.queries().some((e) => e.name === q('192.0.2.30') && e.delayMs === 5000))
})
