// The held message goes back to smtpd by two paths: bytes straight from the spool (the last
// data filter, no header edit: Stage.replay's direct path, ProtocolWriter.datalines) and line
// strings (a header edit, or another filter after it). They must write the same bytes, in
// memory and spilled, for every kind of line: dots, 8-bit bytes, bare CRs, lines across the
// spool's 64 KiB blocks and its read buffer, lines smtpd < 7.4 cuts or 7.4 cannot read whole.
// Also: data-lines that the runtime's fast path hands on (Runtime.dataLineFast) and those it
// leaves to the full parse give the same answers.

import t from 'tap'
import type { FilterDefinition } from '../lib/filter.js'
import { Driver } from './lib/driver.js'
import { tok, sid } from './lib/stream.js'

const S1 = sid(1)

function rng(seed: number): () => number {
  let x = seed >>> 0
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 0x100000000
  }
}

/** A message with every kind of line, as plain (unstuffed) lines. */
function message(seed: number): string[] {
  const r = rng(seed)
  const lines = ['From: a@example.org', 'Subject: caf\xe9', '\tcontinued', 'X-Long: ' + 'h'.repeat(3000), '']
  const n = 200 + Math.floor(r() * 400)
  for (let i = 0; i < n; i++) {
    const k = r()
    let len = Math.floor(r() * 120)
    if (k < 0.02) len = 1990 + Math.floor(r() * 20) // around the 0.6 cut (1997 + a stuffing dot)
    else if (k < 0.03) len = 65_400 + Math.floor(r() * 300) // around 7.4's 64 KiB buffer
    else if (k < 0.04) len = 70_000 + Math.floor(r() * 70_000) // longer than a spool block
    let l = ''
    for (let j = 0; j < len; j++) {
      const c = r()
      l += c < 0.01 ? '\r' : c < 0.03 ? String.fromCharCode(0x80 + Math.floor(r() * 128)) : c < 0.05 ? '.' : String.fromCharCode(0x20 + Math.floor(r() * 95))
    }
    if (r() < 0.1) l = '.' + l
    lines.push(l)
  }
  lines.push('.', '..', '')
  return lines
}

const direct: FilterDefinition = { name: 'direct', data: { mode: 'hold', end: () => ({ prepend: ['X-Signed: yes'] }) } }
// no spool at all: what the other two must write
const streamed: FilterDefinition = {
  name: 'streamed',
  data: {
    mode: 'stream',
    line: (ctx, l, out) => {
      if (ctx.bytes === l.length + 2) out.write('X-Signed: yes')
      out.write(l)
    },
  },
}
const byLine: FilterDefinition = { name: 'by-line', data: { mode: 'hold', end: () => ({ prepend: ['X-Signed: yes'], header: () => undefined }) } }

async function run(def: FilterDefinition, version: string, memoryLimit: number, lines: string[]): Promise<string[]> {
  const d = new Driver([def], { version, spool: { memoryLimit } }).handshake()
  await d.take()
  d.send(d.b.data(S1, tok(9), lines.join('\n') + '\n'))
  // a spilled message is read back asynchronously
  for (let i = 0; i < 200 && d.output.at(-1) !== `filter-dataline|${S1}|${tok(9)}|.`; i++) await d.settle(5)
  return d.take()
}

for (const version of ['0.6', '0.7']) {
  t.test(`held message replayed as bytes and as lines: the same answers (protocol ${version})`, async (t) => {
    for (const [seed, memoryLimit] of [
      [1, 1 << 30],
      [2, 1 << 30],
      [3, 100_000],
      [4, 16],
      [5, 16],
    ] as const) {
      const lines = message(seed)
      const a = await run(direct, version, memoryLimit, lines)
      const b = await run(byLine, version, memoryLimit, lines)
      const c = await run(streamed, version, memoryLimit, lines)
      t.ok(a.length > lines.length, 'answers')
      t.ok(a.length === b.length && a.every((l, i) => l === b[i]), `seed ${seed}, memory limit ${memoryLimit}: bytes and lines replay alike`)
      t.ok(a.length === c.length && a.every((l, i) => l === c[i]), `seed ${seed}, memory limit ${memoryLimit}: as the message streamed through`)
      t.equal(a.at(-1), `filter-dataline|${S1}|${tok(9)}|.`)
      t.ok(a.every((l) => l.length < 65_536), 'every answer fits smtpd\'s buffer')
      if (version === '0.6') t.ok(a.every((l) => l.length <= 2047), 'every answer within smtpd 6.8\'s 2047 bytes')
    }
  })
}

