/**
 * smtpd-filters dkim-keygen -d domain -s selector [-a rsa|ed25519] [-b bits] [-k keyfile]
 *
 * Writes a new DKIM private key (PKCS#8 PEM, mode 0600, never over an existing file) and
 * prints the DNS record to publish at <selector>._domainkey.<domain>: as a BIND zone line
 * whose TXT data is split into character-strings of at most 255 bytes (RFC 1035 §3.3.14;
 * a 2048-bit RSA key's record is ~400 bytes, and one string of that size is what DNS
 * consoles and nsupdate refuse), then as the bare value for web consoles that split it
 * themselves, then the smtpd.conf line that uses the key.
 */

import { resolve } from 'node:path'

import { generateKey, publicKeyRecord, recordName, splitTxt, zoneLine, type KeyType } from '../lib/dkim/index.js'
import { parseFlags, usage, UsageError, type FlagSpec } from '../lib/flags.js'

const FLAGS: readonly FlagSpec[] = [
  { name: 'd', kind: 'string', arg: 'domain', help: 'the signing domain (d=)' },
  { name: 's', kind: 'string', arg: 'selector', help: 'the selector (s=); a new one for each new key, e.g. the date' },
  { name: 'a', kind: 'string', arg: 'algorithm', default: 'rsa', help: 'rsa or ed25519 (also rsa-sha256, ed25519-sha256); many verifiers still ignore ed25519: sign with both' },
  { name: 'b', kind: 'int', arg: 'bits', help: 'RSA key size, 1024 to 4096 (default 2048)' },
  { name: 'k', kind: 'string', arg: 'keyfile', help: 'where to write the private key (default ./<domain>.<selector>.key)' },
]

const SYNOPSIS = '-d domain -s selector [-a rsa|ed25519] [-b bits] [-k keyfile]'
const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/

function checkName(what: string, name: string): void {
  const labels = name.replace(/\.$/, '').split('.')
  if (labels.some((l) => !LABEL.test(l))) throw new UsageError(`${what} ${JSON.stringify(name)}: labels of letters, digits, "-" and "_", at most 63 each`)
}

export async function run(argv: string[]): Promise<number> {
  const prog = 'smtpd-filters dkim-keygen'
  let values
  try {
    const parsed = parseFlags(argv, FLAGS)
    if (parsed.rest.length > 0) throw new UsageError(`unexpected argument: ${parsed.rest[0]}`)
    values = parsed.values
    const domain = values.d as string | undefined
    const selector = values.s as string | undefined
    if (domain === undefined || selector === undefined) throw new UsageError('-d domain and -s selector are required')
    checkName('domain', domain)
    checkName('selector', selector)
    if (recordName(selector, domain).length > 254) throw new UsageError(`${recordName(selector, domain)} is longer than a DNS name can be`)
    const a = String(values.a)
    const type: KeyType | undefined = a === 'rsa' || a === 'rsa-sha256' ? 'rsa' : a === 'ed25519' || a === 'ed25519-sha256' ? 'ed25519' : undefined
    if (type === undefined) throw new UsageError(`-a ${a}: rsa or ed25519`)
    const bits = values.b as number | undefined
    if (bits !== undefined && type !== 'rsa') throw new UsageError('-b is for RSA keys (an Ed25519 key has no size to choose)')
    if (bits !== undefined && (bits < 1024 || bits > 4096)) throw new UsageError(`-b ${bits}: 1024 to 4096 (2048 is the usual choice; RFC 8301 forbids less than 1024)`)
    const path = resolve((values.k as string | undefined) ?? `${domain.replace(/\.$/, '')}.${selector}.key`)

    const key = generateKey(path, { type, bits }) // 0600, O_EXCL: refuses to overwrite
    const record = publicKeyRecord(key)
    const strings = splitTxt(record)
    const alg = type === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256'
    const out = process.stdout
    out.write(`; private key (${type === 'rsa' ? `RSA ${bits ?? 2048} bits` : 'Ed25519'}) written to ${path}, mode 0600:\n`)
    out.write(';   chown it to the user the filter runs as (smtpd runs filters as its own user unless "user" is given)\n')
    out.write(`; publish this record (${record.length} bytes${strings.length > 1 ? `, ${strings.length} strings of at most 255` : ''}) before signing with the key:\n`)
    out.write(`${zoneLine(selector, domain, record)}\n`)
    out.write(';\n; the same value in one piece, for DNS consoles that split long TXT values themselves:\n')
    out.write(`; ${recordName(selector, domain)}\n`)
    out.write(`${record}\n`)
    out.write(';\n; smtpd.conf:\n')
    out.write(`; filter "dkimsign" proc-exec "filter-dkimsign${alg === 'rsa-sha256' ? '' : ` -a ${alg}`} -c relaxed/relaxed -d ${domain.replace(/\.$/, '')} -s ${selector} -k ${path}"\n`)
    out.write(`;   or in a -K key table: ${domain.replace(/\.$/, '')} ${selector} ${path}\n`)
    return 0
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.help) {
        process.stderr.write(usage(prog, SYNOPSIS, FLAGS))
        return 0
      }
      process.stderr.write(`${prog}: ${err.message}\n${usage(prog, SYNOPSIS, FLAGS)}`)
      return 2
    }
    process.stderr.write(`${prog}: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  }
}
