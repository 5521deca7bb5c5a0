import t from 'tap'
import {
  ANSWER_LINE_LIMIT,
  answersTruncated,
  compareVersions,
  disconnect,
  filterDataline,
  filterResult,
  junk,
  parseLine,
  parseVersion,
  proceed,
  ProtocolError,
  registerFilter,
  registerReady,
  registerReport,
  reject,
  report,
  rewrite,
  splitConnectParam,
  stuff,
  tokenFirst,
  unstuff,
  type Inbound,
} from '../protocol/index.js'

const SID = '7641df9771b4ed00'
const TOK = 'dff40424695cb382'
const v = (s: string) => parseVersion(s)!
const allowReport = { reportDecisionAllowed: true }
const noReport = { reportDecisionAllowed: false }

function report_(version: string, event: string, params?: string): Inbound {
  return parseLine(`report|${version}|1700000000.123456|smtp-in|${event}|${SID}${params === undefined ? '' : '|' + params}`)
}

t.test('versions compare numerically', async (t) => {
  t.ok(compareVersions(v('0.10'), v('0.7')) > 0, '"0.10" is newer than "0.7"')
  t.ok(compareVersions(v('0.4'), v('0.5')) < 0)
  t.ok(compareVersions(v('1.0'), v('0.99')) > 0)
  t.equal(parseVersion('0.x'), undefined)
  t.equal(parseVersion(''), undefined)
  t.equal(parseVersion('0.6.1'), undefined)
  t.ok(tokenFirst(v('0.4')))
  t.notOk(tokenFirst(v('0.5')))
  t.notOk(tokenFirst(v('0.10')))
  t.ok(answersTruncated(v('0.6')))
  t.notOk(answersTruncated(v('0.7')))
})

t.test('config lines, unknown keys kept', async (t) => {
  t.same(parseLine('config|smtpd-version|6.8.0p2'), { type: 'config', key: 'smtpd-version', value: '6.8.0p2' })
  t.same(parseLine('config|ready'), { type: 'config', key: 'ready', value: '' })
  t.same(parseLine('config|future-key|a|b'), { type: 'config', key: 'future-key', value: 'a|b' })
})

t.test('link-connect: rdns taken from what is left after the right-hand fields', async (t) => {
  const r = report_('0.6', 'link-connect', 'mail.good.example.org|pass|127.0.0.10:53057|127.0.0.1:25')
  t.match(r, { type: 'report', event: 'link-connect', rdns: 'mail.good.example.org', fcrdns: 'pass', src: '127.0.0.10:53057', dest: '127.0.0.1:25', session: SID })
  t.match(report_('0.7', 'link-connect', 'odd|name|error|[2001:db8::1]:2525|[::1]:25'), { rdns: 'odd|name', fcrdns: 'error', src: '[2001:db8::1]:2525' })
  t.match(report_('0.6', 'link-connect', '<unknown>|fail|unix:/var/run/smtpd.sock|unix:/var/run/smtpd.sock'), { rdns: '<unknown>', src: 'unix:/var/run/smtpd.sock' })
  t.match(report_('0.6', 'link-connect', 'a|b'), { type: 'malformed' })
})

t.test('tx-mail and tx-rcpt: address in the middle before 0.6, last since', async (t) => {
  t.match(report_('0.4', 'tx-mail', '6c2ad1a0|a|b@x.example|ok'), { event: 'tx-mail', msgid: '6c2ad1a0', address: 'a|b@x.example', result: 'ok' })
  t.match(report_('0.5', 'tx-rcpt', '6c2ad1a0|bob@example.net|permfail'), { address: 'bob@example.net', result: 'permfail' })
  t.match(report_('0.6', 'tx-mail', '6c2ad1a0|ok|a|b@x.example'), { msgid: '6c2ad1a0', result: 'ok', address: 'a|b@x.example' })
  t.match(report_('0.7', 'tx-mail', '6c2ad1a0|ok|'), { address: '', result: 'ok' }, 'null sender')
  t.match(report_('0.10', 'tx-rcpt', '6c2ad1a0|tempfail|x@y'), { result: 'tempfail', address: 'x@y' }, '0.10 is after 0.6')
})

t.test('link-auth: username|result before 0.7, result|username since', async (t) => {
  t.match(report_('0.6', 'link-auth', 'VBA|spil|pass'), { event: 'link-auth', username: 'VBA|spil', result: 'pass' })
  t.match(report_('0.7', 'link-auth', 'pass|al|ice'), { result: 'pass', username: 'al|ice' })
  t.match(report_('0.4', 'link-auth', 'alice|fail'), { username: 'alice', result: 'fail' })
})

