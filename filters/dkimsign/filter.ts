/**
 * filter-dkimsign: a DKIM signer (RFC 6376, RFC 8463) for smtpd's submission listener, a
 * drop-in for Debian's C filter-dkimsign 0.5 (same flags, same defaults, byte-identical
 * signatures where its own verify: lib/dkim/signer.ts lists where they do not) with more:
 *
 * - a key table (-K): several domains, several keys per domain (RSA and Ed25519 in one
 *   pass, or two selectors during a key rotation), chosen by the From: domain;
 * - mail whose From: domain has no key passes unsigned (with -K; -fallback signs it with
 *   the first domain, which is what the C filter always does and what we do with -d);
 * - oversigning (-oversign, or rspamd's "(o)"/"(x)" prefixes in -h);
 * - -authOnly: sign only sessions that authenticated or came over the local socket, so the
 *   filter on an inbound listener by mistake signs nothing foreign;
 * - an error policy (-onError): 421 at commit, as the C filter, or pass unsigned;
 * - startup checks: keys readable and of the right type, permissions, and optionally the
 *   published DNS record (-checkDns).
 *
 * The message is held by the runtime (in memory up to 1 MB, then in an unlinked 0600 temp
 * file) because the signature goes before it; the body is hashed line by line as it arrives,
 * so the end of the message costs one signature per key, not a pass over the message.
 */

import type { KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'

import { answersTruncated } from '../../protocol/index.js'
import {
  DEFAULT_OVERSIGN,
  DkimSigner,
  canonicalizeHeader,
  checkPublishedKey,
  defaultHeaderList,
  fieldName,
  fromDomain,
  lowerAscii,
  matchDomain,
  parseAlgorithm,
  parseCanonicalization,
  parseHeaderList,
  loadPrivateKey,
  withOversigning,
  type Algorithm,
  type CanonAlgorithm,
  type Canonicalization,
  type HeaderSpec,
  type LoadedKey,
  type SignatureSpec,
} from '../../lib/dkim/index.js'
import { createResolver, nameserverFlag, type DnsResolver } from '../../lib/dns.js'
import { defineFilter, disconnect, proceed, type FilterDefinition, type MessageContext, type MessageEdit } from '../../lib/filter.js'
import { bool, list, num, str, UsageError, type FlagSpec, type FlagValues } from '../../lib/flags.js'
import type { Logger } from '../../lib/log.js'
import { StartupError, type ProgramSpec } from '../../lib/main.js'
import { errText } from '../../lib/message.js'

// ---- configuration ---------------------------------------------------------------------

/** One signing key: a selector and a private key for a domain. */
export interface KeyEntry {
  readonly domain: string
  readonly selector: string
  readonly path: string
  readonly algorithm: Algorithm
  readonly key: KeyObject
}

export type ErrorPolicy = 'tempfail' | 'pass'

export interface DkimsignConfig {
  /**
   * 'domains': the C filter's -d/-D/-k/-s: one key, one selector, the signing domain chosen
   * among `domains` by the engine (exact From: domain, then parents, else the first).
   * 'table': -K: keys by domain; every key of the chosen domain signs.
   */
  readonly mode: 'domains' | 'table'
  /** domains mode: the -d/-D domains in order; table mode: the table's domains in order */
  readonly domains: readonly string[]
  /** every key; in domains mode one entry per domain, all with the same key and selector */
  readonly keys: readonly KeyEntry[]
  readonly canonicalization: Canonicalization
  readonly headers: readonly HeaderSpec[]
  readonly timestamp: boolean
  readonly expire?: bigint
  readonly copyHeaders: 0 | 1 | 2
  /** sign mail whose From: domain has no key with the first domain (the C filter's way) */
  readonly fallback: boolean
  readonly authOnly: boolean
  readonly onError: ErrorPolicy
}

// ---- per-session and per-message state --------------------------------------------------

interface Message {
  /** the runtime makes one MessageContext per message: this is how a new message is told */
  readonly ctx: MessageContext<SessionState>
  /** header lines up to and including the empty line, until the key is chosen */
  header: string[] | undefined
  signer: DkimSigner | undefined
  /** keys signing this message (after the choice) */
  keys: readonly KeyEntry[]
  /** why this message is passed unsigned (not an error) */
  skip: string | undefined
  error: unknown
  readonly maxLineBytes: number | undefined
}

interface SessionState {
  msg: Message | undefined
  /** the last message's signing failed and the policy is tempfail: refuse it at commit */
  failed: boolean
}

/** Bytes of `filter-dataline|<session>|<token>|` in an answer: the token is as long as the session id in smtpd. */
function answerPrefix(session: string): number {
  return 'filter-dataline|'.length + 2 * session.length + 2
}

/** ANSWER_LINE_LIMIT of smtpd < 7.4: an answer line must stay under 2048 bytes with its '\n'. */
const ANSWER_LINE_MAX = 2047

/**
 * The From: field values of a header (the text after the colon), top to bottom, canonicalized
 * as the engine sees them when it picks the -d domain, so that "sign or not" and "which
 * domain" are decided on the same text.
 */
function fromValues(header: readonly string[], canon: CanonAlgorithm): string[] {
  const fields: string[][] = []
  let cur: string[] | undefined
  for (const l of header) {
    if (l === '') break
    const c = l.charCodeAt(0)
    if (c === 0x20 || c === 0x09) {
      cur?.push(l)
      continue
    }
    cur = undefined
    if (fieldName(l) === 'from') {
      cur = [l]
      fields.push(cur)
    }
  }
  return fields.map((f) => {
    const v = canonicalizeHeader(canon, f)
    return v.slice(v.indexOf(':') + 1)
  })
}

/**
 * A From: domain as written, cleaned for the key table: comments and white space removed, a
 * final dot dropped, lower case. (The -d mode keeps the C filter's raw comparison, where
 * `a@example.org (x)` matches no domain; a key table should not depend on such accidents.)
 */
export function cleanDomain(raw: string): string {
  let out = ''
  let depth = 0
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!
    if (ch === '\\' && depth > 0) {
      i++
      continue
    }
    if (ch === '(') depth++
    else if (ch === ')') depth = Math.max(0, depth - 1)
    else if (depth === 0 && ch !== ' ' && ch !== '\t' && ch !== '\r' && ch !== '\n') out += ch
  }
  return lowerAscii(out.replace(/\.$/, ''))
}

