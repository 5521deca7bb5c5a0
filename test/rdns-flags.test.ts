// filter-rdns startup: flag values, files, and the exit status of the executable (usage
// errors exit 2 with the usage, unreadable or bad files exit 1 with one line naming them).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseFlags, UsageError } from '../lib/flags.js'
import { COMMON_FLAGS, StartupError } from '../lib/main.js'
import { FLAGS, buildOptions, parseDuration, parseReply, underDomain, mimeValue, authResultsHeader, decide, type Verdicts } from '../filters/rdns/filter.js'

const root = join(import.meta.dirname, '..')
const bin = join(root, 'dist/filters/rdns/main.js')

const options = (...argv: string[]) => buildOptions(parseFlags(argv, [...FLAGS, ...COMMON_FLAGS]).values)

t.test('the seed line and its defaults', async (t) => {
  const o = options('-dyndns', 'disconnect', '-rdns', 'disconnect', '-fcrdns', 'disconnect')
  t.same(o.actions, { dyndns: 'disconnect', rdns: 'disconnect', fcrdns: 'disconnect' })
  t.same(o.replies, {
    dyndns: { code: 550, text: 'no residential connections' },
    rdns: { code: 550, text: 'no rDNS is so 80s' },
    fcrdns: { code: 550, text: 'no FCrDNS is so 80s' },
  })
  t.match(o, { tempfail: 'proceed', rejectPhase: 'mail-from', skipAuth: true, skipLocal: true, header: false, timeoutMs: 5000, maxNames: 10 })
  t.equal(o.allowNets.size, 0)
  t.same(o.allowDomains, [])
  t.same(o.patterns, [])
})

t.test('flag values', async (t) => {
  const o = options('--fcrdns=reject', '-rejectPhase', 'rcpt-to', '-fcrdnsText', '550 5.7.25 no FCrDNS, see https://example.org/|faq',
    '-tempfail', 'disconnect', '-tempfailText', '421 later', '-skipAuth=false', '-skipLocal=false', '-header', '-timeout', '1500ms',
    '-allow', '192.0.2.0/24', '-allow', '2001:DB8::/32', '-allow', '*.Partner.example.', '-allow', '.other.example', '-maxNames', '3')
  t.match(o, { actions: { fcrdns: 'reject' }, rejectPhase: 'rcpt-to', tempfail: 'disconnect', tempfailReply: { code: 421, text: 'later' },
    skipAuth: false, skipLocal: false, header: true, timeoutMs: 1500, maxNames: 3 })
  t.same(o.replies.fcrdns, { code: 550, text: '5.7.25 no FCrDNS, see https://example.org/|faq' }, 'a | in a reply is fine (last field)')
  t.ok(o.allowNets.has('192.0.2.77') && o.allowNets.has('2001:db8:1::1') && !o.allowNets.has('198.51.100.1'))
  t.same(o.allowDomains, ['partner.example', 'other.example'])
})

t.test('usage errors', async (t) => {
  const bad: [string[], RegExp][] = [
    [[], /nothing to do/],
    [['-rdns', 'drop'], /one of disconnect, reject, junk, log/],
    [['-rdns', 'reject', '-rejectPhase', 'connect'], /one of helo, mail-from, rcpt-to, data/],
    [['-rdns', 'reject', '-rdnsText', 'no rDNS'], /4xx or 5xx code/],
    [['-rdns', 'reject', '-rdnsText', '250 ok'], /4xx or 5xx code/],
    [['-rdns', 'reject', '-tempfail', 'junk'], /one of proceed, reject, disconnect/],
    [['-rdns', 'reject', '-tempfail', 'reject', '-tempfailText', '550 no'], /needs a 4xx code/],
    [['-rdns', 'reject', '-tempfailText', '451 later'], /needs -tempfail reject or -tempfail disconnect/],
    [['-rdns', 'junk', '-tempfail', 'reject'], /-tempfail reject has no effect: no check has the action reject or disconnect/],
    [['-rdns', 'reject', '-timeout', '5'], /duration/],
    [['-rdns', 'reject', '-timeout', '0ms'], /duration/],
    [['-rdns', 'reject', '-allow', 'not a net'], /not an IP address, CIDR network or domain/],
    [['-rdns', 'reject', '-allow', '192.0.2.0/33'], /not an IP address, CIDR network or domain/],
    [['-rdns', 'reject', '-maxNames', '0'], /1 to 100/],
    [['-rdns', 'reject', '-bogus'], /flag provided but not defined/],
  ]
  for (const [argv, re] of bad) {
    const err = t.throws(() => options(...argv), argv.join(' '))
    t.type(err, UsageError, argv.join(' '))
    t.match((err as Error).message, re, argv.join(' '))
  }
  // -nameserver is checked with the other flags: a usage error
  t.throws(() => parseFlags(['-rdns', 'log', '-nameserver', 'dns.example'], [...FLAGS, ...COMMON_FLAGS]), /bad nameserver "dns.example"/)
})

