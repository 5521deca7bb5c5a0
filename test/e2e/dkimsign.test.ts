/**
 * filter-dkimsign under the real smtpd 6.8 (test/lib/lab.ts), wired as the seed's
 * submission listener:
 *
 *   filter "dkimsign" proc-exec "filter-dkimsign -K keytable -c relaxed/relaxed -authOnly -checkDns strict"
 *   listen on 127.0.0.1 port 587 tls-require … auth <creds> filter "dkimsign"
 *
 * Keys come from `smtpd-filters dkim-keygen` (RSA-2048 and Ed25519 for test.example), their
 * records as it prints them are served by the lab's DNS (so -checkDns strict passes at
 * startup), alice submits over STARTTLS + AUTH, and the delivered message verifies with
 * python3-dkim's dkimverify run inside the namespace (DNS from the lab zone) and with
 * Mail::DKIM (keys injected). Then: the C filter's own smtpd.conf line (-d -s -k) on the same
 * listener, a mail whose From: has no key, a session on port 25 with the filter attached but
 * -authOnly, a 2 MB message and one with a line longer than smtpd 6.8's 1997-byte cut.
 * Needs root and `npm run build`.
 */

import t from 'tap'
import { execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Verifiers } from '../fixtures/dkim/verifiers.js'
import { filterCommand, headerValues, inAcceptanceOrder, Lab, projectRoot, txt, zone, type Delivered, type Lab as LabT, type SessionResult } from '../lib/lab.js'

const root = process.getuid?.() === 0
const NODE = process.execPath
const why = (r: SessionResult) => JSON.stringify({ codes: r.codes, mismatches: r.mismatches, error: r.error })

interface Key {
  path: string
  /** the record as the BIND line's strings */
  strings: string[]
  value: string
}