/** The keys that sign a message with these From: values, or why none does. */
export function chooseKeys(config: DkimsignConfig, from: readonly string[]): { keys: readonly KeyEntry[]; domain: string } | { skip: string } {
  if (config.mode === 'domains') {
    // The engine picks the domain itself (byte-identical to the C filter); here we only
    // decide whether to sign at all.
    if (!config.fallback) {
      const matched = from.some((v) => {
        const d = fromDomain(v)
        return d !== null && matchDomain(d, config.domains) !== null
      })
      if (!matched) return { skip: noKeyReason(from) }
    }
    return { keys: config.keys, domain: config.domains[0]! }
  }
  for (const v of from) {
    const d = fromDomain(v)
    if (d === null) continue
    const m = matchDomain(cleanDomain(d), config.domains)
    if (m !== null) return { keys: config.keys.filter((k) => k.domain === m), domain: m }
  }
  if (config.fallback) {
    const first = config.domains[0]!
    return { keys: config.keys.filter((k) => k.domain === first), domain: first }
  }
  return { skip: noKeyReason(from) }
}

function noKeyReason(from: readonly string[]): string {
  if (from.length === 0) return 'no From: field'
  const d = fromDomain(from[0]!)
  return d === null ? 'no domain in From:' : `no key for the From: domain ${JSON.stringify(d.length > 100 ? d.slice(0, 100) + '…' : d)}`
}

function specOf(config: DkimsignConfig, k: KeyEntry, domains: readonly string[]): SignatureSpec {
  return {
    algorithm: k.algorithm,
    key: k.key,
    selector: k.selector,
    domains,
    canonicalization: config.canonicalization,
    headers: config.headers,
    timestamp: config.timestamp,
    expire: config.expire,
    copyHeaders: config.copyHeaders,
  }
}

