/**
 * Messages and session scripts for benchmarks: what smtpd would send a filter
 * for N ordinary sessions (link-connect, connect, ehlo, mail-from, rcpt-to,
 * data, the message as data-lines, commit, quit, link-disconnect), in
 * smtpd 6.8's order (protocol.md §2.4), with unique session ids and tokens.
 */

import { randomBytes } from 'node:crypto'

export type MessageSize = '4k' | '100k' | '5m'

/** A realistic message: folded headers, multipart text + HTML, dot lines, whitespace; larger sizes add a base64 attachment. */
export function makeMessage(size: MessageSize, n = 0): string[] {
  const boundary = `----=_Part_${n}_bench`
  const lines = [
    `Received: from client${n}.example.org (client${n}.example.org [192.0.2.${n % 250}])`,
    `\tby mx.test.example (OpenSMTPD) with ESMTP id ${(0x10000000 + n).toString(16)}`,
    `\tfor <bob@example.net>;`,
    `\tSun, 22 Nov 2026 15:07:23 +0000 (UTC)`,
    `From: "Alice Example" <alice@example.org>`,
    `To: Bob <bob@example.net>, "Carol, C." <carol@example.net>`,
    `Cc: dave@example.net`,
    `Subject: Quarterly report ${n} -- figures, notes and the`,
    `  follow-up we discussed`,
    `Date: Sun, 22 Nov 2026 15:07:20 +0000`,
    `Message-ID: <bench.${n}.${Date.now()}@example.org>`,
    `MIME-Version: 1.0`,
    `Content-Type: multipart/alternative; boundary="${boundary}"`,
    `X-Mailer: bench-generator 1.0`,
    `List-Id: <reports.example.org>`,
    `Reply-To: alice@example.org`,
    '',
    `--${boundary}`,
    `Content-Type: text/plain; charset=utf-8`,
    `Content-Transfer-Encoding: 8bit`,
    '',
  ]
  const para = 'The figures for this quarter are in the attached tables; see the notes below   '
  for (let i = 0; i < 18; i++) lines.push(`${para.slice(0, 40 + (i % 30))} line ${i}  `)
  lines.push('.this line starts with a dot', '..and this one with two', '', 'Regards,', 'Alice', '')
  lines.push(`--${boundary}`, `Content-Type: text/html; charset=utf-8`, '')
  for (let i = 0; i < 14; i++) lines.push(`<p>Paragraph ${i}: <b>${para.trim()}</b> <a href="https://example.org/r/${i}">link</a></p>`)
  lines.push(`--${boundary}--`)
  const target = size === '4k' ? 4096 : size === '100k' ? 100 * 1024 : 5 * 1024 * 1024
  let bytes = lines.reduce((a, l) => a + l.length + 2, 0)
  if (bytes < target && size !== '4k') {
    lines.pop()
    lines.push(`--${boundary}`, 'Content-Type: application/octet-stream; name="data.bin"', 'Content-Transfer-Encoding: base64', '')
    const b64 = randomBytes(Math.ceil(((target - bytes) * 3) / 4)).toString('base64')
    for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76))
    lines.push(`--${boundary}--`)
    bytes = target
  }
  while (size === '4k' && bytes < target) {
    const l = `filler ${bytes} ${para}`.slice(0, 70)
    lines.splice(lines.length - 1, 0, l)
    bytes += l.length + 2
  }
  return lines
}

export interface SessionSpec {
  readonly id: string
  readonly src: string
  readonly rdns: string
  readonly message: readonly string[]
}

export function sessionId(i: number): string {
  return (0x5e55100000000000n + BigInt(i)).toString(16)
}

/** Client addresses: `ips` distinct IPv4 addresses in 10.0.0.0/8 (for DNS-based filters). */
export function clientIp(i: number, ips: number): string {
  const k = (i % ips) + 1
  return `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`
}