t.test('files', async (t) => {
  const dir = t.testdir({
    allow: '# ok\n192.0.2.1\n  partner.example   # trailing comment\n',
    badAllow: '192.0.2.1\n\nnot an entry!\n',
    dyn: '# smtpd\'s seed regexes\n.*\\.dyn\\..*\n.*\\.dsl\\..*\n',
    badDyn: '(unclosed\n',
  })
  const o = options('-dyndns', 'junk', '-dyndnsFile', `${dir}/dyn`, '-allowlist', `${dir}/allow`)
  t.same(o.patterns.map((p) => [p.re.source, p.line]), [['.*\\.dyn\\..*', 2], ['.*\\.dsl\\..*', 3]])
  t.ok(o.allowNets.has('192.0.2.1'))
  t.same(o.allowDomains, ['partner.example'])
  const startup = (argv: string[], re: RegExp) => {
    const err = t.throws(() => options(...argv))
    t.type(err, StartupError)
    t.match((err as Error).message, re)
  }
  startup(['-rdns', 'log', '-allowlist', `${dir}/badAllow`], /badAllow:3: not an IP address, CIDR network or domain: "not an entry!"/)
  startup(['-rdns', 'log', '-allowlist', `${dir}/missing`], /missing: cannot read allowlist/)
  startup(['-dyndns', 'log', '-dyndnsFile', `${dir}/badDyn`], /badDyn:1: invalid regular expression/)
  startup(['-dyndns', 'log', '-dyndnsFile', `${dir}/missing`], /missing: cannot read pattern file/)
  t.throws(() => options('-rdns', 'log', '-dyndnsFile', `${dir}/dyn`), /-dyndnsFile needs -dyndns/)
})

t.test('small pieces', async (t) => {
  t.same([parseDuration('5s'), parseDuration('1500ms'), parseDuration('1.5s'), parseDuration('1m'), parseDuration('5'), parseDuration('11m'), parseDuration('-1s')],
    [5000, 1500, 1500, 60000, null, null, null])
  t.same(parseReply('421   4.7.0 bye '), { code: 421, text: '4.7.0 bye' })
  t.throws(() => parseReply('550 a\rb'), /control characters/)
  t.throws(() => parseReply('550 ' + 'x'.repeat(600)), /500 bytes/)
  t.ok(underDomain('example.org', 'example.org'))
  t.ok(underDomain('a.b.example.org', 'example.org'))
  t.notOk(underDomain('badexample.org', 'example.org'))
  t.equal(mimeValue('mx.example.org'), 'mx.example.org')
  t.equal(mimeValue('2001:db8::1'), '"2001:db8::1"')
  t.equal(mimeValue('a "b"'), '"a \\"b\\""')
  t.same(authResultsHeader('mx.ex', 'pass', '192.0.2.1', ['a.example']), ['Authentication-Results: mx.ex; iprev=pass policy.iprev=192.0.2.1 (a.example)'], 'one line when it fits')
  const folded = authResultsHeader('mx.example', 'fail', '192.0.2.1', ['a'.repeat(63) + '.example', 'b.example', 'c.example', 'd.example'])
  t.same(folded, ['Authentication-Results: mx.example;', '\tiprev=fail policy.iprev=192.0.2.1', `\t(${'a'.repeat(63)}.example`, '\tb.example c.example)'], 'three names at most, folded at 78')
})

t.test('decide', async (t) => {
  const o = {
    actions: { rdns: 'junk', fcrdns: 'reject', dyndns: 'log' } as const,
    replies: { rdns: { code: 550, text: 'r' }, fcrdns: { code: 550, text: 'f' }, dyndns: { code: 550, text: 'd' } },
    tempfail: 'disconnect' as const,
  }
  const v = (rdns: string, fcrdns: string | undefined, dyndns: string): Verdicts => ({ rdns, fcrdns, dyndns, dynamic: [] }) as Verdicts
  t.same(decide(v('pass', 'pass', 'pass'), o), { plan: { action: 'proceed' }, failed: [] })
  t.same(decide(v('fail', 'fail', 'pass'), o), { plan: { action: 'reject', by: 'fcrdns', reply: { code: 550, text: 'f' } }, failed: ['rdns', 'fcrdns'] })
  t.same(decide(v('pass', 'pass', 'fail'), o), { plan: { action: 'log', by: 'dyndns', reply: { code: 550, text: 'd' } }, failed: ['dyndns'] })
  t.same(decide(v('pass', 'temperror', 'fail'), o).plan, { action: 'disconnect', by: 'tempfail', reply: { code: 421, text: '4.7.25 cannot verify your reverse DNS now, try again later' } },
    'a refusing check undecided: -tempfail, more severe than the log')
  t.same(decide(v('temperror', 'temperror', 'temperror'), { ...o, actions: { rdns: 'junk', dyndns: 'log' } }).plan, { action: 'proceed' }, 'junk and log checks never tempfail')
  t.same(decide(v('pass', undefined, 'pass'), o).plan, { action: 'proceed' }, 'fcrdns not computed')
})

t.test('the executable', { skip: existsSync(bin) ? false : 'run npm run build first' }, async (t) => {
  const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input: '' })
  let r = run()
  t.equal(r.status, 2, 'no check: exit 2')
  t.match(r.stderr, /^filter-rdns: nothing to do/)
  r = run('-rdns', 'drop')
  t.equal(r.status, 2)
  t.match(r.stderr, /invalid value "drop" for flag -rdns[^\n]*\nusage: filter-rdns/)
  r = run('-h')
  t.equal(r.status, 0)
  t.match(r.stderr, /-dyndnsFile file/)
  t.equal(r.stdout, '', 'nothing on stdout, ever')
  r = run('-rdns', 'log', '-allowlist', '/nonexistent/allow')
  t.equal(r.status, 1, 'unreadable file: exit 1')
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  t.match(r.stderr, /^filter-rdns: \/nonexistent\/allow: cannot read allowlist/)
  r = run('-rdns', 'log', '-nameserver', '127.0.0.1:5353')
  t.equal(r.status, 0, 'EOF on stdin: exit 0')
  t.equal(r.stdout, '')
})
