/**
 * filter-senderscore against Debian's Go filter 0.1.1, side by side, in one
 * run: the same generated smtpd stream (bench/lib/driver.ts, gated like
 * smtpd), the same resolver, the same flags, and the ratios.
 *
 * Both filters run inside a network namespace (test/lib/lab.ts) whose
 * resolv.conf points at a dns2 zone server on 127.0.0.1:53 answering
 * d.c.b.a.score.senderscore.com with 127.0.4.<score> for every client; the
 * Go filter only knows the system resolver, so ours uses it too (no
 * -nameserver). Every session comes from its own IP, so no answer is
 * served twice from a cache. Two resolvers: the zone server as it is
 * (~1 ms), and the same one answering 20 ms late.
 *
 * Flags: the seed's `-blockBelow 10 -junkBelow 70` without `-slowFactor`
 * (a delay would measure sleeping, the same for both). Ours registers only
 * the phases that can answer differently; the `+header` rows add
 * -scoreHeader, which sends every message through our filter as the Go
 * filter's registrations always do.
 *
 *   node dist/bench/senderscore.js [--sessions N] [--slow-sessions N] [--quick] [--json FILE]
 *
 * Needs root (network namespace) and `npm run build`. Never a timed test.
 */

import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { drive, type DriveResult } from './lib/driver.js'
import { clientIp } from './lib/gen.js'
import { Lab, type Zone } from '../test/lib/lab.js'

const root = join(import.meta.dirname, '..')
const GO = '/usr/libexec/opensmtpd/filter-senderscore'
const OURS = [process.execPath, join(root, 'filters/senderscore/main.js')]
const FLAGS = ['-blockBelow', '10', '-junkBelow', '70']

const args = process.argv.slice(2)
const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined)
const quick = args.includes('--quick')
const sessions = Number(opt('--sessions')) || (quick ? 500 : 2000)
const slowSessions = Number(opt('--slow-sessions')) || (quick ? 300 : 1000)
const paced = quick ? 200 : 500
const jsonFile = opt('--json')

if (process.getuid?.() !== 0) {
  console.error('bench/senderscore: needs root (a network namespace for the shared resolver)')
  process.exit(2)
}
if (!existsSync(GO)) {
  console.error(`bench/senderscore: ${GO} is not installed (apt install opensmtpd-filter-senderscore)`)
  process.exit(2)
}

/** Deterministic score per IP, ~70 % below 70 like ../shared/bench/mk_dns_hosts.py. */
function scoreOf(ip: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < ip.length; i++) h = Math.imul(h ^ ip.charCodeAt(i), 0x01000193) >>> 0
  return h % 101
}

function senderscoreZone(n: number, delayMs: number): Zone {
  const z: Zone = {}
  for (let i = 0; i < n; i++) {
    const ip = clientIp(i, n)
    z[`${ip.split('.').reverse().join('.')}.score.senderscore.com`] = delayMs > 0 ? { A: [`127.0.4.${scoreOf(ip)}`], delayMs } : { A: [`127.0.4.${scoreOf(ip)}`] }
  }
  return z
}

const lab = await Lab.create({ prefix: 'osf-ssb' })
process.on('exit', () => void lab.close())

/** Median answer time of the namespace's resolver, measured from inside it with c-ares. */
async function resolverMs(names: string[]): Promise<number> {
  const script = `
    const { Resolver } = require('node:dns').promises; const r = new Resolver({ timeout: 2000, tries: 1 });
    (async () => { const names = ${JSON.stringify(names)}; const ts = [];
      for (const n of names) { const t = process.hrtime.bigint(); await r.resolve4(n).catch(() => {}); ts.push(Number(process.hrtime.bigint() - t) / 1e6); }
      ts.sort((a, b) => a - b); console.log(ts[Math.floor(ts.length / 2)]); })()`
  const r = await lab.exec([process.execPath, '-e', script], { timeoutMs: 60_000 })
  return Math.round(Number(r.stdout.toString().trim()) * 100) / 100
}

interface Run {
  readonly scenario: string
  readonly filter: 'go' | 'ours' | 'ours+header'
  readonly result: DriveResult
}

const runs: Run[] = []

async function run(scenario: string, filter: Run['filter'], o: { sessions: number; concurrency?: number; rate?: number }): Promise<DriveResult> {
  // The Go filter writes a line per session on stderr (the driver passes stderr through):
  // silence it with a shell that execs the filter, so the measured pid is still the filter.
  const command = filter === 'go'
    ? ['/bin/sh', '-c', `exec ${GO} ${FLAGS.join(' ')} 2>/dev/null`]
    : [...OURS, ...FLAGS, ...(filter === 'ours+header' ? ['-scoreHeader'] : []), '-loglevel', 'warn']
  const result = await drive({
    command,
    sessions: o.sessions,
    concurrency: o.concurrency ?? 0,
    rate: o.rate,
    ips: Math.max(sessions, slowSessions, paced),
    netns: lab.name,
    label: `${filter} ${scenario}`,
  })
  runs.push({ scenario, filter, result })
  const c = result.latencyMs.connect
  console.error(`${filter.padEnd(11)} ${scenario.padEnd(28)} ${String(result.sessionsPerSec).padStart(6)} sessions/s  ${String(result.cpuPerSessionUs).padStart(5)} µs CPU/session  connect p50/p99 ${c?.p50}/${c?.p99} ms  RSS ${result.peakRssMB} MB  errors ${result.errors.length}`)
  for (const e of result.errors.slice(0, 3)) console.error(`  error: ${e}`)
  return result
}

