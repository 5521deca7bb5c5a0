// The dynamic-name table (test/fixtures/hostnames: 217 dynamic, 197 static/mail names, IPv4
// and IPv6) through the whole filter: each name is served as the PTR (and A/AAAA) of its
// address by the dns2 zone server, and a session from that address asks filter-rdns
// -dyndns disconnect. Reports false positives and false negatives; 0 false positives.
// For comparison, the seed's two built-in regexes on the same names (smtpd applies them to
// the whole name: `.*\.dyn\..*`, `.*\.dsl\..*`).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startZoneServer } from './lib/dns-zone-server.js'
import { a, ptr, zone, type Zone } from './lib/zone.js'
import { RdnsHarness } from './fixtures/rdns/harness.js'

interface Row { name: string; ip: string; line: number; file: string }

function table(file: string): Row[] {
  return readFileSync(join(import.meta.dirname, 'fixtures/hostnames', file), 'utf8').split('\n').flatMap((text, i) => {
    const l = text.trim()
    if (l === '' || l.startsWith('#')) return []
    const [name, ip] = l.split(/\s+/)
    return [{ name: name!, ip: ip!, line: i + 1, file }]
  })
}

/** Rounds in which every address appears once (a few rows share an address). */
function rounds(rows: Row[]): Row[][] {
  const out: Row[][] = []
  for (const r of rows) {
    let round = out.find((x) => !x.some((y) => y.ip === r.ip))
    if (!round) out.push((round = []))
    round.push(r)
  }
  return out
}

const dns = await startZoneServer({}, { port: 0 })
t.teardown(() => dns.close())

/** Runs every row through a fresh filter with these arguments; returns the rows it refused. */
async function refused(args: string[], rows: Row[]): Promise<Set<Row>> {
  const hit = new Set<Row>()
  for (const round of rounds(rows)) {
    dns.setZone(zone(...round.map((r): Zone => zone(ptr(r.ip, r.name), a(r.name, r.ip)))))
    const h = RdnsHarness.start([...args, '-skipLocal=false'], dns.port)
    const answers = await Promise.all(round.map((r) => h.session(r.ip).connect()))
    round.forEach((r, i) => {
      if (answers[i] !== 'proceed') hit.add(r)
    })
    h.close()
  }
  return hit
}

const dynamic = table('dynamic.txt')
const statics = table('static.txt')

t.test('filter-rdns -dyndns disconnect over the name table', async (t) => {
  t.ok(dynamic.length + statics.length >= 300, `${dynamic.length} dynamic + ${statics.length} static names`)
  t.ok(dynamic.some((r) => r.ip.includes(':')) && statics.some((r) => r.ip.includes(':')), 'IPv6 rows on both sides')
  const hit = await refused(['-dyndns', 'disconnect'], [...dynamic, ...statics])
  const fp = statics.filter((r) => hit.has(r))
  const fn = dynamic.filter((r) => !hit.has(r))
  for (const r of fp) t.comment(`FALSE POSITIVE ${r.file}:${r.line} ${r.name} ${r.ip}`)
  for (const r of fn) t.comment(`false negative ${r.file}:${r.line} ${r.name} ${r.ip}`)
  t.comment(`filter-rdns: ${dynamic.length - fn.length}/${dynamic.length} dynamic refused (${((1 - fn.length / dynamic.length) * 100).toFixed(1)}%), ` +
    `false negatives ${fn.length}, false positives ${fp.length}/${statics.length}`)
  t.equal(fp.length, 0, 'no static or mail-server name refused')
  t.ok(fn.length / dynamic.length <= 0.1, 'at least 90% of the dynamic names refused')
})

t.test('the seed\'s two regexes on the same names (for comparison, not a requirement)', async (t) => {
  const dir = t.testdir({ seed: '.*\\.dyn\\..*\n.*\\.dsl\\..*\n' })
  // With only -dyndnsFile patterns and no built-in evidence, the check is smtpd's regex test,
  // except that it looks at every PTR name (here: one).
  const rows = [...dynamic, ...statics]
  const seed = new Set(rows.filter((r) => /.*\.dyn\..*/.test(r.name) || /.*\.dsl\..*/.test(r.name)))
  const fp = statics.filter((r) => seed.has(r))
  const tp = dynamic.filter((r) => seed.has(r))
  t.comment(`seed regexes: ${tp.length}/${dynamic.length} dynamic caught (${((tp.length / dynamic.length) * 100).toFixed(1)}%), false positives ${fp.length}/${statics.length}` +
    (fp.length ? ` (${fp.map((r) => r.name).join(', ')})` : ''))
  const hit = await refused(['-dyndns', 'disconnect', '-dyndnsFile', `${dir}/seed`], rows)
  t.ok([...seed].every((r) => hit.has(r)), 'every name the seed regexes catch, -dyndnsFile with them catches too')
})
