/**
 * filter-rdns benchmark (never a timed test): sessions/s, filter CPU per
 * session, peak RSS and connect latency, with a resolver answering in
 * 0.8 ms and in 20 ms, at K = 1, 10, 100 concurrent sessions.
 *
 *   npm run build && node dist/bench/rdns.js [--quick] [--sessions N] [--json]
 *
 * The filter runs as the seed's three built-ins would be replaced:
 * `filter-rdns -dyndns disconnect -rdns disconnect -fcrdns disconnect`,
 * with -nameserver pointing at a small UDP DNS responder started by this
 * script in a child process (`--dns-child`), on 127.0.0.1 and a random
 * port. Every session comes from a different address (cold cache: one PTR
 * and, when there is a name, one A query per session, nothing cached),
 * and the answers mix the cases: 70% a forward-confirmed name, 10% no PTR,
 * 10% a name whose A is elsewhere, 10% a dynamic name; so 30% of the
 * sessions are disconnected at connect, as smtpd would be told.
 *
 * Node's timers have a 1 ms resolution, so the "0.8 ms" responder answers
 * after about 1 ms; the measured round trip is printed with the results.
 */

import { spawn, type ChildProcess } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { Resolver } from 'node:dns/promises'
import { join } from 'node:path'
import { drive, type DriveResult } from './lib/driver.js'
import { nodeCommand } from './lib/node.js'

// dist/bench/rdns.js → dist/
const root = join(import.meta.dirname, '..')
const args = process.argv.slice(2)

// ---------------------------------------------------------------------------
// The DNS responder (child process)

/**
 * Client 10.a.b.c is number k = a·65536 + b·256 + c (bench/lib/gen.ts clientIp).
 * k % 10: 0–6 mail.c<k>.example.org (A = the client), 7 no PTR, 8 mail.m<k>.example.org
 * (A = 192.0.2.1), 9 dsl-<k>.pool.example.net (A = the client).
 */
function ptrName(k: number): string | null {
  const c = k % 10
  if (c === 7) return null
  if (c === 8) return `mail.m${k}.example.org`
  if (c === 9) return `dsl-${k}.pool.example.net`
  return `mail.c${k}.example.org`
}

function ipOf(k: number): number[] {
  return [10, (k >> 16) & 255, (k >> 8) & 255, k & 255]
}

function encodeName(name: string): Buffer {
  const parts = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]))
  return Buffer.concat([...parts, Buffer.from([0])])
}

function answer(query: Buffer): Buffer | null {
  if (query.length < 17) return null
  const labels: string[] = []
  let i = 12
  while (i < query.length && query[i] !== 0) {
    const n = query[i]!
    labels.push(query.subarray(i + 1, i + 1 + n).toString('ascii').toLowerCase())
    i += n + 1
  }
  if (i + 5 > query.length) return null
  const qtype = query.readUInt16BE(i + 1)
  const question = query.subarray(12, i + 5)
  const name = labels.join('.')
  let rcode = 0
  const rrs: Buffer[] = []
  const rr = (type: number, rdata: Buffer): void => {
    const head = Buffer.alloc(12)
    head.writeUInt16BE(0xc00c, 0)
    head.writeUInt16BE(type, 2)
    head.writeUInt16BE(1, 4)
    head.writeUInt32BE(300, 6)
    head.writeUInt16BE(rdata.length, 10)
    rrs.push(head, rdata)
  }
  let m: RegExpExecArray | null
  if (qtype === 12 && (m = /^(\d+)\.(\d+)\.(\d+)\.10\.in-addr\.arpa$/.exec(name))) {
    const k = (Number(m[3]) << 16) | (Number(m[2]) << 8) | Number(m[1])
    const ptr = ptrName(k)
    if (ptr === null) rcode = 3
    else rr(12, encodeName(ptr))
  } else if ((m = /^mail\.([cm])(\d+)\.example\.org$/.exec(name)) || (m = /^dsl-()(\d+)\.pool\.example\.net$/.exec(name))) {
    if (qtype === 1) rr(1, Buffer.from(m[1] === 'm' ? [192, 0, 2, 1] : ipOf(Number(m[2]))))
  } else rcode = 3
  const header = Buffer.alloc(12)
  header.writeUInt16BE(query.readUInt16BE(0), 0)
  header.writeUInt16BE(0x8180 | (query.readUInt16BE(2) & 0x0100) | rcode, 2)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(rrs.length / 2, 6)
  return Buffer.concat([header, question, ...rrs])
}

