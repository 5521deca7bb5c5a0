// filter-rdns policy: the real runtime in-process, DNS from the dns2 zone server on
// 127.0.0.1 (random port). Each DNS situation of test/fixtures/rdns/world.ts, each action,
// the phases they act at, allowlists, authenticated and local sessions, the header, the log.
import t, { type Test } from 'tap'
import { startZoneServer } from './lib/dns-zone-server.js'
import { CLIENT, LONG_NAME, WORLD } from './fixtures/rdns/world.js'
import { RdnsHarness } from './fixtures/rdns/harness.js'

const dns = await startZoneServer(WORLD, { port: 0 })
t.teardown(() => dns.close())

function filter(t: Test, args: string[], opts: Parameters<typeof RdnsHarness.start>[2] = {}): RdnsHarness {
  const h = RdnsHarness.start(args, dns.port, opts)
  t.teardown(() => h.close())
  return h
}

const SEED = ['-dyndns', 'disconnect', '-rdns', 'disconnect', '-fcrdns', 'disconnect']
const RDNS = 'disconnect|550 no rDNS is so 80s'
const FCRDNS = 'disconnect|550 no FCrDNS is so 80s'
const DYN = 'disconnect|550 no residential connections'

t.test('the seed\'s three built-ins as one line', async (t) => {
  const h = filter(t, SEED)
  t.same(h.registered, [
    'register|report|smtp-in|link-connect', 'register|report|smtp-in|link-disconnect', 'register|report|smtp-in|link-auth',
    'register|filter|smtp-in|connect', 'register|ready',
  ], 'only link-connect, link-disconnect, link-auth and connect')
  const cases: [keyof typeof CLIENT, string, string][] = [
    ['good', 'proceed', 'PTR and A agree'],
    ['none', RDNS, 'no PTR: the rdns text (rdns fails, and fcrdns with it; rdns comes first)'],
    ['mismatch', FCRDNS, 'PTR whose A is elsewhere'],
    ['nxforward', FCRDNS, 'PTR whose name has no A'],
    ['dyn', DYN, 'dynamic name, FCrDNS fine'],
    ['static', 'proceed', 'static-… name embedding the IP is excused'],
    ['multi', 'proceed', 'the second PTR name resolves back (smtpd only tries the first)'],
    ['servfail', 'proceed', 'SERVFAIL on the PTR: proceed (smtpd 6.8 says <unknown>|fail and refuses)'],
    ['dynMismatch', DYN, 'dynamic and no FCrDNS: the dyndns text (the seed\'s chain order)'],
    ['fwdServfail', 'proceed', 'SERVFAIL on the A lookup: proceed'],
    ['mixed', 'proceed', 'one dynamic and one proper name: not residential'],
    ['literal', RDNS, 'an IP literal in the PTR is no name'],
    ['v6good', 'proceed', 'IPv6 with AAAA'],
    ['v6v4only', FCRDNS, 'IPv6 whose name has only an A record'],
  ]
  for (const [client, expect, why] of cases) {
    const s = h.session(CLIENT[client])
    t.equal(await s.connect(), expect, `${client}: ${why}`)
    s.disconnect()
  }
})

t.test('the verdict log line: one per session, at link-disconnect', async (t) => {
  const h = filter(t, SEED)
  const s = h.session(CLIENT.dynMismatch)
  await s.connect()
  t.same(h.logsOf(s).filter((l) => l.level === 'info'), [], 'nothing before the session ends')
  s.disconnect()
  const v = await s.verdict()
  t.match(v, {
    level: 'info', msg: 'rdns', ip: '192.0.2.19', names: ['dsl-1-2-3-4.dyn.example.net'], confirmed: [],
    rdns: 'pass', fcrdns: 'fail', dyndns: 'fail', dynamic: ['dsl-1-2-3-4.dyn.example.net:word:dsl,word:dyn'],
    failed: ['dyndns', 'fcrdns'], action: 'disconnect', by: 'dyndns', taken: 'disconnect',
  })
  t.notOk('dnsErrors' in v, 'no DNS error to report')
  t.type(v.ms, 'number')
  t.equal(h.logsOf(s).filter((l) => l.msg === 'rdns').length, 1, 'exactly one')

  const g = h.session(CLIENT.servfail)
  await g.connect()
  g.disconnect()
  t.match(await g.verdict(), { names: [], rdns: 'temperror', fcrdns: 'temperror', dyndns: 'temperror', action: 'proceed', taken: 'none', dnsErrors: ['PTR 192.0.2.18 servfail'] })
  t.notOk('failed' in (await g.verdict()), 'a temporary error is no failure')
})

