import t from 'tap'
import { junk, proceed, reject, disconnect, type FilterDefinition } from '../lib/filter.js'
import { registrations } from '../lib/runtime.js'
import { Driver } from './lib/driver.js'
import { sid, tok } from './lib/stream.js'

const S1 = sid(1)
const S2 = sid(2)

t.test('registrations are derived from handlers and needs, once each, in smtpd order', async (t) => {
  const a: FilterDefinition = { name: 'a', phases: { connect: () => proceed() } }
  t.same(registrations([a]), ['register|report|smtp-in|link-disconnect', 'register|filter|smtp-in|connect', 'register|ready'])
  const b: FilterDefinition = { name: 'b', needs: ['helo', 'rcpts', 'fcrdns'], reports: { 'tx-begin': () => {} }, phases: { 'mail-from': () => proceed() } }
  const c: FilterDefinition = { name: 'c', needs: ['fcrdns'], data: { mode: 'hold', end: () => ({}) }, onFailure: 'tempfail' }
  t.same(registrations([a, b, c]), [
    'register|report|smtp-in|link-connect',
    'register|report|smtp-in|link-disconnect',
    'register|report|smtp-in|link-identify',
    'register|report|smtp-in|tx-reset',
    'register|report|smtp-in|tx-begin',
    'register|report|smtp-in|tx-rcpt',
    'register|report|smtp-in|tx-rollback',
    'register|filter|smtp-in|connect',
    'register|filter|smtp-in|mail-from',
    'register|filter|smtp-in|data-line',
    'register|filter|smtp-in|commit',
    'register|ready',
  ])
})

t.test('nothing is written before config|ready; no config line is waited for but ready', async (t) => {
  const d = new Driver([{ name: 'a', phases: { helo: () => proceed() } }], { version: '0.4' })
  d.send('config|smtpd-version|6.6.4p1', 'config|smtp-session-timeout|300')
  t.same(await d.take(), [])
  d.send('config|ready')
  t.same(await d.take(), ['register|report|smtp-in|link-disconnect', 'register|filter|smtp-in|helo', 'register|ready'])
  d.send(d.b.request(S1, 'helo', tok(1), 'x.example'))
  t.same(await d.take(), [`filter-result|${tok(1)}|${S1}|proceed`], '0.4 answers token first')
  t.equal(d.runtime.config.smtpdVersion, '6.6.4p1')
  t.same(d.runtime.config.subsystems, [])
})

t.test('synchronous and asynchronous decisions, one answer each', async (t) => {
  const d = new Driver([
    {
      name: 'a',
      phases: {
        helo: () => reject(550, '5.7.1 no HELO'),
        ehlo: async () => {
          await new Promise((r) => setTimeout(r, 20))
          return junk()
        },
      },
    },
  ]).handshake()
  await d.take()
  d.send(d.b.request(S1, 'ehlo', tok(1), 'slow.example'), d.b.request(S2, 'helo', tok(2), 'fast.example'))
  t.same(await d.take(), [`filter-result|${S2}|${tok(2)}|reject|550 5.7.1 no HELO`], 'the fast session is not held up by the slow one')
  t.same(await d.take(40), [`filter-result|${S1}|${tok(1)}|junk`])
})

t.test('a handler that throws, rejects, returns nothing or hangs gets the failure answer', async (t) => {
  for (const onFailure of ['proceed', 'tempfail'] as const) {
    const d = new Driver([
      {
        name: 'broken',
        onFailure,
        answerTimeoutMs: 30,
        phases: {
          connect: () => {
            throw new Error('boom')
          },
          helo: () => Promise.reject(new Error('async boom')),
          ehlo: () => undefined as never,
          'mail-from': () => new Promise(() => {}),
          quit: () => {
            throw new Error('boom')
          },
        },
      },
    ]).handshake()
    await d.take()
    d.send(
      d.b.connect(S1, tok(1), 'a.example', '192.0.2.1'),
      d.b.request(S1, 'helo', tok(2), 'a.example'),
      d.b.request(S1, 'ehlo', tok(3), 'a.example'),
      d.b.request(S1, 'mail-from', tok(4), 'x@a.example'),
      d.b.request(S1, 'quit', tok(5)),
    )
    const out = await d.take(80)
    const tf = onFailure === 'tempfail'
    t.same(
      out,
      [
        `filter-result|${S1}|${tok(1)}|${tf ? 'disconnect|421 4.3.0 Temporary failure, please try again later' : 'proceed'}`,
        `filter-result|${S1}|${tok(2)}|${tf ? 'reject|451 4.3.0 Temporary failure, please try again later' : 'proceed'}`,
        `filter-result|${S1}|${tok(3)}|${tf ? 'reject|451 4.3.0 Temporary failure, please try again later' : 'proceed'}`,
        `filter-result|${S1}|${tok(4)}|${tf ? 'reject|451 4.3.0 Temporary failure, please try again later' : 'proceed'}`,
        `filter-result|${S1}|${tok(5)}|proceed`,
      ],
      `policy ${onFailure}; a tempfail at quit would leave the session open, so quit proceeds`,
    )
  }
})