async function dnsChild(delayMs: number): Promise<void> {
  const sock = createSocket('udp4')
  sock.on('message', (msg, rinfo) => {
    const reply = answer(msg)
    if (!reply) return
    const send = () => sock.send(reply, rinfo.port, rinfo.address)
    if (delayMs > 0) setTimeout(send, delayMs)
    else send()
  })
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()))
  process.stdout.write(JSON.stringify({ listening: sock.address().port }) + '\n')
  process.on('SIGTERM', () => process.exit(0))
}

// ---------------------------------------------------------------------------
// The benchmark

interface Responder {
  readonly port: number
  readonly child: ChildProcess
}

async function startResponder(delayMs: number): Promise<Responder> {
  const child = spawn(process.execPath, [import.meta.filename, '--dns-child', String(delayMs)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    let buf = ''
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString()
      const m = /\{"listening":(\d+)\}/.exec(buf)
      if (m) resolve(Number(m[1]))
    })
    child.on('exit', (code) => reject(new Error(`DNS responder exited (${code})`)))
  })
  return { port, child }
}

/** p50 round trip of a PTR query, measured by a client of our own. */
async function roundTrip(port: number): Promise<number> {
  const r = new Resolver({ timeout: 1000, tries: 1 })
  r.setServers([`127.0.0.1:${port}`])
  const ms: number[] = []
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now()
    await r.reverse(`10.9.${i}.1`).catch(() => [])
    ms.push(performance.now() - t0)
  }
  ms.sort((a, b) => a - b)
  return Math.round(ms[25]! * 100) / 100
}

async function main(): Promise<void> {
  const quick = args.includes('--quick')
  const json = args.includes('--json')
  const fixed = Number(args[args.indexOf('--sessions') + 1]) || 0
  const sessionsFor = (k: number, delay: number): number => {
    if (fixed) return fixed
    // About 5 s of work per run at the expected rate, at least 200 sessions.
    const perSession = delay * 2 + 0.3
    const n = Math.round(Math.max(200, Math.min(20000, (5000 / perSession) * k)))
    return quick ? Math.max(100, Math.round(n / 5)) : n
  }
  const filter = (port: number, extra: string[] = []) => [
    ...nodeCommand(join(root, 'filters/rdns/main.js')),
    '-dyndns', 'disconnect', '-rdns', 'disconnect', '-fcrdns', 'disconnect', '-nameserver', `127.0.0.1:${port}`, '-loglevel', 'warn', ...extra,
  ]
  const rows: (DriveResult & { delayMs: number; rttMs: number; variant: string })[] = []
  if (!json) {
    console.log(`## filter-rdns (Node ${process.version}), cold cache: a new client address every session\n`)
    console.log('| resolver | RTT p50 ms | K | variant | sessions | sessions/s | CPU µs/session (work) | CPU µs/session (with startup) | peak RSS MB | connect p50 / p99 ms | decisions | errors |')
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|')
  }
  for (const delay of [0.8, 20]) {
    const dns = await startResponder(delay)
    try {
      const rtt = await roundTrip(dns.port)
      const runs: [number, string, string[], Partial<Parameters<typeof drive>[0]>][] = [
        [1, 'seed line', [], {}],
        [10, 'seed line', [], {}],
        [100, 'seed line', [], {}],
        // The whole session with a 4 KB message through the filter, for the header.
        [100, '+ -header', ['-header'], {}],
      ]
      for (const [k, variant, extra, more] of runs) {
        const sessions = sessionsFor(k, delay)
        const r = await drive({ command: filter(dns.port, extra), sessions, concurrency: k, ips: sessions, size: '4k', label: `rdns ${variant}`, ...more })
        rows.push({ ...r, delayMs: delay, rttMs: rtt, variant })
        if (!json) {
          const c = r.latencyMs.connect
          const dec = Object.entries(r.decisions).map(([d, n]) => `${d} ${n}`).join(', ')
          console.log(`| ${delay} ms | ${rtt} | ${k} | ${variant} | ${r.sessions} | ${r.sessionsPerSec} | ${r.workCpuPerSessionUs} | ${r.cpuPerSessionUs} | ${r.peakRssMB} | ${c ? `${c.p50} / ${c.p99}` : '-'} | ${dec} | ${r.errors.length} |`)
          for (const e of r.errors.slice(0, 3)) console.log(`error: ${e}`)
        }
      }
    } finally {
      dns.child.kill('SIGTERM')
    }
  }
  if (json) console.log(JSON.stringify(rows, null, 2))
  else {
    const target = rows.find((r) => r.delayMs === 20 && r.concurrency === 100 && r.variant === 'seed line')!
    console.log(`\ntarget ≥ 1000 sessions/s at K=100 with the 20 ms resolver: ${target.sessionsPerSec} sessions/s (${target.sessionsPerSec >= 1000 ? 'met' : 'NOT met'})`)
  }
}

if (args[0] === '--dns-child') await dnsChild(Number(args[1]))
else await main()