/** The signature specs for the chosen keys (in domains mode one spec, the engine choosing among all -d). */
export function signatureSpecs(config: DkimsignConfig, keys: readonly KeyEntry[]): SignatureSpec[] {
  if (config.mode === 'domains') return [specOf(config, keys[0]!, config.domains)]
  return keys.map((k) => specOf(config, k, [k.domain]))
}

// ---- the filter ---------------------------------------------------------------------------

/**
 * `log` is the process logger: the per-message lines carry the session id themselves rather
 * than going through ctx.log, whose first use per session creates a child logger (~10 µs, as
 * much as hashing a 4 KB body).
 */
export function dkimsignFilter(config: DkimsignConfig, log?: Logger): FilterDefinition<SessionState> {
  const logOf = (ctx: MessageContext<SessionState>): Logger => log ?? ctx.log
  const at = (ctx: MessageContext<SessionState>): Record<string, unknown> => (log ? { session: ctx.session.id, bytes: ctx.bytes } : { bytes: ctx.bytes })
  const start = (ctx: MessageContext<SessionState>): Message => {
    const s = ctx.session
    const msg: Message = {
      ctx,
      header: [],
      signer: undefined,
      keys: [],
      skip: undefined,
      error: undefined,
      // smtpd < 7.4 keeps 2047 bytes of each answer line: a longer message line is delivered
      // cut, so it is hashed cut (lib/dkim/signer.ts, case 1)
      maxLineBytes: answersTruncated(ctx.version) ? ANSWER_LINE_MAX - answerPrefix(s.id) : undefined,
    }
    if (config.authOnly && s.authUser === undefined && !s.local) {
      msg.skip = 'session neither authenticated nor local'
      msg.header = undefined
    }
    ctx.state.failed = false
    ctx.state.msg = msg
    return msg
  }

  /** The header is complete: choose the keys, start the signer, hash the header lines. */
  const begin = (msg: Message): void => {
    const header = msg.header!
    msg.header = undefined
    // -d with the fallback: every message is signed and the engine picks the domain itself
    const choice = config.mode === 'domains' && config.fallback ? { keys: config.keys, domain: '' } : chooseKeys(config, fromValues(header, config.canonicalization.header))
    if ('skip' in choice) {
      msg.skip = choice.skip
      return
    }
    msg.keys = choice.keys
    msg.signer = new DkimSigner(signatureSpecs(config, choice.keys), { maxLineBytes: msg.maxLineBytes })
    for (const l of header) msg.signer.line(l)
  }

  const end = async (ctx: MessageContext<SessionState>): Promise<MessageEdit> => {
    let msg = ctx.state.msg
    if (msg === undefined || msg.ctx !== ctx) msg = start(ctx) // an empty message: no line at all
    ctx.state.msg = undefined
    try {
      if (msg.error !== undefined) throw msg.error
      if (msg.skip === undefined && msg.signer === undefined) begin(msg) // no empty line after the header
      if (msg.skip !== undefined) {
        logOf(ctx).info({ ...at(ctx), reason: msg.skip }, 'not signed')
        return {}
      }
      // the private-key operation on the thread pool: other sessions go on meanwhile
      const lines = await msg.signer!.finishAsync()
      const max = msg.maxLineBytes ?? Infinity
      for (const l of lines) {
        // cannot happen with the startup limits on names; a cut signature would not verify
        if (l.length + (l.charCodeAt(0) === 0x2e ? 1 : 0) > max) throw new Error(`a signature line of ${l.length} bytes is too long for smtpd`)
      }
      const l = logOf(ctx)
      // debug, not info: a log line costs as much CPU as signing (pino + a write to stderr),
      // and smtpd logs every message anyway; what is not signed is logged at info
      if (l.isLevelEnabled('debug')) l.debug({ ...at(ctx), d: signedDomains(lines), s: config.mode === 'domains' ? [config.keys[0]!.selector] : msg.keys.map((k) => k.selector) }, 'signed')
      return { prepend: lines }
    } catch (err) {
      if (config.onError === 'pass') {
        logOf(ctx).error({ ...at(ctx), err: errText(err) }, 'signing failed: message passed on unsigned')
      } else {
        ctx.state.failed = true
        logOf(ctx).error({ ...at(ctx), err: errText(err) }, 'signing failed: message refused at commit (421)')
      }
      return {}
    }
  }

  return defineFilter<SessionState>({
    name: 'dkimsign',
    needs: config.authOnly ? ['auth', 'src'] : [],
    newSession: () => ({ msg: undefined, failed: false }),
    phases:
      config.onError === 'tempfail'
        ? {
            commit: (ctx) => {
              if (!ctx.state.failed) return proceed()
              ctx.state.failed = false
              // as the C filter: the client keeps the message and tries again later
              return disconnect(421, '4.3.0 Internal error while signing the message, try again later')
            },
          }
        : {},
    data: {
      mode: 'hold',
      line: (ctx, line) => {
        let msg = ctx.state.msg
        if (msg === undefined || msg.ctx !== ctx) msg = start(ctx)
        if (msg.signer !== undefined) {
          if (msg.error === undefined) {
            try {
              msg.signer.line(line)
            } catch (err) {
              msg.error = err
            }
          }
          return
        }
        if (msg.header === undefined) return // skipped, or failed
        msg.header.push(line)
        if (line === '') {
          try {
            begin(msg)
          } catch (err) {
            msg.error = err
          }
        }
      },
      end,
    },
    // Only a failure of the runtime itself (the spool) lands here; ours are caught above.
    onFailure: config.onError === 'tempfail' ? 'tempfail' : 'proceed',
  })
}

