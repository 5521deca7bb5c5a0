// The real smtpd 6.8 streams of test/fixtures/recordings/null/rdns-* (one per DNS
// situation) replayed to the built filter-rdns, wired as the seed's three built-ins, with a
// dns2 zone on 127.0.0.1 that answers what the recording's DNS answered. For each, what the
// built-ins decided from smtpd's own link-connect values (rdns, fcrdns) and what we decide:
// the same, except where smtpd counted a SERVFAIL as a failure.
import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startZoneServer } from './lib/dns-zone-server.js'
import { a, host, ptr, zone } from './lib/zone.js'

const root = join(import.meta.dirname, '..')
const cli = join(root, 'dist/cli/smtpd-filters.js')
const bin = join(root, 'dist/filters/rdns/main.js')
const recordings = join(root, 'test/fixtures/recordings/null')

// What the recording's resolver answered (each scenario's dns.log).
const RECORDED = zone(
  // 127.0.0.11: NXDOMAIN
  ptr('127.0.0.12', 'mail.mismatch.example.org'), a('mail.mismatch.example.org', '127.0.0.99'),
  ptr('127.0.0.13', 'ghost.example.org'),
  host('127-0-0-14.dyn.example.net', '127.0.0.14'),
  host('static-127-0-0-16.mail.example.net', '127.0.0.16'),
  { '18.0.0.127.in-addr.arpa': { rcode: 'SERVFAIL' } },
  ptr('127.0.0.19', 'dsl-1-2-3-4.dyn.example.net'), a('dsl-1-2-3-4.dyn.example.net', '1.2.3.4'),
)

async function run(cmd: string, args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(cmd, args, { encoding: 'utf8' })
    return { status: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string }
    return { status: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

const SEED = {
  dyndns: '550 no residential connections',
  rdns: '550 no rDNS is so 80s',
  fcrdns: '550 no FCrDNS is so 80s',
}

/** The seed's chain, as smtpd 6.8 evaluates it (protocol.md §6.2) on its link-connect values. */
function builtIn(rdns: string, fcrdns: string): string {
  const name = rdns === '<unknown>' ? '<unknown>' : rdns.toLowerCase()
  if (/.*\.dyn\..*/.test(name) || /.*\.dsl\..*/.test(name)) return `disconnect|${SEED.dyndns}`
  if (name === '<unknown>') return `disconnect|${SEED.rdns}`
  if (fcrdns !== 'pass') return `disconnect|${SEED.fcrdns}`
  return 'proceed'
}

const EXPECT: Record<string, { ours: string; why: string }> = {
  'rdns-none': { ours: `disconnect|${SEED.rdns}`, why: 'no PTR' },
  'rdns-mismatch': { ours: `disconnect|${SEED.fcrdns}`, why: 'the A is another address' },
  'rdns-nxforward': { ours: `disconnect|${SEED.fcrdns}`, why: 'the name has no A' },
  'rdns-dyn': { ours: `disconnect|${SEED.dyndns}`, why: 'dynamic name, forward-confirmed' },
  'rdns-dyn-nomatch': { ours: `disconnect|${SEED.dyndns}`, why: 'dynamic name, not confirmed: dyndns first, as in the seed chain' },
  'rdns-static': { ours: 'proceed', why: 'static-… name' },
  'rdns-servfail': { ours: 'proceed', why: 'SERVFAIL: smtpd said <unknown>|fail and the built-in !rdns refused for good' },
}

t.test('replayed recordings', { skip: existsSync(cli) && existsSync(bin) ? false : 'run npm run build first' }, async (t) => {
  const dns = await startZoneServer(RECORDED, { port: 0 })
  t.teardown(() => dns.close())
  for (const [scenario, { ours, why }] of Object.entries(EXPECT)) {
    const input = join(recordings, scenario, 'null.in')
    const lines = readFileSync(input, 'latin1').split('\n')
    const lc = lines.find((l) => l.includes('|link-connect|') && !l.includes('|127.0.0.254:'))!.split('|')
    const [rdns, fcrdns, src] = [lc[6]!, lc[7]!, lc[8]!]
    // Asynchronously: the zone server answers from this process's event loop.
    const r = await run(process.execPath, [cli, 'replay', input, '--', process.execPath, bin,
      '-dyndns', 'disconnect', '-rdns', 'disconnect', '-fcrdns', 'disconnect', '-skipLocal=false', '-nameserver', `127.0.0.1:${dns.port}`])
    t.equal(r.status, 0, `${scenario}: every request answered once ${r.stderr.split('\n').filter((l) => !l.startsWith('{')).join(' ')}`)
    const answers = r.stdout.split('\n').filter((l) => l.startsWith('filter-result|'))
    // the recordings' readiness probe (127.0.0.254) comes first in some; the client's session is the one with this link-connect
    const answer = answers.find((l) => l.startsWith(`filter-result|${lc[5]}|`))!.split('|').slice(3).join('|')
    const smtpd = builtIn(rdns, fcrdns)
    t.equal(answer, ours, `${scenario} (${src}, smtpd: ${rdns}|${fcrdns}): ${why}`)
    if (scenario === 'rdns-servfail') t.not(answer, smtpd, `the built-ins: ${smtpd}`)
    else t.equal(answer, smtpd, 'same as the built-ins')
    const verdict = r.stderr.split('\n').find((l) => l.includes('"msg":"rdns"'))
    t.ok(verdict, `one verdict line: ${verdict}`)
  }
})
