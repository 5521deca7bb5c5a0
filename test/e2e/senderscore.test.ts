/**
 * filter-senderscore under the real smtpd 6.8 (test/lib/lab.ts: a network
 * namespace whose resolv.conf points at a dns2 zone server answering the
 * SenderScore names), wired as the seed's smtpd.conf line:
 *
 *   filter senderscore proc-exec "filter-senderscore -blockBelow 10 -junkBelow 70 -slowFactor 5000"
 *
 * a score-5 client is disconnected with the 550 text, a score-50 client's
 * message arrives with X-Spam: Yes, a score-95 client's arrives clean and
 * each answer is slowed by ~250 ms. Then the header and the fail-open cases
 * (IPv6, NXDOMAIN, 127.255.255.255) with fewer phases registered, and a
 * differential run of the same stream through Debian's Go filter and ours.
 * Needs root and `npm run build`.
 */

import t from 'tap'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { filterCommand, headerValues, Lab, projectRoot, zone, type SessionResult, type Zone } from '../lib/lab.js'

const root = process.getuid?.() === 0
const GO_FILTER = '/usr/libexec/opensmtpd/filter-senderscore'
const BLOCK_TEXT = 'your IP reputation is too low for this MX'
const why = (r: SessionResult) => JSON.stringify({ codes: r.codes, timings: r.timings, mismatches: r.mismatches, error: r.error })
const q = (ip: string) => `${ip.split('.').reverse().join('.')}.score.senderscore.com`

const WORLD: Zone = zone(
  { [q('127.0.0.5')]: { A: ['127.0.4.5'] } },
  { [q('127.0.0.50')]: { A: ['127.0.4.50'] } },
  { [q('127.0.0.95')]: { A: ['127.0.4.95'] } },
  { [q('127.0.0.40')]: { A: ['127.255.255.255'] } },
  // 127.0.0.22: NXDOMAIN (not listed)
)