function signedDomains(lines: readonly string[]): string[] {
  const out: string[] = []
  let cur = ''
  for (const l of lines) {
    if (l.startsWith('DKIM-Signature:') && cur !== '') {
      out.push(dOf(cur))
      cur = ''
    }
    cur += l
  }
  if (cur !== '') out.push(dOf(cur))
  return out
}

function dOf(sig: string): string {
  return /;\s*d=([^;\s]*)/.exec(sig.replace(/\r\n[ \t]/g, ''))?.[1] ?? '?'
}

// ---- flags and startup ----------------------------------------------------------------------

const ERROR_POLICIES: readonly ErrorPolicy[] = ['tempfail', 'pass']

export const FLAGS: readonly FlagSpec[] = [
  // filter-dkimsign 0.5 / 0.6 (getopt "a:c:d:D:h:k:s:tx:z")
  { name: 'a', kind: 'string', arg: 'algorithm', help: 'rsa-sha256 or ed25519-sha256 (default rsa-sha256; with -K, the type every key must have)' },
  { name: 'c', kind: 'string', arg: 'canonicalization', default: 'simple/simple', help: 'simple or relaxed, optionally /simple or /relaxed for the body (alone: body simple)' },
  { name: 'd', kind: 'string', arg: 'domain', repeat: true, help: 'signing domain (repeatable: the From: domain matched exactly, then by parent, else the first)' },
  { name: 'D', kind: 'string', arg: 'file', repeat: true, help: 'file of signing domains, one a line (# comments); after the -d domains' },
  { name: 'h', kind: 'string', arg: 'headers', help: 'colon-separated header fields to sign, from required; "(o)name" oversigns always, "(x)name" when present (default: RFC 6376 §5.4.1 list)' },
  { name: 'k', kind: 'string', arg: 'keyfile', help: 'PEM private key (with -d and -s)' },
  { name: 's', kind: 'string', arg: 'selector', help: 'selector (with -d and -k)' },
  { name: 't', kind: 'bool', help: 'add t= (signing time)' },
  { name: 'x', kind: 'string', arg: 'seconds', help: 'add x= (expiry) this many seconds after signing' },
  { name: 'z', kind: 'count', help: 'add z= with the signed header fields; -zz: with all header fields (debugging)' },
  // ours
  { name: 'K', kind: 'string', arg: 'keytable', help: 'key table: lines "domain selector keyfile"; several lines for a domain sign with each key (instead of -d/-D/-k/-s)' },
  { name: 'fallback', kind: 'bool', help: 'sign mail whose From: domain has no key with the first domain (default: on with -d, off with -K)' },
  { name: 'oversign', kind: 'bool', help: 'oversign (RFC 6376 §8.15): from, to, cc, subject, reply-to always; date, message-id, mime-version, content-type, in-reply-to, references when present' },
  { name: 'authOnly', kind: 'bool', help: 'sign only sessions that authenticated or came over the local socket; pass others unsigned' },
  {
    name: 'onError',
    kind: 'string',
    arg: 'policy',
    default: 'tempfail',
    help: 'on an internal error: tempfail (421 at commit, the client retries; the C filter\'s way) or pass (unsigned)',
    check: (v) => ((ERROR_POLICIES as readonly string[]).includes(String(v)) ? undefined : 'tempfail or pass'),
  },
  {
    name: 'checkDns',
    kind: 'string',
    arg: 'mode',
    help: 'at startup, check that <selector>._domainkey.<domain> publishes each key: warn (log) or strict (exit 1 on a wrong or missing record)',
    check: (v) => (v === 'warn' || v === 'strict' ? undefined : 'warn or strict'),
  },
  nameserverFlag('resolver for -checkDns (repeatable; default: /etc/resolv.conf)'),
]

