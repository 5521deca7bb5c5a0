// Streaming DKIM signer (RFC 6376, RFC 8463): fed the message one line at a time, it parses the
// header once, hashes the body incrementally (one SHA-256 per body canonicalization, O(1)
// memory), and at the end returns one DKIM-Signature per SignatureSpec.
//
// Output is byte-identical to filter-dkimsign 0.5 for the same key, flags and message (checked
// against the installed binary by test/dkim-cfilter.test.ts), except where the C filter's own
// signature does not verify, or where it dies; there we do the correct thing instead:
//  1. smtpd < 7.4 cuts every filter answer line at 2047 bytes, so a message line longer than
//     1997 bytes (dot-stuffed) is delivered cut while the C filter hashed it whole: its body
//     hash (or header hash) fails. Option maxLineBytes hashes the line as it will be delivered.
//  2. With -c relaxed a bare CR inside a signed header becomes a space in the C filter's hash;
//     RFC 6376 §3.4.2 and both verifiers keep it (only SP and HTAB are WSP): it fails.
//  3. A message without From: gets h= without "from" (even "h=;"). RFC 6376 §5.4 makes "from"
//     in h= a MUST and §6.1.1 a PERMFAIL; python3-dkim and Mail::DKIM do not enforce it, so a
//     From: added later passes with them. We list "from" anyway (signing its absence).
//  4. With -z, a message with no empty line after the header gets no "; " after z=, so z=
//     swallows bh=: python3-dkim fails it. We always close z=.
//  5. -x so large that t + x passes 2^63-1: the C filter's saturation check is optimized away
//     (signed overflow) and it writes a negative x=, which both verifiers reject. We saturate.
// And where the C filter exits (smtpd then exits too) we sign normally:
//  6. -c relaxed, a signed field whose first line has an empty value ("Subject:") followed by
//     a continuation line of two or more WSP characters ("Missized header", exit 1).
//  7. A From: mailbox with an obs-route ("<@relay:a@example.org>") (NULL dereference, SIGSEGV).
// Not a signing difference but worth knowing: libopensmtpd drops a CR before the LF of every
// line it reads, so the C filter delivers a line that ended in a bare CR (client sent CR CR LF)
// without it; we hash lines exactly as given.

import { createHash, sign, type KeyObject } from 'node:crypto';

import { BodyHash, canonicalizeHeader, parseCanonicalization, type CanonAlgorithm, type Canonicalization } from './canon.js';
import { defaultHeaderList, fieldName, fromDomain, matchDomain, parseHeaderList, type HeaderSpec } from './header.js';
import { checkKeyType, type Algorithm } from './keys.js';
import { foldedLines, foldSignature, signatureText, zValue } from './signature.js';

export interface SignatureSpec {
  /** a=; default rsa-sha256. */
  algorithm?: Algorithm;
  /** Private key of the matching type. */
  key: KeyObject;
  /** s= */
  selector: string;
  /** -d domains: the From: domain is matched exactly, then by parents; else the first. */
  domains: readonly string[];
  /** c=; default simple/simple (the C filter's default). A string is parsed as -c. */
  canonicalization?: Canonicalization | string;
  /** Header fields to sign; default RFC 6376 §5.4.1's list. A string is parsed as -h. */
  headers?: readonly HeaderSpec[] | string;
  /** -t: add t= (signing time). */
  timestamp?: boolean;
  /** -x: add x= = signing time + this many seconds (saturating at 2^63-1). */
  expire?: number | bigint;
  /** -z (1): copy the signed header lines into z=; -zz (2): copy all header lines. */
  copyHeaders?: 0 | 1 | 2;
}

export interface SignerOptions {
  /**
   * The longest line, counted dot-stuffed as the filter writes it, that smtpd will deliver;
   * longer lines are hashed cut to that length (leading "." counted). For smtpd < 7.4 (protocol
   * < 0.7) set it to 2047 - "filter-dataline|<sid>|<tok>|".length (1997 with smtpd's 16-digit
   * ids); leave it undefined for 7.4 and later.
   */
  maxLineBytes?: number;
}

interface Field {
  /** Lower-cased name as -h matches it; null for a line that is not a field. */
  name: string | null;
  lines: string[];
}

interface Prepared {
  algorithm: Algorithm;
  key: KeyObject;
  selector: string;
  domains: readonly string[];
  canon: Canonicalization;
  headers: HeaderSpec[];
  names: Set<string>;
  timestamp: boolean;
  expire: bigint | undefined;
  copyHeaders: 0 | 1 | 2;
}

