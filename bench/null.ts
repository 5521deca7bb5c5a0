/**
 * npm run bench — filter-null on generated streams (never a timed test):
 * CPU per message, messages/s, peak RSS and end-of-message latency at
 * K = 1, 10, 100 interleaved sessions (4 KB messages), then ten 5 MB
 * messages in flight, then the line splitter against split2.
 *
 *   node dist/bench/null.js [--sessions N] [--quick]
 */

import { join } from 'node:path'
import { drive, type DriveResult } from './lib/driver.js'
import { nodeCommand } from './lib/node.js'
import { splitterComparison } from './lib/splitters.js'

const root = join(import.meta.dirname, '..')
const filterNull = nodeCommand(join(root, 'filters/null/main.js'))
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const sessions = Number(args[args.indexOf('--sessions') + 1]) || (quick ? 300 : 2000)

function row(r: DriveResult): string {
  const dot = r.latencyMs.dot
  return `| ${r.concurrency} | ${r.size} | ${r.sessions} | ${r.sessionsPerSec} | ${r.megabytesPerSec} | ${r.cpuPerSessionUs} | ${r.workCpuPerSessionUs} | ${r.peakRssMB} | ${dot ? `${dot.p50} / ${dot.p99}` : '-'} | ${r.errors.length} |`
}

const results: DriveResult[] = []
console.log('## filter-null (Node ' + process.version + ')\n')
console.log('| K | size | sessions | msgs/s | MB/s | CPU µs/msg (with startup) | CPU µs/msg (work) | peak RSS MB | dot p50 / p99 ms | errors |')
console.log('|---|---|---|---|---|---|---|---|---|---|')
for (const k of [1, 10, 100]) {
  const r = await drive({ command: filterNull, sessions, concurrency: k, size: '4k', verify: true, label: 'filter-null' })
  results.push(r)
  console.log(row(r))
}
const big = await drive({ command: filterNull, sessions: quick ? 10 : 20, concurrency: 10, size: '5m', verify: true, label: 'filter-null 5 MB' })
results.push(big)
console.log(row(big))
for (const r of results) for (const e of r.errors.slice(0, 5)) console.log(`error (${r.label}, K=${r.concurrency}): ${e}`)

console.log('\n## Line splitting: our Buffer splitter vs split2 (same 8-bit stream)\n')
console.log(await splitterComparison(quick ? 20 : 60))