t.test('filter-senderscore under smtpd 6.8', { skip: root ? false : 'needs root' }, async (t) => {
  t.ok(existsSync(join(projectRoot, 'dist/filters/senderscore/main.js')), 'built')
  const lab = await Lab.create({ prefix: 'osf-ss' })
  t.teardown(() => lab.close())
  await lab.startDns(WORLD)

  await t.test('the seed: -blockBelow 10 -junkBelow 70 -slowFactor 5000', async (t) => {
    const smtpd = await lab.startSmtpd({
      filters: [{ name: 'senderscore', command: filterCommand('senderscore', ['-blockBelow', '10', '-junkBelow', '70', '-slowFactor', '5000']) }],
    })
    const msg = (s: string) => `From: <sender@example.org>\nTo: <alice@test.example>\nSubject: ${s}\n\nhello\n`
    const [blocked, junked, clean] = await lab.smtpMany([
      { src: '127.0.0.5', messages: [msg('score 5')], timeoutMs: 60_000 },
      { src: '127.0.0.50', to: ['bob@test.example'], messages: [msg('score 50')], timeoutMs: 60_000 },
      { src: '127.0.0.95', to: ['carol@test.example'], messages: [msg('score 95')], timeoutMs: 60_000 },
    ])

    // score 5: 4750 ms, then 550 and the connection is closed
    t.equal(blocked!.codes[0], 550, 'score 5: 550 instead of the banner', { result: why(blocked!) })
    t.equal(blocked!.replies[0]!.lines.join(' '), `550 ${BLOCK_TEXT}`, 'the Go filter\'s text')
    t.ok(blocked!.closedByServer, 'disconnected')
    t.ok(blocked!.timings[0]! >= 4600, `after the score-5 delay (${blocked!.timings[0]} ms)`)

    // score 50: junked, 2500 ms per answer
    t.ok(junked!.ok, 'score 50: the session goes through', { result: why(junked!) })
    // score 95: clean, 250 ms per answer (banner, EHLO, MAIL, RCPT, DATA, ".", QUIT)
    t.ok(clean!.ok, 'score 95: the session goes through', { result: why(clean!) })
    t.equal(clean!.timings.length, 7, 'seven replies', { result: why(clean!) })
    for (const [i, ms] of clean!.timings.entries()) t.ok(ms >= 240 && ms < 1500, `score 95, reply ${i} (${clean!.replies[i]!.cmd || 'banner'}): ${ms} ms ~ 250`)
    for (const [i, ms] of junked!.timings.entries()) t.ok(ms >= 2450 && ms < 6000, `score 50, reply ${i}: ${ms} ms ~ 2500`)

    const [bob] = await smtpd.waitDelivered('bob', 1)
    t.same(headerValues(bob!.data, 'X-Spam'), ['Yes'], 'score 50 < junkBelow 70: X-Spam: Yes')
    const [carol] = await smtpd.waitDelivered('carol', 1)
    t.same(headerValues(carol!.data, 'X-Spam'), [], 'score 95: clean')
    t.same(headerValues(carol!.data, 'X-SenderScore'), [], 'no -scoreHeader: no header')
    t.same(smtpd.delivered('alice'), [], 'nothing from the blocked client')

    const log = smtpd.log()
    t.match(log, /senderscore: \{"level":"info","session":"[0-9a-f]+","addr":"127\.0\.0\.5","score":5,"category":4,"via":"dns","action":"disconnect","delayMs":4750,"msg":"verdict"\}/, 'verdict line in smtpd\'s log')
    t.equal(lab.dns!.queries().filter((e) => e.name.endsWith('score.senderscore.com') && e.type !== 'A').length, 0, 'A queries only')
    await smtpd.stop()
    t.same(smtpd.leftovers, [], 'the filter exited with smtpd')
  })

  await t.test('-junkBelow 70 -scoreHeader: header, junk without delays; unknown scores pass', async (t) => {
    const smtpd = await lab.startSmtpd({
      filters: [{ name: 'senderscore', command: filterCommand('senderscore', ['-junkBelow', '70', '-scoreHeader']) }],
    })
    const msg = 'Subject: h\n\nhello\n'
    const rs = await lab.smtpMany([
      { src: '127.0.0.50', to: ['alice@test.example'], messages: [msg, msg] },
      { src: '127.0.0.95', to: ['bob@test.example'], messages: [msg] },
      { src: '127.0.0.22', to: ['carol@test.example'], messages: [msg] },
      { src: '127.0.0.40', to: ['postmaster@test.example'], messages: [msg] },
      { src: '::1', to: ['postmaster@test.example'], messages: [msg] },
    ])
    for (const r of rs) t.ok(r.ok, `${r.src}: the session goes through`, { result: why(r) })
    // No -slowFactor: nothing is delayed on purpose (the bound only absorbs a loaded machine).
    for (const r of rs) t.ok(Math.max(...r.timings) < 5000, `${r.src}: no delay (${r.timings.join(',')})`)
    const alice = await smtpd.waitDelivered('alice', 2)
    for (const m of alice) {
      t.same(headerValues(m.data, 'X-SenderScore'), ['50'], 'every message of the session carries the header')
      t.same(headerValues(m.data, 'X-Spam'), ['Yes'], 'junk without data-line delays')
    }
    const [bob] = await smtpd.waitDelivered('bob', 1)
    t.same(headerValues(bob!.data, 'X-SenderScore'), ['95'])
    t.same(headerValues(bob!.data, 'X-Spam'), [])
    const [carol] = await smtpd.waitDelivered('carol', 1)
    t.same(headerValues(carol!.data, 'X-SenderScore'), [], 'NXDOMAIN: no score, no header')
    const pm = await smtpd.waitDelivered('postmaster', 2)
    for (const m of pm) {
      t.same(headerValues(m.data, 'X-SenderScore'), [], '127.255.255.255 and IPv6: no score (the Go filter writes 127 for the first)')
      t.same(headerValues(m.data, 'X-Spam'), [])
    }
    t.match(smtpd.log(), /senderscore: \{"level":"error","addr":"127\.0\.0\.40","answer":"127\.255\.255\.255","msg":"SenderScore refuses this resolver/)
    await smtpd.stop()
  })

  await t.test('differential: the same stream through Debian\'s Go filter 0.1.1 and ours', { skip: existsSync(GO_FILTER) ? false : 'no Go filter' }, async (t) => {
    // Sessions from clients of every score class, gated like smtpd, replayed with
    // `smtpd-filters replay` inside the namespace (both resolve through the lab DNS).
    const ips = ['127.0.0.5', '127.0.0.50', '127.0.0.95', '127.0.0.22']
    const zoneMore: Zone = {}
    for (let s = 0; s <= 100; s += 7) zoneMore[q(`127.0.1.${s}`)] = { A: [`127.0.4.${s}`] }
    for (let s = 0; s <= 100; s += 7) ips.push(`127.0.1.${s}`)
    await lab.dns!.setZone(zone(WORLD, zoneMore))
    const lines = ['config|smtpd-version|6.8.0p2', 'config|smtp-session-timeout|300', 'config|subsystem|smtp-in', 'config|admd|mx.test.example', 'config|ready']
    ips.forEach((ip, i) => {
      const sid = (0x5e55000000000000n + BigInt(i)).toString(16)
      const tk = (k: number) => (0x70c0000000000000n + BigInt(i * 16 + k)).toString(16)
      const f = (phase: string, k: number, param = '') => `filter|0.6|1700000000.000001|smtp-in|${phase}|${sid}|${tk(k)}|${param}`
      lines.push(
        `report|0.6|1700000000.000001|smtp-in|link-connect|${sid}|client.example|pass|${ip}:4000${i % 10}|127.0.0.1:25`,
        f('connect', 0, `client.example|${ip}`),
        f('ehlo', 1, 'client.example'),
        f('mail-from', 2, 'a@example.org'),
        f('rcpt-to', 3, 'b@test.example'),
        f('data', 4),
        f('data-line', 5, 'Subject: x'),
        f('data-line', 5, ''),
        f('data-line', 5, 'body'),
        f('data-line', 5, '.'),
        f('commit', 6),
        f('quit', 7),
        `report|0.6|1700000000.000001|smtp-in|link-disconnect|${sid}`,
      )
    })
    const stream = join(lab.wd, 'diff.in')
    writeFileSync(stream, lines.join('\n') + '\n')
    const flags = ['-blockBelow', '20', '-junkBelow', '70', '-slowFactor', '100', '-scoreHeader', '-blockPhase', 'rcpt-to']
    const replay = (cmd: string[]) =>
      lab.exec(['/usr/bin/node', join(projectRoot, 'dist/cli/smtpd-filters.js'), 'replay', stream, '--', ...cmd, ...flags], { timeoutMs: 120_000 })
    const [go, ours] = await Promise.all([replay([GO_FILTER]), replay(['/usr/bin/node', join(projectRoot, 'dist/filters/senderscore/main.js')])])
    t.equal(go.code, 0, 'replay through the Go filter', { stderr: go.code === 0 ? '' : go.stderr.toString() })
    t.equal(ours.code, 0, 'replay through ours', { stderr: ours.code === 0 ? '' : ours.stderr.toString() })
    const answers = (b: Buffer) => b.toString('latin1').split('\n').filter((l) => l.startsWith('filter-'))
    // Answers of different sessions may interleave differently (both answer concurrently):
    // compare per session, in order.
    const bySession = (ls: string[]) => {
      const m = new Map<string, string[]>()
      for (const l of ls) {
        const id = l.split('|')[1]!
        m.set(id, [...(m.get(id) ?? []), l])
      }
      return Object.fromEntries([...m.entries()].sort())
    }
    t.same(bySession(answers(ours.stdout)), bySession(answers(go.stdout)), 'the same answers and headers for every session')
    t.ok(answers(go.stdout).some((l) => l.endsWith('|disconnect|550 ' + BLOCK_TEXT)), 'blocks in the stream')
    t.ok(answers(go.stdout).some((l) => l.endsWith('|junk')), 'junks in the stream')
  })
})