const INT64_MAX = (1n << 63n) - 1n;

function prepare(spec: SignatureSpec, index: number): Prepared {
  const algorithm = spec.algorithm ?? 'rsa-sha256';
  const what = `signature ${index + 1}`;
  checkKeyType(spec.key, algorithm, `${what}: key`);
  if (spec.domains.length === 0) throw new Error(`${what}: no domain`);
  if (!/^[\x21-\x3a\x3c-\x7e]+$/.test(spec.selector)) throw new Error(`${what}: bad selector`);
  for (const d of spec.domains) {
    if (!/^[\x21-\x3a\x3c-\x7e]+$/.test(d)) throw new Error(`${what}: bad domain ${JSON.stringify(d)}`);
  }
  const canon = typeof spec.canonicalization === 'string'
    ? parseCanonicalization(spec.canonicalization)
    : spec.canonicalization ?? { header: 'simple', body: 'simple' };
  const headers = typeof spec.headers === 'string'
    ? parseHeaderList(spec.headers)
    : spec.headers === undefined ? defaultHeaderList() : spec.headers.map((h) => ({ ...h }));
  if (!headers.some((h) => h.name === 'from')) throw new Error(`${what}: From header must be included`);
  let expire: bigint | undefined;
  if (spec.expire !== undefined) {
    expire = BigInt(spec.expire);
    if (expire < 1n || expire > INT64_MAX) throw new Error(`${what}: expire out of range`);
  }
  return {
    algorithm,
    key: spec.key,
    selector: spec.selector,
    domains: [...spec.domains],
    canon,
    headers,
    names: new Set(headers.map((h) => h.name)),
    timestamp: spec.timestamp ?? false,
    expire,
    copyHeaders: spec.copyHeaders ?? 0,
  };
}

/** The value of a canonicalized field: the text after its first colon. */
function valueOf(canonical: string): string {
  return canonical.slice(canonical.indexOf(':') + 1);
}

export class DkimSigner {
  private readonly specs: Prepared[];
  private readonly bodies = new Map<CanonAlgorithm, BodyHash>();
  private readonly fields: Field[] = [];
  private readonly maxLineBytes: number | undefined;
  private inHeader = true;
  private finished = false;

  /** Throws a one-line Error for an invalid spec (wrong key type, no domain, no From…). */
  constructor(specs: readonly SignatureSpec[], opts: SignerOptions = {}) {
    if (specs.length === 0) throw new Error('no signature to make');
    this.specs = specs.map(prepare);
    for (const s of this.specs) {
      if (!this.bodies.has(s.canon.body)) this.bodies.set(s.canon.body, new BodyHash(s.canon.body));
    }
    if (opts.maxLineBytes !== undefined && !(opts.maxLineBytes >= 2)) {
      throw new Error('maxLineBytes must be at least 2');
    }
    this.maxLineBytes = opts.maxLineBytes;
  }

  /** One message line: latin1, dot-unstuffed, without its line ending. */
  line(line: string): void {
    if (this.finished) throw new Error('DkimSigner: line after finish');
    const max = this.maxLineBytes;
    if (max !== undefined && line.length >= max) {
      // smtpd < 7.4 keeps the first max bytes of the dot-stuffed line, then un-stuffs it
      const cut = line.charCodeAt(0) === 0x2e ? max - 1 : max;
      if (line.length > cut) line = line.slice(0, cut);
    }
    if (!this.inHeader) {
      for (const b of this.bodies.values()) b.line(line);
      return;
    }
    if (line.length === 0) {
      this.inHeader = false;
      return;
    }
    const c = line.charCodeAt(0);
    const last = this.fields[this.fields.length - 1];
    if ((c === 0x20 || c === 0x09) && last !== undefined) last.lines.push(line);
    else this.fields.push({ name: c === 0x20 || c === 0x09 ? null : fieldName(line), lines: [line] });
  }

  /**
   * The DKIM-Signature fields, one per spec in order, as lines (the first starts with
   * "DKIM-Signature:", continuation lines with a TAB), to be emitted before the message.
   * `now` is the signing time in seconds (t=, x=).
   */
  finish(now: number = Math.floor(Date.now() / 1000)): string[] {
    const out: string[] = [];
    for (const u of this.unsignedFields(now)) out.push(...u.complete(sign(u.digestAlgorithm, u.input, u.key)));
    return out;
  }

