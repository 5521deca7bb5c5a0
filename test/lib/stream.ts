/**
 * Builders for smtpd's side of the protocol (and the answers a filter owes),
 * for any protocol version — fixtures are built, not pasted. Also converts a
 * recorded 0.6 stream into the same sessions as 0.4 (smtpd 6.6) or 0.7
 * (smtpd 7.8) would write them, with the expected answers converted alike.
 */

import { parseLine, parseVersion, tokenFirst, txAddressBeforeResult, authUsernameFirst } from '../../protocol/index.js'

export type Version = '0.4' | '0.5' | '0.6' | '0.7' | string

let clock = 1700000000

function ts(): string {
  clock += 0.000137
  return clock.toFixed(6)
}

export function sid(n: number): string {
  return (0x7641df9771b40000n + BigInt(n)).toString(16).padStart(16, '0')
}

export function tok(n: number): string {
  return (0xdff4042400000000n + BigInt(n)).toString(16).padStart(16, '0')
}

export class StreamBuilder {
  constructor(readonly version: Version = '0.6') {}

  /** The config lines of the smtpd that speaks this version. */
  handshake(admd = 'mx.test.example'): string[] {
    const v = parseVersion(this.version)!
    if (tokenFirst(v)) return ['config|smtpd-version|6.6.4p1', 'config|smtp-session-timeout|300', 'config|ready']
    if (authUsernameFirst(v))
      return ['config|smtpd-version|6.8.0p2', 'config|smtp-session-timeout|300', 'config|subsystem|smtp-in', `config|admd|${admd}`, 'config|ready']
    return [
      'config|smtpd-version|7.8.0-portable',
      `config|protocol|${this.version}`,
      'config|smtp-session-timeout|300',
      'config|subsystem|smtp-in',
      `config|admd|${admd}`,
      'config|ready',
    ]
  }

  report(session: string, event: string, ...params: string[]): string {
    return `report|${this.version}|${ts()}|smtp-in|${event}|${session}${params.length ? '|' + params.join('|') : ''}`
  }

  request(session: string, phase: string, token: string, param = ''): string {
    return `filter|${this.version}|${ts()}|smtp-in|${phase}|${session}|${token}|${param}`
  }

  linkConnect(session: string, rdns: string, fcrdns: string, src: string, dest = '127.0.0.1:25'): string {
    return this.report(session, 'link-connect', rdns, fcrdns, src, dest)
  }

  connect(session: string, token: string, rdns: string, src: string): string {
    return this.request(session, 'connect', token, `${rdns}|${src}`)
  }

  txAddress(session: string, event: 'tx-mail' | 'tx-rcpt', msgid: string, result: string, address: string): string {
    return txAddressBeforeResult(parseVersion(this.version)!)
      ? this.report(session, event, msgid, address, result)
      : this.report(session, event, msgid, result, address)
  }

  linkAuth(session: string, result: string, username: string): string {
    return authUsernameFirst(parseVersion(this.version)!) ? this.report(session, 'link-auth', username, result) : this.report(session, 'link-auth', result, username)
  }

  /** A message (LF-separated text) as data-line requests: dot-stuffed, then ".". */
  data(session: string, token: string, message: string): string[] {
    const lines = message.endsWith('\n') ? message.slice(0, -1).split('\n') : message.split('\n')
    return [...lines.map((l) => this.request(session, 'data-line', token, l.startsWith('.') ? '.' + l : l)), this.request(session, 'data-line', token, '.')]
  }

  /** The answer line a filter owes, in this version's order. */
  result(session: string, token: string, decision: string): string {
    return `filter-result|${this.ids(session, token)}|${decision}`
  }

  dataline(session: string, token: string, line: string): string {
    return `filter-dataline|${this.ids(session, token)}|${line}`
  }

  private ids(session: string, token: string): string {
    return tokenFirst(parseVersion(this.version)!) ? `${token}|${session}` : `${session}|${token}`
  }

