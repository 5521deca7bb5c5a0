/**
 * The issue asked: split2 used losslessly, or our own Buffer splitter —
 * which is faster? split2 hard-wires a UTF-8 StringDecoder; the only
 * lossless way to use it is to hand it latin1 strings (a Transform that
 * decodes each chunk as latin1 first) so its decoder never sees bytes.
 * Both read the same 8-bit stream and must yield identical lines.
 */

import { PassThrough, Transform } from 'node:stream'
import split2 from 'split2'
import { LineSplitter } from '../../lib/lines.js'

function stream(mb: number): Buffer {
  const line = Buffer.from('filter|0.6|1700000000.000000|smtp-in|data-line|7641df9771b4ed00|dff40424695cb382|caf\xe9 \xff bytes\r and a bare CR, then text to make a line of realistic length\n', 'latin1')
  const n = Math.ceil((mb * 1024 * 1024) / line.length)
  return Buffer.concat(Array.from({ length: n }, () => line))
}

function chunks(b: Buffer, size = 65536): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size))
  return out
}

async function ours(parts: Buffer[]): Promise<{ lines: number; bytes: number }> {
  let lines = 0
  let bytes = 0
  const s = new LineSplitter((l) => {
    lines++
    bytes += l.length
  })
  for (const p of parts) s.push(p)
  s.end()
  return { lines, bytes }
}

async function viaSplit2(parts: Buffer[]): Promise<{ lines: number; bytes: number }> {
  let lines = 0
  let bytes = 0
  const src = new PassThrough()
  const latin1 = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      cb(null, chunk.toString('latin1'))
    },
  })
  const splitter = split2('\n')
  splitter.on('data', (l: string) => {
    lines++
    bytes += l.length
  })
  const done = new Promise((r) => splitter.on('end', r))
  src.pipe(latin1).pipe(splitter)
  for (const p of parts) src.write(p)
  src.end()
  await done
  return { lines, bytes }
}

export async function splitterComparison(mb: number): Promise<string> {
  const parts = chunks(stream(mb))
  const rows: string[] = ['| splitter | MB | lines | ms | MB/s | lossless |', '|---|---|---|---|---|---|']
  const expected = await ours(parts)
  for (const [name, fn] of [
    ['lib/lines.ts LineSplitter', ours],
    ['split2 fed latin1 strings', viaSplit2],
  ] as const) {
    const t0 = process.hrtime.bigint()
    const r = await fn(parts)
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    rows.push(`| ${name} | ${mb} | ${r.lines} | ${ms.toFixed(0)} | ${(mb / (ms / 1000)).toFixed(0)} | ${r.lines === expected.lines && r.bytes === expected.bytes ? 'yes' : 'NO'} |`)
  }
  return rows.join('\n')
}