t.test('reject at a later phase, so the log names who was refused', async (t) => {
  const h = filter(t, ['-rdns', 'reject', '-fcrdns', 'reject'])
  t.same(h.registered.filter((l) => l.includes('|filter|')), ['register|filter|smtp-in|mail-from'], 'no connect phase: nothing happens there')
  const s = h.session(CLIENT.none)
  t.equal(await s.connect(), 'proceed', 'the banner comes (reject at connect would leave none)')
  t.equal(await s.ask('ehlo', 'client.example'), 'proceed')
  t.equal(await s.mailFrom(), 'reject|550 no rDNS is so 80s')
  t.equal(await s.mailFrom(), 'reject|550 no rDNS is so 80s', 'every MAIL FROM')
  s.disconnect()
  t.match(await s.verdict(), { action: 'reject', by: 'rdns', taken: 'reject at mail-from (2x)' })

  const g = h.session(CLIENT.good)
  await g.connect()
  t.equal(await g.mailFrom(), 'proceed')
})

t.test('-rejectPhase', async (t) => {
  for (const [phase, registered] of [['helo', ['helo', 'ehlo']], ['rcpt-to', ['rcpt-to']], ['data', ['data']]] as const) {
    const h = filter(t, ['-fcrdns', 'reject', '-rejectPhase', phase, '-fcrdnsText', '550 5.7.25 no FCrDNS'])
    t.same(h.registered.filter((l) => l.includes('|filter|')).map((l) => l.split('|')[3]), registered, `${phase}: registered`)
    const s = h.session(CLIENT.mismatch)
    t.equal(await s.connect(), 'proceed')
    if (phase === 'helo') {
      t.equal(await s.ask('helo', 'x'), 'reject|550 5.7.25 no FCrDNS', 'HELO')
      t.equal(await s.ask('ehlo', 'x'), 'reject|550 5.7.25 no FCrDNS', 'and EHLO')
      continue
    }
    t.equal(await s.ask('ehlo', 'x'), 'proceed')
    t.equal(await s.mailFrom(), 'proceed')
    if (phase === 'rcpt-to') {
      t.equal(await s.ask('rcpt-to', '<alice@test.example>'), 'reject|550 5.7.25 no FCrDNS')
    } else {
      t.equal(await s.ask('data'), 'reject|550 5.7.25 no FCrDNS')
    }
  }
})

t.test('junk: at mail-from, per transaction', async (t) => {
  const h = filter(t, ['-dyndns', 'junk'])
  t.same(h.registered.filter((l) => l.includes('|filter|')), ['register|filter|smtp-in|mail-from'])
  const s = h.session(CLIENT.dyn)
  t.equal(await s.connect(), 'proceed')
  t.equal(await s.mailFrom(), 'junk')
  t.equal(await s.mailFrom(), 'junk', 'the next transaction too')
  s.disconnect()
  t.match(await s.verdict(), { dyndns: 'fail', action: 'junk', by: 'dyndns', taken: 'junk at mail-from (2x)' })
  t.notOk('fcrdns' in (await s.verdict()), 'no forward lookups when nothing needs them')
})

t.test('log: nothing refused, the check named in the log line', async (t) => {
  const h = filter(t, ['-rdns', 'log', '-fcrdns', 'log', '-dyndns', 'log'])
  t.same(h.registered.filter((l) => l.includes('|filter|')), [], 'no phase registered at all')
  const s = h.session(CLIENT.dynMismatch)
  t.equal(await s.connect(), 'proceed')
  s.disconnect()
  t.match(await s.verdict(), { failed: ['dyndns', 'fcrdns'], action: 'log', by: 'dyndns', taken: 'none' })
})