/** smtpd-filters dkim-keygen, as an admin runs it; the key then belongs to the filter's user. */
function keygen(dir: string, selector: string, alg: 'rsa' | 'ed25519'): Key {
  const path = join(dir, `${selector}.key`)
  const out = execFileSync(NODE, [join(projectRoot, 'dist/cli/smtpd-filters.js'), 'dkim-keygen', '-d', 'test.example', '-s', selector, '-a', alg, '-k', path], { encoding: 'utf8' })
  const line = out.split('\n').find((l) => / IN TXT \( /.test(l))!
  const strings = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'))
  chownSync(path, 102, 105) // opensmtpd:opensmtpd, smtpd's default filter user on Debian
  return { path, strings, value: strings.join('') }
}

/** The delivered file as the verifiers read it: CRLF line ends (the maildir MDA writes LF). */
const crlf = (d: Buffer): Buffer => Buffer.from(d.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1')

async function dkimverify(lab: LabT, d: Buffer, index: number): Promise<{ ok: boolean; out: string }> {
  const r = await lab.exec(['/usr/bin/dkimverify', '--index', String(index)], { input: crlf(d) })
  return { ok: r.code === 0, out: (r.stdout.toString() + r.stderr.toString()).trim() }
}

const message = (subject: string, from = 'Alice <alice@test.example>', body = 'Hello Bob,\n\n.a line with a leading dot\ncaf\xe9 8-bit\n') =>
  Buffer.from(`From: ${from}\nTo: Bob <bob@test.example>\nSubject: ${subject}\nDate: Sun, 22 Nov 2026 12:00:00 +0000\nMessage-ID: <${subject.replace(/\W/g, '')}@test.example>\n\n${body}`, 'latin1')

t.test('filter-dkimsign under smtpd 6.8', { skip: root ? false : 'needs root (ip netns, smtpd)' }, async (t) => {
  t.ok(existsSync(join(projectRoot, 'dist/filters/dkimsign/main.js')), 'built')
  const lab = await Lab.create({ prefix: 'osf-dk' })
  t.teardown(() => lab.close())
  const keys = join(lab.wd, 'dkim')
  mkdirSync(keys, { mode: 0o755 })
  const rsa = keygen(keys, 'rsa2026', 'rsa')
  const ed = keygen(keys, 'ed2026', 'ed25519')
  t.ok(rsa.strings.length >= 2 && rsa.strings.every((s) => s.length <= 255), 'the RSA record comes in strings of at most 255 bytes')
  await lab.startDns(zone(txt('rsa2026._domainkey.test.example', ...rsa.strings), txt('ed2026._domainkey.test.example', ...ed.strings)))
  const keytable = join(keys, 'keytable')
  writeFileSync(keytable, `# domain selector keyfile\ntest.example rsa2026 ${rsa.path}\ntest.example ed2026 ${ed.path}\n`)
  const injected = { 'rsa2026._domainkey.test.example': rsa.value, 'ed2026._domainkey.test.example': ed.value }
  const v = new Verifiers()
  t.teardown(() => v.close())
  const submit = (messages: Buffer[], from = 'alice@test.example') =>
    lab.smtp({ port: 587, tls: true, auth: { user: 'alice', pass: 'secret-alice' }, from, to: ['bob@test.example'], messages, timeoutMs: 60_000 })
  // each smtpd has its own maildir: count what each delivered
  const seen = new Map<object, number>()
  const next = async (smtpd: { waitDelivered(u: string, n: number, ms?: number): Promise<Delivered[]> }, n = 1): Promise<Delivered[]> => {
    const before = seen.get(smtpd) ?? 0
    const all = await smtpd.waitDelivered('bob', before + n, 30_000)
    seen.set(smtpd, before + n)
    return all.slice(before, before + n)
  }

  await t.test('key table, relaxed/relaxed, -authOnly, -checkDns strict: RSA and Ed25519 verify', async (t) => {
    const smtpd = await lab.startSmtpd({
      filters: [{ name: 'dkimsign', command: filterCommand('dkimsign', ['-K', keytable, '-c', 'relaxed/relaxed', '-authOnly', '-checkDns', 'strict', '-oversign']) }],
    })
    const r = await submit([message('submitted'), message('no key', 'Eve <eve@elsewhere.example>')])
    t.ok(r.ok, `accepted ${why(r)}`)
    // in the order sent (smtpd may deliver the two either way round)
    const [signed, other] = inAcceptanceOrder(await next(smtpd, 2), r.replies)
    t.same([signed, other].map((d) => headerValues(d!.data, 'Subject')[0]), ['submitted', 'no key'], 'matched to the replies by queue id')
    const sigs = headerValues(signed!.data, 'DKIM-Signature')
    t.equal(sigs.length, 2, 'two signatures')
    t.match(sigs[0], /a=rsa-sha256;.*s=rsa2026;.*d=test\.example;/s)
    t.match(sigs[1], /a=ed25519-sha256;.*s=ed2026;.*d=test\.example;/s)
    for (const i of [0, 1]) {
      const dv = await dkimverify(lab, signed!.data, i)
      t.ok(dv.ok, `dkimverify --index ${i} in the namespace (lab DNS): ${dv.out}`)
    }
    const a = await v.verify(crlf(signed!.data), injected)
    t.ok(a.python.sigs.length === 2 && a.python.sigs.every((s) => s.ok), 'python3-dkim: both pass')
    t.ok(a.perl.sigs[0]?.ok, `Mail::DKIM: the RSA signature passes ${a.perl.sigs[0]?.err ?? ''}`)
    t.same(headerValues(other!.data, 'DKIM-Signature'), [], 'From: without a key: delivered unsigned')
    t.match(smtpd.log(), /no key for the From: domain/, 'and logged')
    t.ok(lab.dns!.asked('rsa2026._domainkey.test.example', 'TXT').length > 0, 'the startup check asked the zone')
    await smtpd.stop()
  })

  await t.test('-authOnly on the inbound listener signs nothing foreign', async (t) => {
    const smtpd = await lab.startSmtpd({
      filters: [{ name: 'dkimsign', command: filterCommand('dkimsign', ['-K', keytable, '-authOnly']) }],
      filterOn: ['smtp', 'submission'],
    })
    t.teardown(() => smtpd.stop())
    const inbound = await lab.smtp({ src: '127.0.0.20', from: 'alice@test.example', to: ['bob@test.example'], messages: [message('inbound forged')] })
    t.ok(inbound.ok, why(inbound))
    const [d] = await next(smtpd)
    t.same(headerValues(d!.data, 'DKIM-Signature'), [], 'port 25, no AUTH: not signed')
    const sub = await submit([message('submitted again')])
    t.ok(sub.ok)
    const [s] = await next(smtpd)
    t.equal(headerValues(s!.data, 'DKIM-Signature').length, 2, 'submission: signed')
    t.ok((await dkimverify(lab, s!.data, 0)).ok, 'verifies')
  })

  await t.test('the C filter\'s smtpd.conf line, a 2 MB message, a line cut by smtpd 6.8', async (t) => {
    const smtpd = await lab.startSmtpd({
      filters: [{ name: 'dkimsign', command: filterCommand('dkimsign', ['-d', 'test.example', '-s', 'rsa2026', '-k', rsa.path]) }],
      filterOn: ['submission'],
    })
    t.teardown(() => smtpd.stop())
    const big = 'x'.repeat(76) + '\n'
    const longLine = 'L'.repeat(3000) + '\n'
    const r = await submit([message('simple'), message('two megabytes', undefined, big.repeat(27_000)), message('long line', undefined, `before\n${longLine}after\n`)])
    t.ok(r.ok, why(r))
    const delivered = await next(smtpd, 3)
    for (const [i, d] of delivered.entries()) {
      const sig = headerValues(d.data, 'DKIM-Signature')
      t.equal(sig.length, 1, `#${i}: one signature`)
      t.match(sig[0], /^v=1; a=rsa-sha256; c=simple\/simple; s=rsa2026; bh=/, `#${i}: the C filter's tags`)
      const dv = await dkimverify(lab, d.data, 0)
      t.ok(dv.ok, `#${i}: dkimverify ${dv.out}`)
      const a = await v.verify(crlf(d.data), injected)
      t.ok(a.perl.sigs[0]?.ok, `#${i}: Mail::DKIM ${a.perl.sigs[0]?.err ?? ''}`)
    }
    const bySubject = (s: string) => delivered.find((d) => headerValues(d.data, 'Subject')[0] === s)!
    t.ok(bySubject('two megabytes').data.length > 2_000_000, 'the 2 MB message arrived whole')
    t.match(bySubject('long line').data.toString('latin1'), /\nL{1997}\n/, 'smtpd 6.8 cut the 3000-byte line at 1997: the signature is of what arrived')
    t.ok(smtpd.alive(), 'smtpd alive')
  })
})
