/**
 * Golden replay: the real smtpd 6.8 streams of test/fixtures/recordings/null
 * (protocol 0.6) played to filter-null with `smtpd-filters replay`; its
 * answers must equal, byte for byte, what the reference null filter answered
 * to the real smtpd. The same sessions converted to protocol 0.4 (smtpd 6.6:
 * token first, tx-mail address in the middle, username first in link-auth)
 * and 0.7 (smtpd 7.8: config|protocol, result first in link-auth) must get
 * the same answers in their version's order. The 0.7 transcript of
 * protocol.md §9 too.
 */

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { convertAnswers, convertStream } from './lib/stream.js'

const root = join(import.meta.dirname, '..')
const cli = join(root, 'dist/cli/smtpd-filters.js')
const filterNull = join(root, 'dist/filters/null/main.js')
const recordings = join(root, 'test/fixtures/recordings/null')
const work = mkdtempSync(join(tmpdir(), 'osf-golden-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

function read(path: string): string[] {
  const p = existsSync(path) ? path : path + '.gz'
  let b = readFileSync(p)
  if (p.endsWith('.gz')) b = gunzipSync(b)
  const s = b.toString('latin1')
  return (s.endsWith('\n') ? s.slice(0, -1) : s).split('\n')
}

/**
 * The reference filter echoed lines of any length; smtpd < 7.4 keeps 2047 bytes of each
 * (protocol.md §0), so we send them cut there: the same delivered bytes (and never a line
 * smtpd's 64 KiB buffer cannot hold). The golden answers, seen as smtpd reads them.
 */
function asSmtpdReads(lines: string[], version: string): string[] {
  return version === '0.7' ? lines : lines.map((l) => (l.length > 2047 ? l.slice(0, 2047) : l))
}

function replay(stream: string, golden: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [cli, 'replay', stream, '--expect', golden, '--quiet', '--', process.execPath, filterNull], { encoding: 'utf8' })
  return { status: r.status, stderr: r.stderr }
}

const scenarios = readdirSync(recordings).filter((d) => existsSync(join(recordings, d, 'null.in')) || existsSync(join(recordings, d, 'null.in.gz')))

t.test('built first', async (t) => {
  t.ok(existsSync(cli) && existsSync(filterNull), 'npm run build has been run')
})

t.test('every null recording, protocol 0.6 as recorded', async (t) => {
  t.ok(scenarios.length >= 28, `${scenarios.length} scenarios`)
  for (const s of scenarios) {
    const dir = join(recordings, s)
    const input = existsSync(join(dir, 'null.in')) ? join(dir, 'null.in') : join(dir, 'null.in.gz')
    const out = join(work, `${s}-0.6.out`)
    writeFileSync(out, asSmtpdReads(read(join(dir, 'null.out')), '0.6').join('\n') + '\n', 'latin1')
    const r = replay(input, out)
    t.equal(r.status, 0, `${s}: answers identical to the reference filter's ${r.stderr}`)
  }
})

for (const version of ['0.4', '0.7']) {
  t.test(`every null recording converted to protocol ${version}`, async (t) => {
    for (const s of scenarios) {
      const dir = join(recordings, s)
      const input = read(join(dir, 'null.in')).filter((l) => !l.startsWith('config|'))
      const stream = join(work, `${s}-${version}.in`)
      const golden = join(work, `${s}-${version}.out`)
      writeFileSync(stream, convertStream(input, version).join('\n') + '\n', 'latin1')
      writeFileSync(golden, asSmtpdReads(convertAnswers(read(join(dir, 'null.out')), version), version).join('\n') + '\n', 'latin1')
      const r = replay(stream, golden)
      t.equal(r.status, 0, `${s} at ${version} ${r.stderr}`)
    }
  })
}

t.test('the 0.7 transcript of protocol.md §9', async (t) => {
  const dir = join(root, 'test/fixtures/transcripts')
  const r = replay(join(dir, 'protocol-0.7.in'), join(dir, 'protocol-0.7.null.out'))
  t.equal(r.status, 0, r.stderr)
})

t.test('the golden comparison can fail', async (t) => {
  const dir = join(recordings, 'ehlo-good')
  const wrong = join(work, 'wrong.out')
  const lines = read(join(dir, 'null.out'))
  const last = lines.findLastIndex((l) => l.endsWith('|proceed'))
  lines[last] = lines[last]!.replace(/proceed$/, 'junk')
  writeFileSync(wrong, lines.join('\n') + '\n')
  const r = replay(join(dir, 'null.in'), wrong)
  t.equal(r.status, 1, 'a changed answer is reported')
  t.match(r.stderr, /differs/)
})