t.test('the most severe action wins', async (t) => {
  const h = filter(t, ['-rdns', 'junk', '-fcrdns', 'disconnect', '-dyndns', 'reject'])
  const s = h.session(CLIENT.none)
  t.equal(await s.connect(), FCRDNS, 'no PTR: rdns says junk, fcrdns disconnect')
  const d = h.session(CLIENT.dynMismatch)
  t.equal(await d.connect(), FCRDNS, 'dyndns reject < fcrdns disconnect')
  const y = h.session(CLIENT.dyn)
  t.equal(await y.connect(), 'proceed')
  t.equal(await y.mailFrom(), 'reject|550 no residential connections')
})

t.test('temporary DNS failures: proceed, 451 or 421 by -tempfail', async (t) => {
  await t.test('default: proceed', async (t) => {
    const h = filter(t, SEED)
    for (const c of ['servfail', 'fwdServfail'] as const) t.equal(await h.session(CLIENT[c]).connect(), 'proceed', c)
  })
  await t.test('-tempfail disconnect: 421 at connect', async (t) => {
    const h = filter(t, [...SEED, '-tempfail', 'disconnect'])
    const tf = 'disconnect|421 4.7.25 cannot verify your reverse DNS now, try again later'
    t.equal(await h.session(CLIENT.servfail).connect(), tf)
    t.equal(await h.session(CLIENT.fwdServfail).connect(), tf)
    t.equal(await h.session(CLIENT.good).connect(), 'proceed')
  })
  await t.test('-tempfail reject: 451 at -rejectPhase, authenticated sessions spared', async (t) => {
    const h = filter(t, [...SEED, '-tempfail', 'reject', '-tempfailText', '451 try later'])
    const s = h.session(CLIENT.servfail)
    t.equal(await s.connect(), 'proceed')
    t.equal(await s.mailFrom(), 'reject|451 try later')
    const a = h.session(CLIENT.servfail)
    await a.connect()
    a.auth('alice')
    t.equal(await a.mailFrom(), 'proceed')
  })
  await t.test('only for checks that would refuse', async (t) => {
    const h = filter(t, ['-fcrdns', 'junk', '-rdns', 'disconnect', '-tempfail', 'disconnect'])
    t.equal(await h.session(CLIENT.fwdServfail).connect(), 'proceed', 'a junk check is never turned into a 421')
  })
  await t.test('a failure beats an equally severe tempfail', async (t) => {
    const h = filter(t, ['-dyndns', 'disconnect', '-fcrdns', 'disconnect', '-tempfail', 'disconnect'])
    const s = h.session('192.0.2.50')
    // 192.0.2.50 is not in the zone: NXDOMAIN, so rdns/fcrdns fail, no tempfail involved
    t.equal(await s.connect(), FCRDNS)
  })
  await t.test('slow answers: the session waits at most -timeout', async (t) => {
    const h = filter(t, [...SEED, '-timeout', '300ms'])
    for (const c of ['slowPtr', 'slowForward'] as const) {
      const t0 = performance.now()
      const s = h.session(CLIENT[c])
      t.equal(await s.connect(), 'proceed', c)
      const ms = performance.now() - t0
      t.ok(ms < 1400, `${c}: answered after ${ms.toFixed(0)} ms (budget 300, DNS answer at 1500)`)
      s.disconnect()
      t.match(await s.verdict(), { fcrdns: 'temperror', action: 'proceed' })
    }
  })
})