  /** A whole ordinary session, as smtpd 6.8 orders it (protocol.md §2.4), with the answers of a pass-through. */
  session(n: number, opts: { src?: string; rdns?: string; message?: string; from?: string; rcpt?: string } = {}): { input: string[]; passThrough: string[] } {
    const s = sid(n)
    const src = opts.src ?? `192.0.2.${n % 250}`
    const rdns = opts.rdns ?? `mail${n}.example.org`
    const msgid = (0x6c2ad1a0 + n).toString(16).slice(-8)
    const message = opts.message ?? `From: a@example.org\nTo: b@example.net\nSubject: test ${n}\n\nbody line\n.leading dot\n`
    const t = (k: number) => tok(n * 16 + k)
    const input: string[] = []
    const out: string[] = []
    const ask = (phase: string, k: number, param = ''): void => {
      input.push(this.request(s, phase, t(k), param))
      out.push(this.result(s, t(k), 'proceed'))
    }
    input.push(this.linkConnect(s, rdns, 'pass', `${src}:4${n % 10000}`))
    input.push(this.connect(s, t(0), rdns, src))
    out.push(this.result(s, t(0), 'proceed'))
    input.push(this.report(s, 'link-greeting', 'mx.test.example'))
    ask('ehlo', 1, rdns)
    input.push(this.report(s, 'link-identify', 'EHLO', rdns))
    ask('mail-from', 2, opts.from ?? 'a@example.org')
    input.push(this.report(s, 'tx-begin', msgid), this.txAddress(s, 'tx-mail', msgid, 'ok', opts.from ?? 'a@example.org'))
    ask('rcpt-to', 3, opts.rcpt ?? 'b@example.net')
    input.push(this.report(s, 'tx-envelope', msgid, msgid + '00000001'), this.txAddress(s, 'tx-rcpt', msgid, 'ok', opts.rcpt ?? 'b@example.net'))
    ask('data', 4)
    const data = this.data(s, t(5), message)
    input.push(...data)
    for (const l of data) out.push(this.dataline(s, t(5), l.slice(l.indexOf('|', l.indexOf(t(5))) + 1)))
    input.push(this.report(s, 'tx-data', msgid, 'ok'))
    ask('commit', 6)
    input.push(this.report(s, 'tx-commit', msgid, '123'), this.report(s, 'tx-reset', msgid))
    ask('quit', 7)
    input.push(this.report(s, 'link-disconnect'))
    return { input, passThrough: out }
  }
}

/** Rewrites one recorded line (any version) as `to` would carry it; config lines are dropped (use a new handshake). */
export function convertLine(line: string, to: Version): string | undefined {
  const m = parseLine(line)
  switch (m.type) {
    case 'config':
      return undefined
    case 'filter':
      return line.replace(/^filter\|[^|]*\|/, `filter|${to}|`)
    case 'report': {
      const head = line.replace(/^report\|[^|]*\|/, `report|${to}|`)
      if (m.event === 'tx-mail' || m.event === 'tx-rcpt') {
        const prefix = head.slice(0, head.indexOf(`|${m.event}|${m.session}`)) + `|${m.event}|${m.session}|`
        return txAddressBeforeResult(parseVersion(to)!) ? `${prefix}${m.msgid}|${m.address}|${m.result}` : `${prefix}${m.msgid}|${m.result}|${m.address}`
      }
      if (m.event === 'link-auth') {
        const prefix = head.slice(0, head.indexOf(`|link-auth|${m.session}`)) + `|link-auth|${m.session}|`
        return authUsernameFirst(parseVersion(to)!) ? `${prefix}${m.username}|${m.result}` : `${prefix}${m.result}|${m.username}`
      }
      return head
    }
    default:
      return line.replace(/^(report|filter)\|0\.\d+\|/, `$1|${to}|`)
  }
}

/** A whole recorded stream as `to` would carry it. */
export function convertStream(lines: readonly string[], to: Version): string[] {
  const out = new StreamBuilder(to).handshake()
  for (const l of lines) {
    const c = convertLine(l, to)
    if (c !== undefined) out.push(c)
  }
  return out
}

/** Expected answers converted from a 0.5+ order to `to`'s order (register lines unchanged). */
export function convertAnswers(lines: readonly string[], to: Version): string[] {
  const swap = tokenFirst(parseVersion(to)!)
  return lines.map((l) => {
    const m = /^(filter-result|filter-dataline)\|([0-9a-f]+)\|([0-9a-f]+)\|/.exec(l)
    if (!m || !swap) return l
    return `${m[1]}|${m[3]}|${m[2]}|${l.slice(m[0].length)}`
  })
}