  /**
   * The same as finish(), with the RSA private-key operations on libuv's thread pool
   * (crypto.sign with a callback): an RSA-2048 signature takes ~0.3 ms of CPU, during which
   * the filter's main thread goes on reading and answering other sessions. Same result.
   * Ed25519 signs inline: its ~35 µs cost less than the hand-off to a thread (~50 µs).
   */
  async finishAsync(now: number = Math.floor(Date.now() / 1000)): Promise<string[]> {
    const unsigned = this.unsignedFields(now);
    const signatures = await Promise.all(
      unsigned.map((u) =>
        u.digestAlgorithm === null
          ? sign(null, u.input, u.key)
          : new Promise<Buffer>((resolve, reject) => {
              sign(u.digestAlgorithm, u.input, u.key, (err, b) => (err ? reject(err) : resolve(b)));
            }),
      ),
    );
    const out: string[] = [];
    unsigned.forEach((u, i) => out.push(...u.complete(signatures[i]!)));
    return out;
  }

  private unsignedFields(now: number): UnsignedField[] {
    if (this.finished) throw new Error('DkimSigner: finish called twice');
    this.finished = true;
    const bodyHashes = new Map<CanonAlgorithm, string>();
    for (const [alg, b] of this.bodies) bodyHashes.set(alg, b.digest());
    return this.specs.map((s) => this.prepareOne(s, bodyHashes.get(s.canon.body)!, BigInt(now)));
  }

  private prepareOne(s: Prepared, bodyHash: string, now: bigint): UnsignedField {
    // Every occurrence of a listed field, bottom-up (RFC 6376 §5.4.2), as the C filter.
    const signed: { name: string; canonical: string }[] = [];
    const count = new Map<string, number>();
    let domain = s.domains[0]!;
    for (let i = this.fields.length - 1; i >= 0; i--) {
      const f = this.fields[i]!;
      if (f.name === null || !s.names.has(f.name)) continue;
      const canonical = canonicalizeHeader(s.canon.header, f.lines);
      signed.push({ name: f.name, canonical });
      count.set(f.name, (count.get(f.name) ?? 0) + 1);
      if (f.name === 'from') {
        // bottom-up, a later (higher) From: that matches wins: the C filter's choice
        const d = fromDomain(valueOf(canonical));
        const m = d === null ? null : matchDomain(d, s.domains);
        if (m !== null) domain = m;
      }
    }
    const h = signed.map((x) => x.name);
    for (const spec of s.headers) {
      const n = count.get(spec.name) ?? 0;
      if (spec.mode === 'always' || (spec.mode === 'present' && n > 0)) h.push(spec.name);
      else if (spec.name === 'from' && n === 0) h.push('from'); // see 3. above
    }

    let copied: string | undefined;
    if (s.copyHeaders > 0) {
      const lines: string[] = [];
      for (const f of this.fields) {
        if (s.copyHeaders === 2 || (f.name !== null && s.names.has(f.name))) lines.push(...f.lines);
      }
      copied = zValue(lines);
    }
    let expiration: bigint | undefined;
    if (s.expire !== undefined) expiration = now + s.expire > INT64_MAX ? INT64_MAX : now + s.expire;

    const unsigned = foldSignature(signatureText({
      algorithm: s.algorithm,
      canonicalization: `${s.canon.header}/${s.canon.body}`,
      selector: s.selector,
      copiedHeaders: copied,
      timestamp: s.timestamp ? now : undefined,
      expiration,
      bodyHash,
      headers: h,
      domain,
    }));

    let data = '';
    for (const x of signed) data += `${x.canonical}\r\n`;
    data += canonicalizeHeader(s.canon.header, foldedLines(unsigned));
    const input = Buffer.from(data, 'latin1');
    const rsa = s.algorithm === 'rsa-sha256';
    return {
      digestAlgorithm: rsa ? 'sha256' : null,
      // Ed25519 signs the SHA-256 of the canonical header data (RFC 8463 §3)
      input: rsa ? input : createHash('sha256').update(input).digest(),
      key: s.key,
      complete: (b: Buffer) => {
        const folded = foldSignature(`${unsigned}${b.toString('base64')}\r\n`);
        if (!folded.startsWith(unsigned)) throw new Error('DKIM-Signature folding changed the signed part');
        return foldedLines(folded);
      },
    };
  }
}

/** A DKIM-Signature field up to its b= value: what to sign, with what, and how to finish it. */
interface UnsignedField {
  readonly digestAlgorithm: 'sha256' | null;
  readonly input: Buffer;
  readonly key: KeyObject;
  /** The field's lines with the signature b= */
  readonly complete: (signature: Buffer) => string[];
}
