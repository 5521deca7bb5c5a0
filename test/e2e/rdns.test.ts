// filter-rdns under the real smtpd 6.8.0p2 (test/lib/lab.ts: a network namespace, the dns2
// zone server on 127.0.0.1:53 that smtpd and the filter both use through resolv.conf).
// Wired as ONE line in place of the seed's three built-ins:
//   filter-rdns -dyndns disconnect -rdns disconnect -fcrdns disconnect
// plus -skipLocal=false (every lab client is on 127.0.0.0/8, which is skipped by default)
// and -allow for the allowlisted client. Then the seed's three built-ins themselves on the
// same clients, for the differences. Needs root and `npm run build`.
import t from 'tap'
import { filterCommand, host, Lab, a, ptr, zone, PROBE_SRC, type SessionResult } from '../lib/lab.js'

const root = process.getuid?.() === 0

const WORLD = zone(
  host('mx.test.example', '127.0.0.1'),
  host('probe.test.example', PROBE_SRC),
  host('mail.good.example.org', '127.0.0.10'),
  // 127.0.0.11: no PTR
  ptr('127.0.0.12', 'mail.mismatch.example.org'), a('mail.mismatch.example.org', '127.0.0.99'),
  host('127-0-0-14.dyn.example.net', '127.0.0.14'),
  host('static-127-0-0-16.mail.example.net', '127.0.0.16'),
  ptr('127.0.0.17', 'b.multi.example.org', 'a.multi.example.org'),
  a('a.multi.example.org', '127.0.0.17'), a('b.multi.example.org', '127.0.0.98'),
  { '18.0.0.127.in-addr.arpa': { rcode: 'SERVFAIL' } },
  // 127.0.0.50: no PTR, but allowlisted
)

const SEED_TEXT = {
  dyndns: '550 no residential connections',
  rdns: '550 no rDNS is so 80s',
  fcrdns: '550 no FCrDNS is so 80s',
}

interface Case { src: string; what: string; ours: string; builtIn: string }
const CASES: Case[] = [
  { src: '127.0.0.10', what: 'PTR and A agree', ours: '250', builtIn: '250' },
  { src: '127.0.0.11', what: 'no PTR', ours: SEED_TEXT.rdns, builtIn: SEED_TEXT.rdns },
  { src: '127.0.0.12', what: 'PTR without forward match', ours: SEED_TEXT.fcrdns, builtIn: SEED_TEXT.fcrdns },
  { src: '127.0.0.14', what: 'dynamic name', ours: SEED_TEXT.dyndns, builtIn: SEED_TEXT.dyndns },
  { src: '127.0.0.16', what: 'static-… name', ours: '250', builtIn: '250' },
  { src: '127.0.0.17', what: 'two PTR names, the second confirms', ours: '250', builtIn: SEED_TEXT.fcrdns },
  { src: '127.0.0.18', what: 'SERVFAIL on the PTR', ours: '250', builtIn: SEED_TEXT.rdns },
  { src: '127.0.0.50', what: 'no PTR, allowlisted', ours: '250', builtIn: SEED_TEXT.rdns },
]

/** What the client got: the first reply's full text if it was refused, else the last code of an accepted message. */
function outcome(r: SessionResult): string {
  const first = r.replies[0]
  if (!first) return `no reply (${r.error ?? ''})`
  if (first.code !== 220) return first.lines.join(' ').replace(/^(\d{3})[- ]/, '$1 ')
  return r.ok ? '250' : `failed: ${JSON.stringify({ codes: r.codes, mismatches: r.mismatches })}`
}