t.test('a late answer after the timeout is dropped: still exactly one answer', async (t) => {
  const d = new Driver([
    {
      name: 'late',
      answerTimeoutMs: 20,
      phases: { helo: () => new Promise((r) => setTimeout(() => r(reject(550, 'late')), 60)) },
    },
  ]).handshake()
  await d.take()
  d.send(d.b.request(S1, 'helo', tok(1), 'x'))
  t.same(await d.take(120), [`filter-result|${S1}|${tok(1)}|proceed`])
})

t.test('decisions smtpd would die of are replaced', async (t) => {
  const d = new Driver([
    {
      name: 'a',
      phases: {
        connect: () => reject(550, 'no banner for you'),
        commit: () => junk(),
        data: () => ({ kind: 'rewrite', value: 'x' }),
      },
    },
  ]).handshake()
  await d.take()
  d.send(d.b.connect(S1, tok(1), 'a.example', '192.0.2.1'), d.b.request(S1, 'data', tok(2)), d.b.request(S1, 'commit', tok(3)))
  t.same(await d.take(), [
    `filter-result|${S1}|${tok(1)}|disconnect|550 no banner for you`,
    `filter-result|${S1}|${tok(2)}|proceed`,
    `filter-result|${S1}|${tok(3)}|proceed`,
  ])
})

t.test('several filters in one process: the first decision other than proceed wins', async (t) => {
  const calls: string[] = []
  const a: FilterDefinition = {
    name: 'a',
    phases: {
      helo: (_c, h) => (calls.push('a:' + h), h === 'spam.example' ? junk() : proceed()),
    },
  }
  const b: FilterDefinition = {
    name: 'b',
    phases: {
      helo: async (_c, h) => (calls.push('b:' + h), disconnect(421, 'b says no')),
      ehlo: () => (calls.push('b:ehlo'), proceed()),
    },
  }
  const d = new Driver([a, b]).handshake()
  await d.take()
  d.send(d.b.request(S1, 'helo', tok(1), 'spam.example'), d.b.request(S2, 'helo', tok(2), 'ok.example'), d.b.request(S2, 'ehlo', tok(3), 'ok.example'))
  t.same(await d.take(), [`filter-result|${S1}|${tok(1)}|junk`, `filter-result|${S2}|${tok(2)}|disconnect|421 b says no`, `filter-result|${S2}|${tok(3)}|proceed`])
  t.same(calls, ['a:spam.example', 'a:ok.example', 'b:ok.example', 'b:ehlo'], 'b never saw the junked helo')
})

