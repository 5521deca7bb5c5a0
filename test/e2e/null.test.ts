/**
 * filter-null under the real smtpd 6.8 (Debian 12): the same messages sent
 * through smtpd with no filter and with filter-null in front must be
 * delivered byte for byte the same — 8-bit bytes, a bare CR, lines starting
 * with '.', two messages in one session, 50 concurrent sessions — and smtpd
 * must be alive at the end.
 *
 * One exception is smtpd's, not ours: smtpd < 7.4 cuts every line a filter
 * sends back at 2047 bytes (lka_filter.c, LINE_MAX; fixed in 7.4), so on
 * Debian's 6.8 a message line longer than 1997 bytes arrives cut when any
 * data-line filter is in the chain. The test asserts exactly that cut (and
 * the whole line on 7.4+), and that filter-null said so in smtpd's log.
 */

import t, { type Test } from 'tap'
import { filterCommand, headerBlock, host, Lab, zone, type Delivered, type Smtpd } from '../lib/lab.js'

const root = process.getuid?.() === 0
const HEAD = (n: string) =>
  `From: <sender@example.org>\nTo: <alice@test.example>\nSubject: ${n}\nDate: Sun, 22 Nov 2026 12:00:00 +0000\nMessage-ID: <${n}@example.org>\n\n`
const LONG = 65_533 // the longest content line smtpd accepts in a CRLF line

const messages: Record<string, Buffer> = {
  bytes: Buffer.concat([Buffer.from(HEAD('bytes')), Buffer.from('latin1 \xe9\xff, broken utf-8 \xc3\x28 \x80, nul-free\nbare\rCR inside a line\n', 'latin1')]),
  dots: Buffer.from(HEAD('dots') + '.one leading dot\n..two\n.\n... \n.\n'),
  long: Buffer.concat([Buffer.from(HEAD('long')), Buffer.from('before\n'), Buffer.alloc(LONG, 'x'), Buffer.from('\nafter\n')]),
  first: Buffer.from(HEAD('first') + 'first of two\n'),
  second: Buffer.from(HEAD('second') + 'second of two\n'),
}

interface Run {
  readonly smtpd: Smtpd
  readonly bySubject: Map<string, Buffer>
  readonly concurrent: number
}

/** What the client sent, as delivered: everything after smtpd's Return-Path, Delivered-To and Received lines. */
function content(d: Buffer): Buffer {
  const text = d.toString('latin1')
  const received = text.indexOf('Received: ')
  // Received is folded over tab-led lines; the client's headers start at the first line that is not.
  let i = text.indexOf('\n', received) + 1
  while (text[i] === '\t') i = text.indexOf('\n', i) + 1
  return d.subarray(i)
}

async function run(t: Test, lab: Lab, filter: boolean): Promise<Run> {
  const smtpd = await lab.startSmtpd({ filters: filter ? [{ name: 'null', command: filterCommand('null') }] : [] })
  const one = await lab.smtp({ src: '127.0.0.10', messages: [messages.bytes!, messages.dots!, messages.long!] })
  t.ok(one.ok, `three messages accepted ${JSON.stringify(one.mismatches)}`)
  const two = await lab.smtp({ src: '127.0.0.10', messages: [messages.first!, messages.second!] })
  t.ok(two.ok, 'two messages in one session')
  const many = await lab.smtpMany(
    Array.from({ length: 50 }, (_, i) => ({ src: `127.0.0.${100 + i}`, to: ['bob@test.example'], messages: [HEAD(`concurrent-${i}`) + `session ${i}\n`] })),
  )
  const concurrent = many.filter((r) => r.ok).length
  const delivered: Delivered[] = [...(await smtpd.waitDelivered('alice', 5)), ...(await smtpd.waitDelivered('bob', 50))]
  const bySubject = new Map<string, Buffer>()
  for (const d of delivered) {
    const m = /\nSubject: (\S+)\n/.exec(headerBlock(d.data))
    if (m) bySubject.set(m[1]!, content(d.data))
  }
  return { smtpd, bySubject, concurrent }
}

t.test('filter-null under the real smtpd', { skip: root ? false : 'needs root (ip netns, mount, smtpd)' }, async (t) => {
  const lab = await Lab.create()
  t.teardown(() => lab.close())
  await lab.startDns(zone(host('mx.test.example', '127.0.0.1'), host('mail.good.example.org', '127.0.0.10')))

  const plain = await run(t, lab, false)
  await plain.smtpd.stop()
  const filtered = await run(t, lab, true)

  t.equal(plain.concurrent, 50, 'without a filter: 50 concurrent sessions delivered')
  t.equal(filtered.concurrent, 50, 'with filter-null: 50 concurrent sessions delivered')
  t.equal(filtered.bySubject.size, plain.bySubject.size, `${plain.bySubject.size} messages each`)

  for (const [subject, sent] of plain.bySubject) {
    const got = filtered.bySubject.get(subject)
    if (subject === 'long') continue
    t.ok(got?.equals(sent), `${subject}: byte-identical with and without the filter`)
  }
  t.ok(plain.bySubject.get('bytes')!.includes(Buffer.from('\xe9\xff', 'latin1')) && plain.bySubject.get('bytes')!.includes(Buffer.from('bare\rCR')), 'the 8-bit bytes and the bare CR are there to compare')

  // The long line: whole without a filter; cut by smtpd 6.8 on its way back from any data-line filter.
  const whole = Buffer.alloc(LONG, 'x')
  const plainLong = plain.bySubject.get('long')!
  const filteredLong = filtered.bySubject.get('long')!
  t.ok(plainLong.includes(Buffer.concat([Buffer.from('before\n'), whole, Buffer.from('\nafter\n')])), 'without a filter the 65,533-byte line arrives whole')
  const version = /smtpd-version\|(\d+)\.(\d+)/.exec(filtered.smtpd.log())
  const cutBySmtpd = filtered.smtpd.log().includes('0.6|') || !version || Number(version[1]) < 7 || (Number(version[1]) === 7 && Number(version[2]) < 4)
  if (cutBySmtpd) {
    t.ok(filteredLong.includes(Buffer.concat([Buffer.from('before\n'), Buffer.alloc(1997, 'x'), Buffer.from('\nafter\n')])), 'smtpd < 7.4 delivers the line cut to 1997 bytes, the rest of the message intact')
    t.equal(filteredLong.length, plainLong.length - (LONG - 1997), 'and nothing else differs')
    t.match(filtered.smtpd.log(), /too long for smtpd/, 'filter-null warned in smtpd\'s log')
  } else {
    t.ok(filteredLong.equals(plainLong), 'smtpd 7.4+ passes the long line whole')
  }

  t.ok(filtered.smtpd.alive(), 'smtpd alive at the end')
  t.notMatch(filtered.smtpd.log(), /lost processor|fatal|Invalid filter/, 'no filter error in smtpd\'s log')
})
