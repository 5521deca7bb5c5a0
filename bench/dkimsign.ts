/**
 * filter-dkimsign side by side with Debian's C filter (/usr/libexec/opensmtpd/filter-dkimsign),
 * both driven as smtpd 6.8 drives them (bench/lib/driver.ts), in one run:
 *
 * - 4 KB messages, K = 10 sessions at once, RSA-2048 and Ed25519 (simple/simple, the C
 *   filter's default): CPU per message (with and without the filter's startup), messages/s,
 *   peak RSS, end-of-message latency;
 * - ten 5 MB messages in flight (K = 10): MB/s, CPU per message, peak RSS.
 *
 * The two filters take turns (C, ours, C, ours, …) for `--rounds` rounds and the medians are
 * compared, so that a busy machine disturbs both alike. For 4 KB messages each round also runs
 * a short session (a sixth of the messages): the difference of the two runs' CPU over the
 * difference of their message counts is the steady-state CPU per message, without the startup
 * and without the JIT compiling the hot paths (~0.2 s of CPU spread over the first thousands
 * of messages; a filter runs for days). The targets are judged on it; the work CPU (after
 * register|ready, JIT included) is shown too. Both filters' stderr goes to
 * /dev/null (ours logs nothing per signed message at the default level; the C filter
 * nothing at all). Never a timed test.
 *
 *   npm run build && node dist/bench/dkimsign.js [--sessions N (6000)] [--rounds R (3)] [--big N (20)] [--quick] [--json FILE]
 */

import { copyFileSync, chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { drive, type DriveResult } from './lib/driver.js'
import { nodeCommand } from './lib/node.js'

const C_FILTER = '/usr/libexec/opensmtpd/filter-dkimsign'

/** The project root, from dist/bench or bench. */
function projectRoot(): string {
  let d = import.meta.dirname
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d)
    if (up === d) throw new Error('project root not found')
    d = up
  }
  return d
}

const root = projectRoot()
const args = process.argv.slice(2)
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(name)
  return i >= 0 ? Number(args[i + 1]) : dflt
}
const quick = args.includes('--quick')
const sessions = opt('--sessions', quick ? 600 : 6000)
const rounds = opt('--rounds', quick ? 1 : 3)
const bigSessions = opt('--big', quick ? 10 : 20)
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined

// The fixture keys, private (0600) like real ones: no permission warning on either side.
const keyDir = mkdtempSync(join(tmpdir(), 'bench-dkimsign-'))
const KEY = { rsa: join(keyDir, 'rsa2048.key'), ed: join(keyDir, 'ed25519.key') }
copyFileSync(join(root, 'test/fixtures/dkim/rsa2048.key'), KEY.rsa)
copyFileSync(join(root, 'test/fixtures/dkim/ed25519.key'), KEY.ed)
chmodSync(KEY.rsa, 0o600)
chmodSync(KEY.ed, 0o600)

/** Runs argv with stderr to /dev/null; `exec` keeps the pid, so /proc figures are the filter's. */
const quiet = (argv: string[]): string[] => ['/bin/sh', '-c', 'exec "$@" 2>/dev/null', 'sh', ...argv]
const ours = (flags: string[]): string[] => quiet([...nodeCommand(join(root, 'dist/filters/dkimsign/main.js')), ...flags])
const theirs = (flags: string[]): string[] => quiet([C_FILTER, ...flags])

interface Scenario {
  name: string
  flags: string[]
  size: '4k' | '5m'
  sessions: number
}

const scenarios: Scenario[] = [
  { name: 'RSA-2048, 4 KB, K=10', flags: ['-d', 'example.org', '-s', 'rsa', '-k', KEY.rsa], size: '4k', sessions },
  { name: 'Ed25519, 4 KB, K=10', flags: ['-a', 'ed25519-sha256', '-d', 'example.org', '-s', 'ed', '-k', KEY.ed], size: '4k', sessions },
  { name: 'RSA-2048, ten 5 MB in flight', flags: ['-d', 'example.org', '-s', 'rsa', '-k', KEY.rsa], size: '5m', sessions: bigSessions },
]

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

interface Figures {
  cpuPerMsgUs: number
  workCpuPerMsgUs: number
  msgsPerSec: number
  megabytesPerSec: number
  peakRssMB: number
  dotP50Ms: number
  dotP99Ms: number
  /** message bytes per second of the filter's own CPU time: its capacity, whatever the driver manages */
  megabytesPerCpuSec: number
  /** the spread of the work CPU over the rounds */
  workCpuRange: [number, number]
  /** CPU per message at steady state (see the header); NaN for the 5 MB runs */
  steadyCpuPerMsgUs: number
  errors: number
}

const cpuMs = (r: DriveResult): number => r.cpuUserMs + r.cpuSysMs

function figures(runs: DriveResult[], short: DriveResult[] = []): Figures {
  const m = (f: (r: DriveResult) => number): number => Math.round(median(runs.map(f)) * 100) / 100
  return {
    cpuPerMsgUs: m((r) => r.cpuPerSessionUs),
    workCpuPerMsgUs: m((r) => r.workCpuPerSessionUs),
    msgsPerSec: m((r) => r.sessionsPerSec),
    megabytesPerSec: m((r) => r.megabytesPerSec),
    peakRssMB: m((r) => r.peakRssMB),
    dotP50Ms: m((r) => r.latencyMs.dot?.p50 ?? 0),
    dotP99Ms: m((r) => r.latencyMs.dot?.p99 ?? 0),
    megabytesPerCpuSec: m((r) => (r.megabytesPerSec * r.seconds) / ((r.cpuUserMs + r.cpuSysMs) / 1000)),
    workCpuRange: [Math.min(...runs.map((r) => r.workCpuPerSessionUs)), Math.max(...runs.map((r) => r.workCpuPerSessionUs))],
    steadyCpuPerMsgUs:
      short.length === runs.length
        ? Math.round(median(runs.map((r, i) => ((cpuMs(r) - cpuMs(short[i]!)) * 1000) / (r.sessions - short[i]!.sessions))))
        : NaN,
    errors: runs.reduce((a, r) => a + r.errors.length, 0),
  }
}