t.test('sessions: facts from reports, lazily created, dropped at link-disconnect', async (t) => {
  const seen: unknown[] = []
  const d = new Driver([
    {
      name: 'a',
      needs: ['rdns', 'helo', 'auth', 'mail-from', 'rcpts'],
      newSession: () => ({ n: 0 }),
      phases: {
        'rcpt-to': (ctx) => {
          ;(ctx.state as { n: number }).n++
          seen.push({ ...ctx.session, state: { ...(ctx.state as object) } })
          return proceed()
        },
      },
    },
  ]).handshake()
  await d.take()
  const b = d.b
  d.send(
    b.linkConnect(S1, 'mail.example.org', 'pass', '[2001:db8::5]:4567', '[::1]:25'),
    b.report(S1, 'link-identify', 'EHLO', 'mail.example.org'),
    b.linkAuth(S1, 'pass', 'alice'),
    b.report(S1, 'tx-begin', 'aaaa0001'),
    b.txAddress(S1, 'tx-mail', 'aaaa0001', 'ok', 'a|b@example.org'),
    b.txAddress(S1, 'tx-rcpt', 'aaaa0001', 'ok', 'x@example.net'),
    b.txAddress(S1, 'tx-rcpt', 'aaaa0001', 'permfail', 'y@example.net'),
    b.request(S1, 'rcpt-to', tok(1), 'z@example.net'),
    b.request(S2, 'rcpt-to', tok(2), 'never-connected@example.net'),
  )
  await d.take()
  t.match(seen[0], {
    id: S1,
    rdns: 'mail.example.org',
    fcrdns: 'pass',
    address: '2001:db8::5',
    family: 6,
    local: false,
    helo: 'mail.example.org',
    authUser: 'alice',
    msgid: 'aaaa0001',
    mailFrom: 'a|b@example.org',
    rcpts: ['x@example.net'],
    state: { n: 1 },
  })
  t.match(seen[1], { id: S2, rcpts: [], state: { n: 1 } }, 'a session never announced gets fresh state')
  t.equal(d.runtime.sessionCount, 2)
  d.send(b.report(S1, 'link-disconnect'), b.report(S2, 'link-disconnect'))
  t.equal(d.runtime.sessionCount, 0)
})

const message = 'From: a@example.org\nX-Spam-Status: Yes, forged\nSubject: caf\xe9\n\tcontinued\n\nline with \r bare CR\n.leading dot\n.\n\n'

t.test('stream data: lines pass through a handler, stuffed again, one final dot', async (t) => {
  const d = new Driver([
    {
      name: 's',
      data: {
        mode: 'stream',
        line: (ctx, line, out) => {
          if (ctx.bytes === line.length + 2) out.write('X-First: yes')
          out.write(line)
        },
        end: async (_ctx, out) => {
          await new Promise((r) => setTimeout(r, 10))
          out.write('.added at the end')
        },
      },
    },
  ]).handshake()
  await d.take()
  d.send(d.b.data(S1, tok(9), message))
  const out = (await d.take(30)).map((l) => l.slice(`filter-dataline|${S1}|${tok(9)}|`.length))
  t.same(out, ['X-First: yes', 'From: a@example.org', 'X-Spam-Status: Yes, forged', 'Subject: caf\xe9', '\tcontinued', '', 'line with \r bare CR', '..leading dot', '..', '', '..added at the end', '.'])
})

t.test('held data: prepend and header edits, body bytes untouched, in memory and spilled to disk', async (t) => {
  for (const memoryLimit of [1 << 20, 16]) {
    const headersSeen: string[] = []
    const d = new Driver(
      [
        {
          name: 'h',
          data: {
            mode: 'hold',
            line: (ctx) => void ctx.bytes,
            end: (ctx) => {
              headersSeen.push(...ctx.headers.map((h) => h.lname))
              return { prepend: ['X-Added: 1', '.dot header'], header: (f) => (f.lname.startsWith('x-spam') ? null : f.lname === 'subject' ? ['Subject: replaced'] : undefined) }
            },
          },
        },
      ],
      { spool: { memoryLimit } },
    ).handshake()
    await d.take()
    d.send(d.b.data(S1, tok(9), message))
    const out = (await d.take(30)).map((l) => l.slice(`filter-dataline|${S1}|${tok(9)}|`.length))
    t.same(out, ['X-Added: 1', '..dot header', 'From: a@example.org', 'Subject: replaced', '', 'line with \r bare CR', '..leading dot', '..', '', '.'], `memory limit ${memoryLimit}`)
    t.same(headersSeen, ['from', 'x-spam-status', 'subject'])
  }
})

t.test('a failing data handler loses nothing; its policy answers at commit', async (t) => {
  for (const onFailure of ['proceed', 'tempfail'] as const) {
    let commits = 0
    const d = new Driver([
      {
        name: 'f',
        onFailure,
        phases: { commit: () => (commits++, reject(550, 'should not be asked')) },
        data: {
          mode: 'hold',
          end: () => {
            throw new Error('signing failed')
          },
        },
      },
    ]).handshake()
    await d.take()
    d.send(d.b.data(S1, tok(9), 'A: b\n\nbody\n'), d.b.request(S1, 'commit', tok(10)))
    const out = await d.take(20)
    t.same(out.slice(0, 4).map((l) => l.split('|')[3]), ['A: b', '', 'body', '.'])
    t.equal(out[4], `filter-result|${S1}|${tok(10)}|${onFailure === 'tempfail' ? 'reject|451 4.3.0 Temporary failure, please try again later' : 'proceed'}`)
    t.equal(commits, 0)
  }
})

