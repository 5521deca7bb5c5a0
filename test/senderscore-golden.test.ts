/**
 * Golden tests of filter-senderscore against poolpOrg's own test vectors
 * (upstream test/*.sh, transcribed in fixtures/senderscore/upstream.ts):
 * the same lines to `dist/filters/senderscore/main.js -testMode …`, the same
 * answers expected after register|ready. Where upstream expects the Go filter
 * to exit on bad input, ours must survive, answer nothing for it, and still
 * answer a valid session afterwards.
 */

import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REGISTRATIONS, VECTORS } from './fixtures/senderscore/upstream.js'
import { built, FilterProc } from './fixtures/senderscore/proc.js'

const work = mkdtempSync(join(tmpdir(), 'osf-ss-golden-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

t.test('built first', async (t) => {
  t.ok(built(), 'npm run build has been run')
})

t.test('0000-basic.sh initialization: the Go registrations, when every phase has a use', async (t) => {
  // Upstream registers every phase whatever the flags. We register a phase only
  // when its answer can differ from an immediate proceed: with a slow factor
  // (every phase is delayed) and the header (data-line), that is all of them.
  const p = new FilterProc(['-testMode', '-slowFactor', '1', '-scoreHeader'])
  p.send('config|ready')
  const regs = await p.registered()
  t.equal((await p.end()).code, 0)
  const filters = regs.filter((l) => l.startsWith('register|filter|')).sort()
  t.same(filters, REGISTRATIONS.filter((l) => l.startsWith('register|filter|')), 'the same filter phases')
  for (const r of REGISTRATIONS.filter((l) => l.startsWith('register|report|'))) t.ok(regs.includes(r), r)
  t.equal(regs.at(-1), 'register|ready')
})

t.test('registrations follow the flags', async (t) => {
  const cases: [string[], string[]][] = [
    [['-testMode'], ['connect']],
    [['-testMode', '-blockBelow', '20'], ['connect']],
    [['-testMode', '-blockBelow', '20', '-blockPhase', 'rcpt-to'], ['connect', 'rcpt-to']],
    [['-testMode', '-blockPhase', 'rcpt-to'], ['connect']],
    [['-testMode', '-scoreHeader'], ['connect', 'data-line']],
    [['-testMode', '-slowFactor', '1000'], ['connect', 'helo', 'ehlo', 'starttls', 'auth', 'mail-from', 'rcpt-to', 'data', 'quit', 'commit']],
  ]
  for (const [args, phases] of cases) {
    const p = new FilterProc(args)
    p.send('config|ready')
    const regs = await p.registered()
    await p.end()
    t.same(regs.filter((l) => l.startsWith('register|filter|')).map((l) => l.split('|')[3]), phases, args.join(' '))
  }
})

for (const v of VECTORS) {
  t.test(`${v.file}: ${v.name}`, async (t) => {
    const dir = mkdtempSync(join(work, 'v-'))
    for (const [name, content] of Object.entries(v.files ?? {})) writeFileSync(join(dir, name), content)
    const p = new FilterProc(['-testMode', ...v.args], { cwd: dir })
    p.send(v.input)
    if (v.expected) {
      await p.registered()
      // Every expected answer, then nothing more (a short grace for extra lines).
      const deadline = Date.now() + 5000
      while (p.answers().length < v.expected.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
      await new Promise((r) => setTimeout(r, 50))
      const status = await p.end()
      t.same(p.answers(), v.expected, 'answers identical to upstream\'s expected output')
      t.equal(status.code, 0, 'exit 0 at EOF')
      return
    }
    if (v.args.includes('data-line')) {
      // Upstream: log.Fatalf, exit 1. Ours: a usage error at startup, exit 2, nothing on stdout.
      const status = await p.end()
      t.equal(status.code, 2, 'bad -blockPhase: usage error, exit 2')
      t.same(p.lines, [], 'nothing on stdout')
      t.match(p.stderr, /invalid value "data-line" for flag -blockPhase/)
      return
    }
    // Upstream expects exit 1. Ours ignores the bad line (logged), then answers a good session.
    await p.registered()
    p.send(
      'report|0.5|0|smtp-in|link-connect|7641df9771b4ed0f||pass|1.2.3.4:33174|1.1.1.1:25',
      'filter|0.5|0|smtp-in|connect|7641df9771b4ed0f|1ef1c203cc576e5d||pass|1.2.3.4:33174|1.1.1.1:25',
    )
    await p.waitFor('filter-result|7641df9771b4ed0f|1ef1c203cc576e5d|disconnect|550 your IP reputation is too low for this MX')
    const status = await p.end()
    t.equal(status.code, 0, `Go exits ${v.goExit}; ours survives the bad line and exits 0 at EOF`)
    const answers = p.answers()
    if (v.name.includes('invalid session ID')) {
      // A connect for a session never announced is scored from the connect request's own
      // source; in this (pre-0.5-style) line the last field is 1.1.1.1:25, which scores 1.
      t.same(answers, [
        'filter-result|7641df9771b4ed01|1ef1c203cc576e5d|disconnect|550 your IP reputation is too low for this MX',
        'filter-result|7641df9771b4ed0f|1ef1c203cc576e5d|disconnect|550 your IP reputation is too low for this MX',
      ])
    } else {
      t.same(answers, ['filter-result|7641df9771b4ed0f|1ef1c203cc576e5d|disconnect|550 your IP reputation is too low for this MX'])
    }
  })
}