t.test('data-lines the fast path takes and those it leaves to the full parse: one message, as before', async (t) => {
  const d = new Driver([direct]).handshake()
  await d.take()
  const b = d.b
  const v7 = b.request(S1, 'data-line', tok(9), 'version 0.7').replace('|0.6|', '|0.7|')
  d.send(
    b.request(S1, 'data-line', tok(9), 'A: b'),
    b.request(S1, 'data-line', tok(10), 'another token'), // not the message's token: full parse, same message
    v7, // another version: full parse, same message
    b.request(S1, 'data-line', tok(9), '..dot'),
    `filter|0.6|1.0|smtp-in|data-line|${S1}|${tok(9)}`, // no parameter field: an empty line
    b.request(S1, 'data-line', tok(9), 'x|y|z'),
    b.request(S1, 'data-line', tok(9), '.'),
  )
  const out = await d.take(10)
  t.same(
    out.map((l) => l.slice(`filter-dataline|${S1}|${tok(9)}|`.length)),
    ['X-Signed: yes', 'A: b', 'another token', 'version 0.7', '..dot', '', 'x|y|z', '.'],
  )
})

t.test('the writer reuses its buffers on a real pipe only once written: every byte arrives, in order', async (t) => {
  const { spawn } = await import('node:child_process')
  const { ProtocolWriter } = await import('../lib/writer.js')
  const cat = spawn('cat', [], { stdio: ['pipe', 'pipe', 'inherit'] })
  let blocked = 0
  const w = new ProtocolWriter(cat.stdin, undefined, (b) => void (b && blocked++))
  const got: Buffer[] = []
  // a slow reader: output waits in the pipe and in the writer's queue
  cat.stdout.on('data', (c: Buffer) => {
    got.push(c)
    cat.stdout.pause()
    setTimeout(() => cat.stdout.resume(), 1)
  })
  const done = new Promise((r) => cat.stdout.on('end', r))
  const prefix = Buffer.from('filter-dataline|s|t|', 'latin1')
  const expected: string[] = []
  const r = rng(7)
  for (let round = 0; round < 300; round++) {
    const lines: string[] = []
    const n = 1 + Math.floor(r() * 400)
    for (let i = 0; i < n; i++) lines.push((r() < 0.1 ? '.' : '') + `${round}:${i}:` + 'x'.repeat(Math.floor(r() * 200)))
    const held = Buffer.from(lines.join('\n') + '\n', 'latin1')
    w.datalines(prefix, held, 0, held.length, 1 << 20, () => t.fail('no long line'))
    held.fill(0) // the writer copied what it needs
    for (const l of lines) expected.push(`filter-dataline|s|t|${l.startsWith('.') ? '.' + l : l}`)
    w.line(`filter-result|s|t|proceed ${round}`)
    expected.push(`filter-result|s|t|proceed ${round}`)
    if (round % 10 === 0) w.flush()
    await w.ready()
  }
  await w.end()
  cat.stdin.end()
  await done
  t.ok(blocked > 0, 'the reader was slower than the writer')
  const text = Buffer.concat(got).toString('latin1')
  t.equal(text, expected.join('\n') + '\n')
})

t.test('heldMessage: the held lines as bytes, cut at the last whole line that fits, in memory and spilled', async (t) => {
  const lines = message(11)
  const whole = Buffer.from(lines.map((l) => l + '\n').join(''), 'latin1')
  for (const memoryLimit of [1 << 30, 16]) {
    for (const max of [undefined, whole.length, whole.length - 1, 5000, 1, 0]) {
      let got: { bytes: Buffer; truncated: boolean } | undefined
      const def: FilterDefinition = {
        name: 'reader',
        data: {
          mode: 'hold',
          end: async (ctx) => {
            got = await ctx.heldMessage(max)
            return {}
          },
        },
      }
      await run(def, '0.6', memoryLimit, lines)
      // what a filter keeping each line while it fits would have: line after line, then none
      let expect = 0
      for (const l of lines) {
        if (max !== undefined && expect + l.length + 1 > max) break
        expect += l.length + 1
      }
      const what = `memory limit ${memoryLimit}, max ${max}`
      t.ok(got!.bytes.equals(whole.subarray(0, expect)), `${what}: ${expect} bytes`)
      t.equal(got!.truncated, expect < whole.length, `${what}: truncated`)
    }
  }
})