t.test('two data filters in one process: the output of the first is the input of the second', async (t) => {
  const secondSaw: string[] = []
  const d = new Driver([
    { name: 'one', data: { mode: 'hold', end: () => ({ prepend: ['X-One: 1'] }) } },
    { name: 'two', data: { mode: 'stream', line: (_c, l, out) => (secondSaw.push(l), out.write(l)) } },
  ]).handshake()
  await d.take()
  d.send(d.b.data(S1, tok(9), 'A: b\n\n.x\n'))
  await d.take(10)
  t.same(secondSaw, ['X-One: 1', 'A: b', '', '.x'])
})

t.test('rollback mid-message: nothing more is written for it', async (t) => {
  const d = new Driver([{ name: 'h', data: { mode: 'hold', end: () => ({}) } }]).handshake()
  await d.take()
  const lines = d.b.data(S1, tok(9), 'A: b\n\nbody\n')
  d.send(lines.slice(0, 2), d.b.report(S1, 'tx-rollback', 'aaaa0001'), d.b.report(S1, 'link-disconnect'))
  t.same(await d.take(10), [])
})

t.test('a request that arrives while the message is still being finished waits for it', async (t) => {
  const order: string[] = []
  const d = new Driver([
    {
      name: 'h',
      phases: { commit: () => (order.push('commit'), proceed()) },
      data: {
        mode: 'hold',
        end: async () => {
          await new Promise((r) => setTimeout(r, 20))
          order.push('end')
          return {}
        },
      },
    },
  ]).handshake()
  await d.take()
  d.send(d.b.data(S1, tok(9), 'A: b\n\nbody\n'), d.b.request(S1, 'commit', tok(10)))
  const out = await d.take(50)
  t.same(order, ['end', 'commit'])
  t.equal(out.at(-2), `filter-dataline|${S1}|${tok(9)}|.`)
  t.equal(out.at(-1), `filter-result|${S1}|${tok(10)}|proceed`)
})

t.test('garbage in: no output, no exception', async (t) => {
  const d = new Driver([{ name: 'a', phases: { helo: () => proceed() } }]).handshake()
  await d.take()
  d.send('', '|||', 'filter|0.6', `filter|0.6|x|smtp-in|helo|zz|${tok(1)}|x`, 'report|9|9|9|9|9', '\xff\xfe\x00binary')
  t.same(await d.take(), [])
  d.send(d.b.request(S1, 'helo', tok(1), 'ok'))
  t.same(await d.take(), [`filter-result|${S1}|${tok(1)}|proceed`], 'and still answering')
})

t.test('answer lines smtpd cannot read back are never written', async (t) => {
  // < 0.7: smtpd keeps 2047 bytes of an answer line; cut there (same delivered bytes, no stall).
  const d6 = new Driver([{ name: 'n', data: { mode: 'stream' } }, { name: 's', data: { mode: 'stream', line: (_c, l, out) => out.write(l) } }]).handshake()
  await d6.take()
  d6.send(d6.b.data(S1, tok(9), 'A: b\n\n' + 'x'.repeat(65_533) + '\nend\n'))
  const out6 = await d6.take()
  t.same(out6.map((l) => l.length), [out6[0]!.length, out6[1]!.length, 2047, out6[3]!.length, out6[4]!.length])
  t.equal(out6[2], `filter-dataline|${S1}|${tok(9)}|${'x'.repeat(1997)}`)
  // 0.7: smtpd reads at most 65,535 bytes before the '\n' (a 64 KiB buffer): split, keep every byte.
  const d7 = new Driver([{ name: 'n', data: { mode: 'stream' } }], { version: '0.7' }).handshake()
  await d7.take()
  d7.send(d7.b.data(S1, tok(9), 'x'.repeat(65_533) + '\n'))
  const out7 = await d7.take()
  t.ok(out7.every((l) => l.length <= 65_535), 'every line fits smtpd\'s buffer')
  t.equal(out7.slice(0, -1).map((l) => l.split('|')[3]).join(''), 'x'.repeat(65_533), 'no byte lost')
})