t.test('the other report events', async (t) => {
  t.match(report_('0.6', 'link-greeting', 'mx.example.org'), { hostname: 'mx.example.org' })
  t.match(report_('0.6', 'link-greeting', ''), { hostname: '' })
  t.match(report_('0.6', 'link-identify', 'EHLO|client.example'), { method: 'EHLO', identity: 'client.example' })
  t.match(report_('0.7', 'link-tls', 'TLSv1.3:TLS_AES_256_GCM_SHA384:256'), { tls: 'TLSv1.3:TLS_AES_256_GCM_SHA384:256' })
  t.match(report_('0.6', 'link-disconnect'), { event: 'link-disconnect', session: SID })
  t.match(report_('0.6', 'timeout'), { event: 'timeout' })
  t.match(report_('0.6', 'tx-reset', '6c2ad1a0'), { msgid: '6c2ad1a0' })
  t.match(report_('0.6', 'tx-begin', '6c2ad1a0'), { msgid: '6c2ad1a0' })
  t.match(report_('0.6', 'tx-envelope', '6c2ad1a0|6c2ad1a06580a169'), { evpid: '6c2ad1a06580a169' })
  t.match(report_('0.6', 'tx-data', '6c2ad1a0|ok'), { result: 'ok' })
  t.match(report_('0.6', 'tx-commit', '6c2ad1a0|583'), { size: 583 })
  t.match(report_('0.6', 'tx-commit', '6c2ad1a0|x'), { type: 'malformed' })
  t.match(report_('0.6', 'tx-rollback', '6c2ad1a0'), { msgid: '6c2ad1a0' })
  t.match(report_('0.6', 'protocol-client', 'MAIL FROM:<a|b@x.example> SIZE=100'), { command: 'MAIL FROM:<a|b@x.example> SIZE=100' })
  t.match(report_('0.6', 'protocol-server', '250 2.0.0 Ok'), { response: '250 2.0.0 Ok' })
  t.match(report_('0.6', 'filter-report', 'builtin|b1|hello|from builtin'), { kind: 'builtin', name: 'b1', message: 'hello|from builtin' })
  t.match(report_('0.6', 'filter-response', 'mail-from|rewrite|<new@example.org>'), { phase: 'mail-from', decision: 'rewrite', param: '<new@example.org>' })
  t.match(report_('0.6', 'filter-response', 'connected|proceed'), { phase: 'connected', decision: 'proceed', param: undefined })
  t.match(report_('0.7', 'filter-response', 'rcpt-to|reject|550 no|really'), { decision: 'reject', param: '550 no|really' })
  t.match(report_('0.6', 'some-future-event', 'x|y'), { type: 'unknown-report', event: 'some-future-event', params: 'x|y' })
})

t.test('filter requests: the parameter is the rest of the line and may be empty', async (t) => {
  const c = parseLine(`filter|0.6|1795362022.913806|smtp-in|connect|${SID}|${TOK}|mail.good.example.org|127.0.0.10`)
  t.match(c, { type: 'filter', phase: 'connect', session: SID, token: TOK, param: 'mail.good.example.org|127.0.0.10' })
  t.same(splitConnectParam('mail.good.example.org|127.0.0.10'), { rdns: 'mail.good.example.org', src: '127.0.0.10' })
  t.same(splitConnectParam('<unknown>|[2001:db8::1]'), { rdns: '<unknown>', src: '[2001:db8::1]' })
  t.match(parseLine(`filter|0.6|1|smtp-in|data|${SID}|${TOK}|`), { phase: 'data', param: '' })
  t.match(parseLine(`filter|0.6|1|smtp-in|mail-from|${SID}|${TOK}|`), { param: '' }, 'bounce: empty sender')
  t.match(parseLine(`filter|0.7|1|smtp-in|data-line|${SID}|${TOK}|a|b|c`), { param: 'a|b|c' })
  t.match(parseLine(`filter|0.6|1|smtp-in|data-line|${SID}|${TOK}|caf\xe9 \r mid`), { param: 'caf\xe9 \r mid' }, 'bytes kept')
  t.match(parseLine(`filter|0.6|1|smtp-in|quit|${SID}|${TOK}`), { type: 'filter', param: '' }, 'missing parameter field tolerated')
  t.match(parseLine(`filter|0.6|1|smtp-in|some-phase|${SID}|${TOK}|x`), { type: 'filter', phase: 'some-phase' })
})