t.test('authenticated sessions: spared from reject and junk, not from disconnect', async (t) => {
  const h = filter(t, ['-rdns', 'reject', '-dyndns', 'junk'])
  const s = h.session(CLIENT.none)
  await s.connect()
  s.auth('alice')
  t.equal(await s.mailFrom(), 'proceed')
  s.disconnect()
  t.match(await s.verdict(), { action: 'reject', taken: 'none (authenticated)' })
  const f = h.session(CLIENT.none)
  await f.connect()
  f.auth('mallory', 'fail')
  t.equal(await f.mailFrom(), 'reject|550 no rDNS is so 80s', 'a failed AUTH is no authentication')
  const j = h.session(CLIENT.dyn)
  await j.connect()
  j.auth('bob')
  t.equal(await j.mailFrom(), 'proceed', 'junk spared')

  const off = filter(t, ['-rdns', 'reject', '-skipAuth=false'])
  t.notOk(off.registered.includes('register|report|smtp-in|link-auth'), 'no link-auth needed')
  const o = off.session(CLIENT.none)
  await o.connect()
  o.auth('alice')
  t.equal(await o.mailFrom(), 'reject|550 no rDNS is so 80s')

  const d = filter(t, ['-rdns', 'disconnect'])
  t.equal(await d.session(CLIENT.none).connect(), RDNS, 'at connect nobody is authenticated yet')
})

t.test('allowlists', async (t) => {
  await t.test('networks: no DNS query at all', async (t) => {
    const h = filter(t, [...SEED, '-allow', '192.0.2.0/28', '-allow', '2001:db8::/64'])
    dns.clearQueries()
    for (const c of ['none', 'mismatch', 'dyn'] as const) t.equal(await h.session(CLIENT[c]).connect(), 'proceed', c)
    t.equal(await h.session(CLIENT.v6v4only).connect(), 'proceed')
    t.same(dns.queries(), [], 'nothing asked')
    const s = h.session(CLIENT.dynMismatch)
    t.equal(await s.connect(), DYN, '192.0.2.19 is outside /28')
    const a = h.session(CLIENT.none)
    await a.connect()
    a.disconnect()
    t.match(await a.verdict(), { level: 'info', msg: 'rdns: skipped', ip: CLIENT.none, skipped: 'allowlist' })
  })
  await t.test('domains: forward-confirmed names only', async (t) => {
    const h = filter(t, [...SEED, '-allow', 'partner.example'])
    const p = h.session(CLIENT.partner)
    t.equal(await p.connect(), 'proceed', 'pool-192-0-2-41.dsl.partner.example is dynamic but allowed')
    p.disconnect()
    t.match(await p.verdict(), { allowed: 'pool-192-0-2-41.dsl.partner.example', dyndns: 'fail', action: 'proceed' })
    t.equal(await h.session(CLIENT.spoof).connect(), FCRDNS, 'a PTR claiming mail.partner.example without its A proves nothing')
  })
  await t.test('an allowlist file: networks and domains, comments', async (t) => {
    const dir = t.testdir({ allow: '# partners\n192.0.2.12   # mismatch\n*.partner.example\n\n2001:db8::26/128\n' })
    const h = filter(t, [...SEED, '-allowlist', `${dir}/allow`])
    for (const c of ['mismatch', 'partner', 'v6v4only'] as const) t.equal(await h.session(CLIENT[c]).connect(), 'proceed', c)
    t.equal(await h.session(CLIENT.none).connect(), RDNS)
  })
})

t.test('local clients', async (t) => {
  const h = filter(t, SEED)
  for (const src of ['127.0.0.1', '127.0.0.11', '::1']) {
    const s = h.session(src)
    t.equal(await s.connect(), 'proceed', `${src}: loopback skipped`)
    s.disconnect()
    t.match(await s.verdict(), { level: 'debug', skipped: 'local' })
  }
  const u = h.session('unix:/var/run/smtpd.sock', { rdns: 'mx.test.example' })
  t.equal(await u.connect(), 'proceed', 'unix socket skipped')
  const checked = filter(t, [...SEED, '-skipLocal=false'])
  const s = checked.session('127.0.0.11')
  t.equal(await s.connect(), RDNS, '-skipLocal=false: loopback checked (127.0.0.11 has no PTR)')
  t.equal(await checked.session('unix:/var/run/smtpd.sock', { rdns: 'mx.test.example' }).connect(), 'proceed', 'a unix socket has no address to check')
})