const allIps = Math.max(sessions, slowSessions, paced)
await lab.startDns(senderscoreZone(allIps, 0))
const probe = Array.from({ length: 40 }, (_, i) => `${clientIp(i, allIps).split('.').reverse().join('.')}.score.senderscore.com`)
const fastMs = await resolverMs(probe)

for (const f of ['go', 'ours', 'ours+header'] as const) await run(`fast DNS, K=100`, f, { sessions, concurrency: 100 })
for (const f of ['go', 'ours', 'ours+header'] as const) await run(`fast DNS, K=10`, f, { sessions, concurrency: 10 })
for (const f of ['go', 'ours'] as const) await run(`fast DNS, paced 100/s`, f, { sessions: paced, rate: 100 })

await lab.dns!.setZone(senderscoreZone(allIps, 20))
const slowMs = await resolverMs(probe)

for (const f of ['go', 'ours', 'ours+header'] as const) await run(`20 ms DNS, K=100`, f, { sessions: slowSessions, concurrency: 100 })
for (const f of ['go', 'ours'] as const) await run(`20 ms DNS, paced 100/s`, f, { sessions: paced, rate: 100 })

await lab.close()

const get = (scenario: string, filter: Run['filter']) => runs.find((r) => r.scenario === scenario && r.filter === filter)?.result
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : NaN)

const lines: string[] = []
lines.push(`## filter-senderscore vs Debian's Go filter 0.1.1 (Node ${process.version})`, '')
lines.push(`Flags \`${FLAGS.join(' ')}\`; ${sessions} sessions (fast DNS), ${slowSessions} (20 ms DNS), ${paced} paced; one client IP per session; 4 KB messages.`)
lines.push(`Resolver (dns2 zone server in the namespace, c-ares median from inside): fast ${fastMs} ms, slow ${slowMs} ms.`, '')
lines.push('| scenario | filter | sessions/s | CPU µs/session (work) | peak RSS MB | connect p50 / p99 ms | decisions | errors |')
lines.push('|---|---|---|---|---|---|---|---|')
for (const r of runs) {
  const c = r.result.latencyMs.connect
  const d = Object.entries(r.result.decisions).map(([k, v]) => `${k} ${v}`).join(', ')
  lines.push(`| ${r.scenario} | ${r.filter} | ${r.result.sessionsPerSec} | ${r.result.cpuPerSessionUs} (${r.result.workCpuPerSessionUs}) | ${r.result.peakRssMB} | ${c ? `${c.p50} / ${c.p99}` : '-'} | ${d} | ${r.result.errors.length} |`)
}
lines.push('', '### Ratios (Go / ours for CPU and latency, ours / Go for throughput)', '')
lines.push('| scenario | filter | CPU per session | sessions/s | connect p99 |')
lines.push('|---|---|---|---|---|')
for (const scenario of [...new Set(runs.map((r) => r.scenario))]) {
  const go = get(scenario, 'go')
  for (const f of ['ours', 'ours+header'] as const) {
    const ours = get(scenario, f)
    if (!go || !ours) continue
    lines.push(`| ${scenario} | ${f} | ${ratio(go.cpuPerSessionUs, ours.cpuPerSessionUs)}× less | ${ratio(ours.sessionsPerSec, go.sessionsPerSec)}× | ${ratio(go.latencyMs.connect?.p99, ours.latencyMs.connect?.p99)}× lower |`)
  }
}
const slowOurs = get('20 ms DNS, K=100', 'ours')
const slowGo = get('20 ms DNS, K=100', 'go')
const fastOurs = get('fast DNS, K=100', 'ours')
const pacedSlow = get('20 ms DNS, paced 100/s', 'ours')
const pacedFast = get('fast DNS, paced 100/s', 'ours')
lines.push('', '### Targets (issue 3)', '')
lines.push(`- CPU per session <= 500 µs (fast DNS, K=100): ${fastOurs?.cpuPerSessionUs} µs ${fastOurs && fastOurs.cpuPerSessionUs <= 500 ? 'met' : 'MISSED'}`)
lines.push(`- >= 1000 sessions/s at K=100 with the 20 ms resolver, >= 20× the Go filter: ${slowOurs?.sessionsPerSec}/s, ${ratio(slowOurs?.sessionsPerSec, slowGo?.sessionsPerSec)}× ${slowOurs && slowGo && slowOurs.sessionsPerSec >= 1000 && slowOurs.sessionsPerSec >= 20 * slowGo.sessionsPerSec ? 'met' : 'MISSED'}`)
lines.push(`- connect p99 <= 25 ms at 100 sessions/s: ${pacedFast?.latencyMs.connect?.p99} ms (fast DNS), ${pacedSlow?.latencyMs.connect?.p99} ms (20 ms DNS) ${pacedSlow && (pacedSlow.latencyMs.connect?.p99 ?? Infinity) <= 25 ? 'met' : 'MISSED'}`)
console.log(lines.join('\n'))
if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ fastMs, slowMs, runs }, null, 2))
else console.log('\n```json\n' + JSON.stringify({ fastMs, slowMs, runs: runs.map((r) => ({ scenario: r.scenario, filter: r.filter, ...r.result })) }) + '\n```')
