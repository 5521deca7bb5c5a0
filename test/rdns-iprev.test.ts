// filters/rdns/iprev.ts against the dns2 zone server on 127.0.0.1 (random port), the only
// server these tests ask: PTR, A, AAAA, several PTR names, NXDOMAIN, SERVFAIL, slow answers.
import t from 'tap'
import { createResolver } from '../lib/dns.js'
import { startZoneServer } from './lib/dns-zone-server.js'
import { lookupIprev, usableName, type IprevOptions } from '../filters/rdns/iprev.js'
import { CLIENT, LONG_NAME, WORLD } from './fixtures/rdns/world.js'

const dns = await startZoneServer(WORLD, { port: 0 })
t.teardown(() => dns.close())

function resolver(timeoutMs = 1000) {
  const r = createResolver({ servers: [`127.0.0.1:${dns.port}`], timeoutMs, tries: 1 })
  t.teardown(() => r.close())
  return r
}
const FULL: IprevOptions = { forward: true, timeoutMs: 1000, maxNames: 10 }

t.test('pass: PTR and A agree', async (t) => {
  const o = await lookupIprev(resolver(), CLIENT.good, FULL)
  t.match(o, { ip: CLIENT.good, ptr: 'names', names: ['mail.good.example.org'], confirmed: ['mail.good.example.org'], iprev: 'pass', timedOut: false, errors: [] })
})

t.test('permerror: no PTR (NXDOMAIN)', async (t) => {
  const o = await lookupIprev(resolver(), CLIENT.none, FULL)
  t.match(o, { ptr: 'none', names: [], confirmed: [], iprev: 'permerror' })
  t.same(o.errors, ['PTR 192.0.2.11 nxdomain'])
})

t.test('fail: the name resolves elsewhere, or not at all', async (t) => {
  const r = resolver()
  t.match(await lookupIprev(r, CLIENT.mismatch, FULL), { ptr: 'names', confirmed: [], iprev: 'fail' })
  const nx = await lookupIprev(r, CLIENT.nxforward, FULL)
  t.match(nx, { names: ['ghost.example.org'], confirmed: [], iprev: 'fail' })
  t.same(nx.errors, ['A ghost.example.org nxdomain'])
})

t.test('every PTR name is tried, not only the first', async (t) => {
  const o = await lookupIprev(resolver(), CLIENT.multi, FULL)
  t.same(o.names, ['b.multi.example.org', 'a.multi.example.org'], 'answer order kept')
  t.same(o.confirmed, ['a.multi.example.org'])
  t.equal(o.iprev, 'pass')
  t.same(await lookupIprev(resolver(), CLIENT.multi, { ...FULL, maxNames: 1 }).then((x) => [x.names, x.iprev]), [['b.multi.example.org'], 'fail'],
    'maxNames 1 is smtpd\'s behaviour: the first name only')
})

t.test('SERVFAIL is a temporary error, never a failure', async (t) => {
  const r = resolver()
  const p = await lookupIprev(r, CLIENT.servfail, FULL)
  t.match(p, { ptr: 'temperror', names: [], iprev: 'temperror' })
  t.same(p.errors, ['PTR 192.0.2.18 servfail'])
  const f = await lookupIprev(r, CLIENT.fwdServfail, FULL)
  t.match(f, { ptr: 'names', confirmed: [], iprev: 'temperror' })
  t.same(f.errors, ['A mail.fwdfail.example.org servfail'])
})

t.test('IPv6: AAAA, and only AAAA', async (t) => {
  const r = resolver()
  t.match(await lookupIprev(r, CLIENT.v6good, FULL), { ip: '2001:db8::25', names: ['v6.good.example.org'], iprev: 'pass' })
  const o = await lookupIprev(r, '2001:0DB8:0:0::26', FULL)
  t.match(o, { ip: '2001:db8::26', names: ['v4only.example.org'], iprev: 'fail' }, 'an A record does not confirm an IPv6 client')
  t.same(o.errors, ['AAAA v4only.example.org nodata'])
  t.match(await lookupIprev(r, '::ffff:192.0.2.10', FULL), { ip: '192.0.2.10', iprev: 'pass' }, 'mapped IPv4 is IPv4')
  const asked = dns.queries().filter((q) => q.name === 'v4only.example.org').map((q) => q.type)
  t.same(asked, ['AAAA'])
})

t.test('slow answers: one time budget for the whole procedure', async (t) => {
  const r = resolver(300)
  let t0 = performance.now()
  const p = await lookupIprev(r, CLIENT.slowPtr, { ...FULL, timeoutMs: 300 })
  let ms = performance.now() - t0
  t.match(p, { ptr: 'temperror', iprev: 'temperror' })
  // the bound proves the budget, not the speed: the answer itself comes after 1500 ms
  t.ok(ms < 1400, `slow PTR: gave up after ${ms.toFixed(0)} ms (budget 300, answer at 1500)`)
  t0 = performance.now()
  const f = await lookupIprev(r, CLIENT.slowForward, { ...FULL, timeoutMs: 300 })
  ms = performance.now() - t0
  t.match(f, { ptr: 'names', names: ['slowfwd.example.org'], confirmed: [], iprev: 'temperror' })
  t.ok(ms < 1400, `slow A: gave up after ${ms.toFixed(0)} ms (answer at 1500)`)
  const patient = await lookupIprev(resolver(3000), CLIENT.slowPtr, { ...FULL, timeoutMs: 3000 })
  t.match(patient, { iprev: 'pass' }, 'a slow answer within the budget counts')
  t.ok(patient.ms >= 1400, `took ${patient.ms} ms`)
})

t.test('without forward lookups', async (t) => {
  const o = await lookupIprev(resolver(), CLIENT.mismatch, { ...FULL, forward: false })
  t.match(o, { ptr: 'names', names: ['mail.mismatch.example.org'], confirmed: [] })
  t.equal(o.iprev, undefined)
})

t.test('unusable PTR values', async (t) => {
  const o = await lookupIprev(resolver(), CLIENT.literal, FULL)
  t.match(o, { ptr: 'none', names: [], iprev: 'permerror' }, 'an IP literal is no name')
  t.match(await lookupIprev(resolver(), 'not-an-ip', FULL), { ptr: 'none', iprev: 'permerror' })
  t.ok(usableName(LONG_NAME))
  t.ok(usableName('_spf.example.org'))
  for (const bad of ['', '<unknown>', 'a b.example', '-x.example', 'x-.example', '1.2.3.4', 'a..b', 'x'.repeat(64) + '.example', 'ex\\032ample.org']) {
    t.notOk(usableName(bad), JSON.stringify(bad))
  }
})

t.test('the same address twice at once: one query per name and type', async (t) => {
  const r = resolver()
  dns.clearQueries()
  await Promise.all(Array.from({ length: 10 }, () => lookupIprev(r, CLIENT.dyn, FULL)))
  t.same(dns.queries().map((q) => `${q.type} ${q.name}`), ['PTR 14.2.0.192.in-addr.arpa', 'A 192-0-2-14.dyn.example.net'])
})
