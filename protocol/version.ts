/**
 * Protocol versions. smtpd writes the version in field 2 of every report and
 * filter line ("0.4" on 6.6.x, "0.5" in OpenBSD-current of early 2020, "0.6" on
 * 6.7–7.3, "0.7" on 7.4+). Versions are compared numerically: "0.10" > "0.7",
 * which a string comparison (filter-rspamd's `version < "0.7"`) gets wrong.
 */

export interface ProtocolVersion {
  readonly major: number
  readonly minor: number
  /** the version exactly as smtpd wrote it */
  readonly text: string
}

const cache = new Map<string, ProtocolVersion | null>()

/** Parses "MAJOR.MINOR"; anything else is not a version (undefined). */
export function parseVersion(text: string): ProtocolVersion | undefined {
  let v = cache.get(text)
  if (v === undefined) {
    const m = /^(\d{1,6})\.(\d{1,6})$/.exec(text)
    v = m ? Object.freeze({ major: Number(m[1]), minor: Number(m[2]), text }) : null
    // Versions are few; bound the cache so garbage input cannot grow it.
    if (cache.size < 64) cache.set(text, v)
  }
  return v ?? undefined
}

export function compareVersions(a: ProtocolVersion, b: ProtocolVersion): number {
  return a.major - b.major || a.minor - b.minor
}

function below(v: ProtocolVersion, major: number, minor: number): boolean {
  return v.major < major || (v.major === major && v.minor < minor)
}

/** Before 0.5 (smtpd 6.6.x) answers carry TOKEN|SESSION instead of SESSION|TOKEN. */
export function tokenFirst(v: ProtocolVersion): boolean {
  return below(v, 0, 5)
}

/** Before 0.6, tx-mail and tx-rcpt were `msgid|address|result`; since, `msgid|result|address`. */
export function txAddressBeforeResult(v: ProtocolVersion): boolean {
  return below(v, 0, 6)
}

/** Before 0.7, link-auth was `username|result`; 0.7 moved the result first (usernames may hold '|'). */
export function authUsernameFirst(v: ProtocolVersion): boolean {
  return below(v, 0, 7)
}

/**
 * smtpd 6.6–7.3 (protocol < 0.7) copied each answer line into a 2048-byte
 * buffer (LINE_MAX) before parsing it: longer lines are silently truncated
 * (lka_filter.c lka_filter_process_response; fixed in 7.4, commit 3a52f849).
 */
export function answersTruncated(v: ProtocolVersion): boolean {
  return below(v, 0, 7)
}

/** LINE_MAX of smtpd < 7.4: the bytes of an answer line (without its '\n') smtpd keeps. */
export const ANSWER_LINE_LIMIT = 2047

/**
 * smtpd reads filter output into a 64 KiB buffer (iobuf.c IOBUF_MAX, every
 * version to 7.8): a line longer than this, without its '\n', is never read
 * and the channel to the filter stalls. smtpd itself sends data-lines of up
 * to ~65.6 KB, so an echoed line can exceed it.
 */
export const READ_BUFFER_LIMIT = 65535