t.test('malformed lines are data, never exceptions', async (t) => {
  for (const line of [
    '',
    'garbage',
    'filter|0.6|1|smtp-in|connect',
    `filter|x.y|1|smtp-in|helo|${SID}|${TOK}|a`,
    `filter|0.6|1|smtp-in|helo|NOTHEX|${TOK}|a`,
    `filter|0.6|1|smtp-in|helo|${SID}|${TOK}0000|a`,
    `report|0.6|1|smtp-in|link-connect`,
    `report|0.6|1|smtp-in|tx-mail|${SID}|onlyone`,
    'register|ready',
    'filter-result|a|b|proceed',
  ]) {
    t.equal(parseLine(line).type, 'malformed', JSON.stringify(line))
  }
})

t.test('answers: token/session order by version', async (t) => {
  t.equal(filterResult(v('0.6'), SID, TOK, 'helo', proceed(), noReport), `filter-result|${SID}|${TOK}|proceed`)
  t.equal(filterResult(v('0.4'), SID, TOK, 'helo', proceed(), noReport), `filter-result|${TOK}|${SID}|proceed`)
  t.equal(filterResult(v('0.7'), SID, TOK, 'mail-from', junk(), noReport), `filter-result|${SID}|${TOK}|junk`)
  t.equal(filterDataline(v('0.5'), SID, TOK, ''), `filter-dataline|${SID}|${TOK}|`, 'empty data-line keeps its trailing |')
  t.equal(filterDataline(v('0.4'), SID, TOK, '.'), `filter-dataline|${TOK}|${SID}|.`)
})

t.test('decisions smtpd survives, and only those', async (t) => {
  t.equal(filterResult(v('0.6'), SID, TOK, 'rcpt-to', reject(550, '5.7.1 no'), noReport), `filter-result|${SID}|${TOK}|reject|550 5.7.1 no`)
  t.equal(filterResult(v('0.6'), SID, TOK, 'connect', disconnect(421, 'bye\r\nnow'), noReport), `filter-result|${SID}|${TOK}|disconnect|421 bye  now`, 'no CR or LF in a text')
  t.throws(() => reject(250, 'ok'), ProtocolError, 'a 2xx reject')
  t.throws(() => reject(600, 'x'), ProtocolError)
  t.throws(() => disconnect(42.5, 'x'), ProtocolError)
  t.match(reject(550, ''), { text: 'Rejected' }, 'an empty text would be refused by smtpd')
  t.throws(() => filterResult(v('0.6'), SID, TOK, 'commit', junk(), noReport), ProtocolError, 'junk at commit kills smtpd')
  t.throws(() => filterResult(v('0.6'), SID, TOK, 'data', rewrite('x'), noReport), ProtocolError, 'rewrite at data')
  t.throws(() => filterResult(v('0.6'), SID, TOK, 'commit', rewrite('x'), noReport), ProtocolError)
  t.equal(filterResult(v('0.6'), SID, TOK, 'mail-from', rewrite('<a@b.example>'), noReport), `filter-result|${SID}|${TOK}|rewrite|<a@b.example>`)
  t.throws(() => rewrite(''), ProtocolError)
  t.throws(() => filterResult(v('0.7'), SID, TOK, 'data', report('score=1'), noReport), ProtocolError, 'report before 7.6')
  t.throws(() => filterResult(v('0.7'), SID, TOK, 'mail-from', report('x'), allowReport), ProtocolError, 'report replaces the mail-from argument')
  t.equal(filterResult(v('0.7'), SID, TOK, 'data', report('score=1'), allowReport), `filter-result|${SID}|${TOK}|report|score=1`)
  t.throws(() => filterResult(v('0.6'), SID, TOK, 'data-line', proceed(), noReport), ProtocolError, 'filter-result in data-line kills smtpd')
  const long = reject(550, 'x'.repeat(5000))
  t.ok(`reject|550 ${long.kind === 'reject' ? long.text : ''}`.length < ANSWER_LINE_LIMIT, 'reply text bounded')
})

t.test('registration lines', async (t) => {
  t.equal(registerReport('smtp-in', 'link-connect'), 'register|report|smtp-in|link-connect')
  t.equal(registerFilter('data-line'), 'register|filter|smtp-in|data-line')
  t.equal(registerReady(), 'register|ready')
  t.throws(() => registerReport('smtp-in', 'link-reset'), ProtocolError, 'unknown events are fatal at smtpd startup')
  t.throws(() => registerFilter('*'), ProtocolError, 'there is no * phase')
})

t.test('dot-stuffing', async (t) => {
  t.equal(unstuff('..x'), '.x')
  t.equal(unstuff('.x'), 'x')
  t.equal(unstuff('x.'), 'x.')
  t.equal(stuff('.x'), '..x')
  t.equal(stuff('.'), '..', 'a lone dot in content is stuffed, never the end')
  t.equal(stuff(''), '')
  for (const s of ['', 'a', '.', '..', '...x', 'x.y']) t.equal(unstuff(stuff(s)), s)
})