t.test('filter-rdns under smtpd, one line for the seed\'s three', { skip: root ? false : 'needs root (ip netns, smtpd)' }, async (t) => {
  const lab = await Lab.create()
  t.teardown(() => lab.close())
  await lab.startDns(WORLD)
  const msg = 'From: <sender@example.org>\nTo: <alice@test.example>\nSubject: rdns e2e\n\nhello\n'

  await t.test('filter-rdns', async (t) => {
    const args = ['-dyndns', 'disconnect', '-rdns', 'disconnect', '-fcrdns', 'disconnect', '-skipLocal=false', '-allow', '127.0.0.50', '-header']
    const smtpd = await lab.startSmtpd({ filters: [{ name: 'rdns', command: filterCommand('rdns', args) }], filterOn: ['smtp'] })
    lab.dns!.clearQueries()
    const rs = await lab.smtpMany(CASES.map((c) => ({ label: c.src, src: c.src, messages: [msg], to: ['alice@test.example'] })))
    rs.forEach((r, i) => t.equal(outcome(r), CASES[i]!.ours, `${CASES[i]!.src} ${CASES[i]!.what}`))
    const refused = rs.filter((r) => r.replies[0]?.code === 550)
    t.same(refused.map((r) => r.codes), refused.map(() => [550]), 'refused clients get the reply and nothing else: no banner, no 503 loop')

    const accepted = CASES.filter((c) => c.ours === '250').length
    const mail = await smtpd.waitDelivered('alice', accepted)
    t.equal(mail.length, accepted, `${accepted} messages delivered`)
    const ar = mail.map((m) => /^Authentication-Results: [^\n]*(\n\t[^\n]*)*/m.exec(m.data.toString('latin1'))?.[0].replace(/\r/g, '') ?? '')
    t.ok(ar.some((h) => /iprev=pass policy\.iprev=127\.0\.0\.17 \(a\.multi\.example\.org\)/.test(h)), 'iprev=pass for the second PTR name')
    t.ok(ar.some((h) => /^Authentication-Results: mx\.test\.example;\n\tiprev=temperror policy\.iprev=127\.0\.0\.18$/.test(h)), `temperror for SERVFAIL, admd from smtpd: ${ar.join(' | ')}`)
    const order = mail.map((m) => {
      const text = m.data.toString('latin1')
      return text.includes('[127.0.0.50]') ? 'no header' : text.indexOf('\nAuthentication-Results: ') < text.indexOf('\nReceived: ') ? 'before Received' : 'after'
    })
    t.same(order.sort(), ['before Received', 'before Received', 'before Received', 'before Received', 'no header'],
      'the header is the first line of the message (above smtpd\'s Received; the MDA adds Return-Path above it), none for an allowlisted client')

    const log = smtpd.log()
    const verdicts = [...log.matchAll(/rdns: (\{.*"msg":"rdns(?:: skipped)?"\})/g)].map((m) => JSON.parse(m[1]!) as Record<string, unknown>)
    const byIp = new Map(verdicts.map((v) => [v.ip as string, v]))
    t.match(byIp.get('127.0.0.18'), { rdns: 'temperror', action: 'proceed', dnsErrors: ['PTR 127.0.0.18 servfail'] }, 'SERVFAIL logged as temperror')
    t.match(byIp.get('127.0.0.17'), { names: ['b.multi.example.org', 'a.multi.example.org'], confirmed: ['a.multi.example.org'], fcrdns: 'pass' })
    t.match(byIp.get('127.0.0.14'), { dyndns: 'fail', action: 'disconnect', by: 'dyndns', taken: 'disconnect' })
    t.match(byIp.get('127.0.0.50'), { skipped: 'allowlist' })
    t.ok(lab.dns!.asked('50.0.0.127.in-addr.arpa', 'PTR').length <= 1, 'the allowlisted client cost us no query (smtpd asks once itself)')
    t.ok(smtpd.alive(), 'smtpd is fine')
    await smtpd.stop()
    t.same(smtpd.leftovers, [], 'the filter exited with smtpd')
  })

  await t.test('the seed\'s three built-ins, on the same clients', async (t) => {
    const config = [
      'pki mx.test.example cert "${WD}/tls/tls.crt"',
      'pki mx.test.example key "${WD}/tls/tls.key"',
      'table creds file:${WD}/tables/creds',
      'table users file:${WD}/tables/users',
      'smtp ciphers "HIGH:aNULL:!MD5:@SECLEVEL=0"',
      `filter check_dyndns phase connect match rdns regex { '.*\\.dyn\\..*', '.*\\.dsl\\..*' } disconnect "${SEED_TEXT.dyndns}"`,
      `filter check_rdns phase connect match !rdns disconnect "${SEED_TEXT.rdns}"`,
      `filter check_fcrdns phase connect match !fcrdns disconnect "${SEED_TEXT.fcrdns}"`,
      'listen on 127.0.0.1 port 25 tls pki mx.test.example hostname mx.test.example filter { check_dyndns, check_rdns, check_fcrdns }',
      'action "deliver" maildir "${WD}/maildir/%{user.username}" userbase <users>',
      'match from any for domain "test.example" action "deliver"',
    ].join('\n') + '\n'
    const smtpd = await lab.startSmtpd({ config })
    const rs = await lab.smtpMany(CASES.map((c) => ({ label: c.src, src: c.src, messages: [msg] })))
    rs.forEach((r, i) => t.equal(outcome(r), CASES[i]!.builtIn, `${CASES[i]!.src} ${CASES[i]!.what}${CASES[i]!.builtIn !== CASES[i]!.ours ? ' (filter-rdns: ' + CASES[i]!.ours + ')' : ''}`))
    await smtpd.stop()
  })
})