if (!existsSync(C_FILTER)) {
  console.log(`${C_FILTER} is not installed (Debian opensmtpd-filter-dkimsign): nothing to compare with`)
  process.exit(1)
}

const results: { scenario: string; c: Figures; ours: Figures; ratios: Record<string, number> }[] = []
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ')
console.log(`## filter-dkimsign vs Debian's C filter-dkimsign (Node ${process.version}, ${rounds} round(s), medians)\n`)
console.log(`load average at the start: ${load()}\n`)
for (const s of scenarios) {
  const cRuns: DriveResult[] = []
  const oRuns: DriveResult[] = []
  const cShort: DriveResult[] = []
  const oShort: DriveResult[] = []
  const steady = s.size === '4k'
  for (let r = 0; r < rounds; r++) {
    const common = { sessions: s.sessions, concurrency: 10, size: s.size } as const
    const brief = { ...common, sessions: Math.max(100, Math.round(s.sessions / 6)) }
    if (steady) cShort.push(await drive({ ...brief, command: theirs(s.flags), label: 'C' }))
    cRuns.push(await drive({ ...common, command: theirs(s.flags), label: 'C' }))
    if (steady) oShort.push(await drive({ ...brief, command: ours(s.flags), label: 'ours' }))
    oRuns.push(await drive({ ...common, command: ours(s.flags), label: 'ours' }))
  }
  for (const run of [...cShort, ...cRuns, ...oShort, ...oRuns]) for (const e of run.errors.slice(0, 3)) console.log(`error (${run.label}, ${s.name}): ${e}`)
  const c = figures(cRuns, cShort)
  const o = figures(oRuns, oShort)
  const ratio = (a: number, b: number): number => (b === 0 ? NaN : Math.round((a / b) * 100) / 100)
  const ratios = {
    cpu: ratio(o.cpuPerMsgUs, c.cpuPerMsgUs),
    workCpu: ratio(o.workCpuPerMsgUs, c.workCpuPerMsgUs),
    steadyCpu: ratio(o.steadyCpuPerMsgUs, c.steadyCpuPerMsgUs),
    msgsPerSec: ratio(o.msgsPerSec, c.msgsPerSec),
    megabytesPerSec: ratio(o.megabytesPerSec, c.megabytesPerSec),
    rss: ratio(o.peakRssMB, c.peakRssMB),
  }
  results.push({ scenario: s.name, c, ours: o, ratios })
  const big = s.size === '5m'
  console.log(`### ${s.name} (${s.sessions} messages per run)\n`)
  console.log(`| | CPU µs/msg (with startup) | CPU µs/msg (work; min-max) | CPU µs/msg (steady state) | msgs/s | MB/s | MB per CPU-s | peak RSS MB | "." p50 / p99 ms | errors |`)
  console.log(`|---|---|---|---|---|---|---|---|---|---|`)
  for (const [who, f] of [['C filter-dkimsign', c], ['ours', o]] as const) {
    console.log(`| ${who} | ${f.cpuPerMsgUs} | ${f.workCpuPerMsgUs} (${f.workCpuRange[0]}-${f.workCpuRange[1]}) | ${Number.isNaN(f.steadyCpuPerMsgUs) ? '-' : f.steadyCpuPerMsgUs} | ${f.msgsPerSec} | ${f.megabytesPerSec} | ${f.megabytesPerCpuSec} | ${f.peakRssMB} | ${f.dotP50Ms} / ${f.dotP99Ms} | ${f.errors} |`)
  }
  console.log(`| ours / C | ${ratios.cpu}× | ${ratios.workCpu}× | ${Number.isNaN(ratios.steadyCpu) ? '-' : `${ratios.steadyCpu}×`} | ${ratios.msgsPerSec}× | ${ratios.megabytesPerSec}× | ${ratio(o.megabytesPerCpuSec, c.megabytesPerCpuSec)}× | ${ratios.rss}× | | |`)
  const targets = big
    ? [`MB/s ≥ 30: ${o.megabytesPerSec >= 30 ? 'met' : 'NOT met'} (${o.megabytesPerSec})`, `RSS ≤ 70 MB: ${o.peakRssMB <= 70 ? 'met' : 'NOT met'} (${o.peakRssMB})`]
    : [
        `CPU/msg (steady state) ≤ ${s.name.startsWith('RSA') ? '0.5' : '0.4'}× C: ${ratios.steadyCpu <= (s.name.startsWith('RSA') ? 0.5 : 0.4) ? 'met' : 'NOT met'} (${ratios.steadyCpu}×; work CPU ${ratios.workCpu}×)`,
        `msgs/s ≥ 2× C: ${ratios.msgsPerSec >= 2 ? 'met' : 'NOT met'} (${ratios.msgsPerSec}×)`,
      ]
  console.log(`\nTargets: ${targets.join('; ')}\n`)
}
console.log(`load average at the end: ${load()}`)
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ node: process.version, rounds, results }, null, 2))