const INT64_MAX = (1n << 63n) - 1n

/** -x as the C filter reads it (strtonum 1 … INT64_MAX). */
function parseExpire(s: string): bigint {
  if (!/^[+-]?\d+$/.test(s.trim())) throw new StartupError('Expire offset is invalid')
  const v = BigInt(s.trim())
  if (v < 1n) throw new StartupError('Expire offset is too small')
  if (v > INT64_MAX) throw new StartupError('Expire offset is too large')
  return v
}

function readLines(path: string, what: string): string[] {
  let text: string
  try {
    text = readFileSync(path, 'latin1')
  } catch (e) {
    throw new StartupError(`can't read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? errText(e)}`)
  }
  return text.split('\n')
}

/** Domains of a -D file: one a line; blank lines and # comments skipped. */
export function readDomainFile(path: string): string[] {
  const out: string[] = []
  for (const raw of readLines(path, 'domain file')) {
    const l = raw.replace(/#.*/, '').trim()
    if (l !== '') out.push(l)
  }
  return out
}

export interface KeyTableLine {
  readonly domain: string
  readonly selector: string
  readonly keyfile: string
  readonly line: number
}

/** -K: `domain selector keyfile` a line, # comments; a relative keyfile is relative to the table. */
export function readKeyTable(path: string): KeyTableLine[] {
  const out: KeyTableLine[] = []
  const base = dirname(resolve(path))
  readLines(path, 'key table').forEach((raw, i) => {
    const l = raw.replace(/#.*/, '').trim()
    if (l === '') return
    const f = l.split(/[ \t]+/)
    if (f.length !== 3) throw new StartupError(`${path}:${i + 1}: expected "domain selector keyfile", got ${f.length} field${f.length === 1 ? '' : 's'}`)
    out.push({ domain: f[0]!, selector: f[1]!, keyfile: resolve(base, f[2]!), line: i + 1 })
  })
  if (out.length === 0) throw new StartupError(`${path}: no key in the key table`)
  return out
}

/** A DNS name must fit: labels of at most 63 bytes, 253 in all (RFC 1035 §2.3.4). */
function checkRecordName(selector: string, domain: string, where: string): void {
  const name = `${selector}._domainkey.${domain.replace(/\.$/, '')}`
  if (name.length > 253) throw new StartupError(`${where}${name}: longer than 253 bytes, no DNS name can hold it`)
  const long = name.split('.').find((l) => l.length > 63)
  if (long !== undefined) throw new StartupError(`${where}${name}: the label "${long.slice(0, 20)}…" is longer than 63 bytes`)
  if (name.split('.').some((l) => l === '')) throw new StartupError(`${where}${name}: empty label`)
}

/** Loads a key for `algorithm`, or of whatever type it is when algorithm is undefined. */
function loadKey(path: string, algorithm: Algorithm | undefined, log: Logger, seen: Map<string, LoadedKey>): LoadedKey {
  const cached = seen.get(path)
  if (cached) {
    if (algorithm !== undefined && cached.type !== (algorithm === 'rsa-sha256' ? 'rsa' : 'ed25519')) {
      throw new StartupError(`key ${path} is ${cached.type} but -a says ${algorithm}`)
    }
    return cached
  }
  let k: LoadedKey
  try {
    if (algorithm !== undefined) k = loadPrivateKey(path, algorithm)
    else {
      try {
        k = loadPrivateKey(path, 'rsa-sha256')
      } catch (e) {
        if (!/ is ed25519 but /.test(errText(e))) throw e
        k = loadPrivateKey(path, 'ed25519-sha256')
      }
    }
  } catch (e) {
    throw new StartupError(errText(e))
  }
  if (k.groupReadable || k.worldReadable) {
    log.warn({ key: path, mode: k.mode.toString(8).padStart(4, '0') }, `private key ${path} is readable by ${k.worldReadable ? 'everyone' : 'its group'}: chmod 600 it`)
  }
  seen.set(path, k)
  return k
}

const algorithmOf = (k: LoadedKey): Algorithm => (k.type === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256')

/** Builds the configuration from parsed flags; throws StartupError or UsageError. */
export function configFromFlags(values: FlagValues, log: Logger): DkimsignConfig {
  const fail = (e: unknown): never => {
    throw new StartupError(errText(e))
  }
  const aFlag = str(values, 'a')
  let algorithm: Algorithm | undefined
  if (aFlag !== undefined) {
    try {
      algorithm = parseAlgorithm(aFlag)
    } catch (e) {
      fail(e)
    }
  }
  let canonicalization: Canonicalization
  try {
    canonicalization = parseCanonicalization(str(values, 'c') ?? 'simple/simple')
  } catch (e) {
    return fail(e)
  }
  let headers: HeaderSpec[]
  try {
    headers = str(values, 'h') === undefined ? defaultHeaderList() : parseHeaderList(str(values, 'h')!)
  } catch (e) {
    return fail(e)
  }
  const longName = headers.find((h) => h.name.length > 997)
  if (longName) throw new StartupError(`-h: the header name "${longName.name.slice(0, 20)}…" is longer than a header line can be`)
  if (bool(values, 'oversign')) headers = withOversigning(headers, DEFAULT_OVERSIGN)
  const x = str(values, 'x')
  const expire = x === undefined ? undefined : parseExpire(x)
  const z = num(values, 'z') ?? 0
  const copyHeaders = (z >= 2 ? 2 : z) as 0 | 1 | 2 // the C filter takes -zzz as -zz

  const table = str(values, 'K')
  const seen = new Map<string, LoadedKey>()
  let mode: DkimsignConfig['mode']
  let domains: string[]
  let keys: KeyEntry[]
  if (table !== undefined) {
    const mixed = ['d', 'D', 'k', 's'].filter((f) => values[f] !== undefined)
    if (mixed.length > 0) throw new UsageError(`-K replaces ${mixed.map((f) => '-' + f).join(', ')}: give either -K or -d, -k and -s`)
    mode = 'table'
    domains = []
    keys = []
    for (const l of readKeyTable(table)) {
      const where = `${table}:${l.line}: `
      checkRecordName(l.selector, l.domain, where)
      if (!/^[\x21-\x3a\x3c-\x7e]+$/.test(l.domain) || !/^[\x21-\x3a\x3c-\x7e]+$/.test(l.selector)) throw new StartupError(`${where}bad domain or selector`)
      let k: LoadedKey
      try {
        k = loadKey(l.keyfile, algorithm, log, seen)
      } catch (e) {
        throw new StartupError(`${where}${errText(e)}`)
      }
      const domain = lowerAscii(l.domain.replace(/\.$/, ''))
      if (keys.some((e) => e.domain === domain && e.selector === l.selector)) throw new StartupError(`${where}${l.selector}._domainkey.${domain} is listed twice`)
      if (!domains.includes(domain)) domains.push(domain)
      keys.push({ domain, selector: l.selector, path: l.keyfile, algorithm: algorithmOf(k), key: k.key })
    }
  } else {
    domains = [...list(values, 'd')]
    for (const f of list(values, 'D')) domains.push(...readDomainFile(f))
    const keyfile = str(values, 'k')
    const selector = str(values, 's')
    if (domains.length === 0 || keyfile === undefined || selector === undefined) {
      throw new UsageError('-d domain (or -D file), -k keyfile and -s selector are required, or -K keytable')
    }
    for (const d of domains) {
      if (!/^[\x21-\x3a\x3c-\x7e]+$/.test(d)) throw new StartupError(`bad domain ${JSON.stringify(d)}`)
      checkRecordName(selector, d, '')
    }
    if (!/^[\x21-\x3a\x3c-\x7e]+$/.test(selector)) throw new StartupError(`bad selector ${JSON.stringify(selector)}`)
    mode = 'domains'
    const k = loadKey(keyfile, algorithm ?? 'rsa-sha256', log, seen)
    keys = domains.map((d) => ({ domain: d, selector, path: keyfile, algorithm: algorithmOf(k), key: k.key }))
  }
  const config: DkimsignConfig = {
    mode,
    domains,
    keys,
    canonicalization,
    headers,
    timestamp: bool(values, 't'),
    expire,
    copyHeaders,
    fallback: values.fallback === undefined ? mode === 'domains' : bool(values, 'fallback'),
    authOnly: bool(values, 'authOnly'),
    onError: (str(values, 'onError') ?? 'tempfail') as ErrorPolicy,
  }
  // Every spec through the engine once: anything it would refuse per message is refused now.
  try {
    const probe = new DkimSigner(
      mode === 'domains' ? signatureSpecs(config, keys) : keys.map((k) => specOf(config, k, [k.domain])),
      { maxLineBytes: ANSWER_LINE_MAX - answerPrefix('0'.repeat(16)) },
    )
    probe.line('From: probe@example.org')
    probe.line('')
    probe.finish()
  } catch (e) {
    fail(e)
  }
  return config
}

/** -checkDns: every (selector, domain) against its TXT record; returns the problems. */
export async function checkDns(config: DkimsignConfig, resolver: DnsResolver): Promise<{ name: string; problem: string; definite: boolean }[]> {
  const pairs = new Map<string, KeyEntry>()
  for (const k of config.keys) pairs.set(`${k.selector}._domainkey.${k.domain.replace(/\.$/, '')}`, k)
  const problems: { name: string; problem: string; definite: boolean }[] = []
  await Promise.all(
    [...pairs].map(async ([name, k]) => {
      const r = await resolver.txt(name)
      if (!r.ok) {
        const definite = r.error === 'nxdomain' || r.error === 'nodata'
        problems.push({ name, problem: definite ? 'no TXT record' : `DNS ${r.error}: ${r.message}`, definite })
        return
      }
      const c = checkPublishedKey(r.values, k.key)
      if (!c.ok) problems.push({ name, problem: c.reason, definite: true })
    }),
  )
  return problems.sort((a, b) => a.name.localeCompare(b.name))
}

async function build(values: FlagValues, _rest: string[], log: Logger): Promise<FilterDefinition<SessionState>> {
  const config = configFromFlags(values, log)
  const mode = str(values, 'checkDns')
  if (mode !== undefined) {
    const servers = list(values, 'nameserver')
    const resolver: DnsResolver = createResolver({ servers: servers.length > 0 ? servers : undefined, timeoutMs: 5000 })
    try {
      const problems = await checkDns(config, resolver)
      for (const p of problems) {
        log.warn({ record: p.name, problem: p.problem }, `DNS: ${p.name} does not publish the key: ${p.problem}`)
      }
      const fatal = problems.find((p) => p.definite)
      if (mode === 'strict' && fatal) throw new StartupError(`${fatal.name}: ${fatal.problem} (-checkDns strict)`)
      if (problems.length === 0) log.info({ records: config.keys.length }, 'DNS: every key is published')
    } finally {
      resolver.close()
    }
  }
  log.info(
    {
      mode: config.mode,
      domains: config.domains.length,
      keys: config.keys.map((k) => `${k.selector}._domainkey.${k.domain} ${k.algorithm}`).filter((v, i, a) => a.indexOf(v) === i).slice(0, 20),
    },
    'ready to sign',
  )
  return dkimsignFilter(config, log)
}

export const program: ProgramSpec = {
  program: 'filter-dkimsign',
  synopsis: '[-tz] [-a algorithm] [-c canonicalization] [-h headers] [-x seconds] (-d domain | -D file)... -k keyfile -s selector | -K keytable',
  flags: FLAGS,
  build,
}