t.test('Authentication-Results', async (t) => {
  const msg = 'From: <a@example.org>\nTo: <b@test.example>\nSubject: x\n\nbody\n'
  const h = filter(t, [...SEED.map((a) => (a === 'disconnect' ? 'log' : a)), '-header'], { admd: 'mx.test.example' })
  t.ok(h.registered.includes('register|filter|smtp-in|data-line'))
  t.ok(h.registered.includes('register|report|smtp-in|tx-begin'))
  const AR = 'Authentication-Results: mx.test.example;'
  const cases: [string, string[]][] = [
    [CLIENT.good, [AR, '\tiprev=pass policy.iprev=192.0.2.10 (mail.good.example.org)']],
    [CLIENT.mismatch, [AR, '\tiprev=fail policy.iprev=192.0.2.12 (mail.mismatch.example.org)']],
    [CLIENT.none, [AR, '\tiprev=permerror policy.iprev=192.0.2.11']],
    [CLIENT.servfail, [AR, '\tiprev=temperror policy.iprev=192.0.2.18']],
    [CLIENT.v6good, [AR, '\tiprev=pass policy.iprev="2001:db8::25" (v6.good.example.org)']],
    [CLIENT.long, [AR, '\tiprev=pass policy.iprev=192.0.2.44', `\t(${LONG_NAME})`]],
  ]
  for (const [ip, header] of cases) {
    const s = h.session(ip)
    await s.connect()
    t.equal(await s.mailFrom(), 'proceed')
    const out = await s.data(msg)
    t.same(out, [...header, 'From: <a@example.org>', 'To: <b@test.example>', 'Subject: x', '', 'body'], `${ip}: header first, message unchanged`)
    for (const l of header) t.ok(l.length <= 998, 'line length')
    // a second message of the session gets its own header
    await s.mailFrom()
    t.same((await s.data(msg)).slice(0, header.length), header, `${ip}: second message`)
  }
  const local = h.session('127.0.0.1')
  await local.connect()
  await local.mailFrom()
  t.same(await local.data(msg), ['From: <a@example.org>', 'To: <b@test.example>', 'Subject: x', '', 'body'], 'skipped session: no header')

  const slow = filter(t, ['-header', '-timeout', '3s'])
  t.same(slow.registered.filter((l) => l.includes('|filter|')).map((l) => l.split('|')[3]), ['mail-from', 'data-line'], '-header alone: mail-from and data-lines')
  const sl = slow.session(CLIENT.slowPtr)
  t.equal(await sl.connect(), 'proceed', 'connect is not held')
  t.equal(await sl.mailFrom(), 'proceed', 'MAIL FROM waits for the 1500 ms PTR answer')
  t.same((await sl.data(msg)).slice(0, 2), [AR, '\tiprev=pass policy.iprev=192.0.2.30 (slow.example.org)'], 'so the header knows the result')

  const old = filter(t, ['-header'], { version: '0.4' })
  const o = old.session(CLIENT.good)
  await o.connect()
  await o.mailFrom()
  t.same((await o.data(msg)).slice(0, 2), ['Authentication-Results: fallback.example;', '\tiprev=pass policy.iprev=192.0.2.10 (mail.good.example.org)'],
    'smtpd 6.6 sends no config|admd: the host name')
})

t.test('protocol versions: the same answers for smtpd 6.6 (0.4) and 7.8 (0.7)', async (t) => {
  for (const version of ['0.4', '0.7']) {
    const h = filter(t, ['-rdns', 'reject', '-fcrdns', 'disconnect', '-dyndns', 'junk'], { version })
    t.equal(await h.session(CLIENT.mismatch).connect(), FCRDNS, `${version}: disconnect at connect`)
    const s = h.session(CLIENT.dyn)
    await s.connect()
    t.equal(await s.mailFrom(), 'junk', `${version}: junk at mail-from`)
    t.equal(await h.session(CLIENT.none).connect(), FCRDNS, `${version}: no PTR fails fcrdns too, and its disconnect beats the rdns reject`)
    const r = filter(t, ['-rdns', 'reject'], { version })
    const u = r.session(CLIENT.none)
    await u.connect()
    u.auth('alice')
    t.equal(await u.mailFrom(), 'proceed', `${version}: link-auth parsed in this version's field order`)
  }
})
