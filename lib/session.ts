/**
 * Session facts kept current from smtpd's reports (link-connect,
 * link-identify, link-tls, link-auth, tx-*). A session is created on
 * link-connect, or lazily on the first line that names it (a filter may
 * see lines for sessions whose link-connect it never got: it registered
 * late, or another chain member answered first), and dropped on
 * link-disconnect.
 */

import type { Report } from '../protocol/index.js'
import type { SessionInfo } from './filter.js'
import { parseSmtpdAddress } from './net.js'

export class Session implements SessionInfo {
  rdns?: string
  fcrdns?: string
  src?: string
  dest?: string
  address?: string
  family?: 4 | 6
  local = false
  heloMethod?: string
  helo?: string
  tls?: string
  authResult?: string
  authUser?: string
  msgid?: string
  mailFrom?: string
  rcpts: string[] = []

  constructor(
    readonly id: string,
    readonly subsystem: string,
  ) {}

  /** Updates the facts from a report about this session. */
  apply(r: Report): void {
    switch (r.event) {
      case 'link-connect': {
        this.rdns = r.rdns === '<unknown>' || r.rdns === '' ? undefined : r.rdns
        this.fcrdns = r.fcrdns
        this.src = r.src
        this.dest = r.dest
        const c = clientAddress(r.src)
        this.local = c.local
        this.address = c.address
        this.family = c.family
        break
      }
      case 'link-identify':
        this.heloMethod = r.method
        this.helo = r.identity
        break
      case 'link-tls':
        this.tls = r.tls
        break
      case 'link-auth':
        this.authResult = r.result
        this.authUser = r.result === 'pass' ? r.username : undefined
        break
      case 'tx-begin':
        this.msgid = r.msgid
        this.mailFrom = undefined
        this.rcpts = []
        break
      case 'tx-mail':
        if (r.result === 'ok') this.mailFrom = r.address
        break
      case 'tx-rcpt':
        if (r.result === 'ok') this.rcpts.push(r.address)
        break
      case 'tx-reset':
        this.msgid = undefined
        this.mailFrom = undefined
        this.rcpts = []
        break
      default:
        break
    }
  }

  /** From the connect request (`rdns|src`), for filters that never saw link-connect. */
  applyConnect(rdns: string, src: string): void {
    if (this.src !== undefined) return
    if (this.rdns === undefined && rdns !== '<unknown>' && rdns !== '') this.rdns = rdns
    const c = clientAddress(src)
    this.local = c.local
    this.address = c.address
    this.family = c.family
  }
}

/** The client address from smtpd's src forms (`1.2.3.4:port`, `[v6]:port`, `unix:/path`, `local`). */
function clientAddress(src: string): { local: boolean; address?: string; family?: 4 | 6 } {
  const a = parseSmtpdAddress(src)
  if (!a) return { local: false }
  if (a.family === 'unix') return { local: true }
  return { local: false, address: a.ip, family: a.family }
}
