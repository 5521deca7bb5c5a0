// DKIM canonicalization (RFC 6376 §3.4) over latin1 lines (one char = one byte, no CRLF).

import { createHash, type Hash } from 'node:crypto';

export type CanonAlgorithm = 'simple' | 'relaxed';

export interface Canonicalization {
  header: CanonAlgorithm;
  body: CanonAlgorithm;
}

/**
 * Parse a c= / -c value: "simple" or "relaxed", optionally "/simple" or "/relaxed" for the
 * body; the header part alone means body "simple" (RFC 6376 §3.5, filter-dkimsign -c).
 */
export function parseCanonicalization(s: string): Canonicalization {
  const m = /^(simple|relaxed)(?:\/(simple|relaxed))?$/.exec(s);
  if (m === null) throw new Error(`Invalid canonicalization: ${s}`);
  return { header: m[1] as CanonAlgorithm, body: (m[2] ?? 'simple') as CanonAlgorithm };
}

export function formatCanonicalization(c: Canonicalization): string {
  return `${c.header}/${c.body}`;
}

/** §3.4.1 simple: the field exactly as it is, lines joined by CRLF (no final CRLF). */
export function simpleHeader(lines: readonly string[]): string {
  return lines.length === 1 ? lines[0]! : lines.join('\r\n');
}

/**
 * §3.4.2 relaxed: name lower-cased, field unfolded, each run of WSP (SP, HTAB) made one SP,
 * WSP removed at the end of the value and around the colon; no final CRLF.
 *
 * Only SP and HTAB are WSP. filter-dkimsign also turns a bare CR inside a header into a space,
 * which no verifier does, so its relaxed signature of such a field does not verify; we keep the
 * CR (see the list in signer.ts).
 */
export function relaxedHeader(lines: readonly string[]): string {
  const field = lines.length === 1 ? lines[0]! : lines.join('');
  const colon = field.indexOf(':');
  if (colon < 0) return field.replace(/[ \t]+/g, ' ').replace(/ $/, '');
  const name = field
    .slice(0, colon)
    .replace(/[ \t]+/g, ' ')
    .replace(/ $/, '')
    .replace(/[A-Z]+/g, (m) => m.toLowerCase());
  const value = field
    .slice(colon + 1)
    .replace(/[ \t]+/g, ' ')
    .replace(/^ /, '')
    .replace(/ $/, '');
  return `${name}:${value}`;
}

export function canonicalizeHeader(alg: CanonAlgorithm, lines: readonly string[]): string {
  return alg === 'simple' ? simpleHeader(lines) : relaxedHeader(lines);
}

const RELAXED_NEEDED = /\t| {2}| $/;

/** §3.4.4 relaxed body, one line: WSP runs become one SP, WSP at the end removed. */
export function relaxedBodyLine(line: string): string {
  if (!RELAXED_NEEDED.test(line)) return line;
  line = line.replace(/[ \t]+/g, ' ');
  return line.charCodeAt(line.length - 1) === 0x20 ? line.slice(0, -1) : line;
}

const CHUNK = 16 * 1024;

/**
 * Incremental SHA-256 body hash for one body canonicalization (§3.4.3 / §3.4.4). Fed one line
 * at a time (without its CRLF); empty lines are only counted until a non-empty line follows,
 * so trailing empty lines are ignored; memory is O(1) in the body size. Bytes are gathered in
 * a 16 KiB buffer so the hash sees few large updates.
 */
export class BodyHash {
  private readonly hash: Hash = createHash('sha256');
  private readonly buf = Buffer.allocUnsafe(CHUNK);
  private used = 0;
  private emptyLines = 0;
  private nonEmpty = false;
  private bytes = 0;

  constructor(readonly algorithm: CanonAlgorithm) {}

  line(line: string): void {
    if (this.algorithm === 'relaxed') {
      this.relaxedLine(line);
      return;
    }
    if (line.length === 0) {
      this.emptyLines++;
      return;
    }
    this.emitEmptyLines();
    const n = line.length;
    if (n + 2 > CHUNK - this.used) {
      this.flush();
      if (n + 2 > CHUNK) {
        this.put(line);
        this.put('\r\n');
        return;
      }
    }
    // a JS loop beats Buffer.write for short lines (no native call per line)
    const buf = this.buf;
    let w = this.used;
    for (let i = 0; i < n; i++) buf[w++] = line.charCodeAt(i);
    buf[w++] = 0x0d;
    buf[w++] = 0x0a;
    this.used = w;
  }

  /** The base64 digest (bh=). simple: an empty body is one CRLF; relaxed: it is empty. */
  digest(): string {
    if (this.algorithm === 'simple' && !this.nonEmpty) this.put('\r\n');
    this.flush();
    return this.hash.digest('base64');
  }

  /** Canonical body bytes hashed so far (for tests and statistics). */
  get length(): number {
    return this.bytes + this.used;
  }

  private emitEmptyLines(): void {
    for (; this.emptyLines > 0; this.emptyLines--) this.put('\r\n');
    this.nonEmpty = true;
  }

  /** §3.4.4 written straight into the buffer, byte by byte: no intermediate string. */
  private relaxedLine(line: string): void {
    let end = line.length;
    while (end > 0 && (line.charCodeAt(end - 1) === 0x20 || line.charCodeAt(end - 1) === 0x09)) end--;
    if (end === 0) {
      this.emptyLines++;
      return;
    }
    this.emitEmptyLines();
    if (end + 2 > CHUNK - this.used) {
      this.flush();
      if (end + 2 > CHUNK) {
        this.put(relaxedBodyLine(line));
        this.put('\r\n');
        return;
      }
    }
    const buf = this.buf;
    let w = this.used;
    let wsp = false;
    for (let i = 0; i < end; i++) {
      const c = line.charCodeAt(i);
      if (c === 0x20 || c === 0x09) {
        wsp = true;
        continue;
      }
      if (wsp) {
        buf[w++] = 0x20;
        wsp = false;
      }
      buf[w++] = c;
    }
    buf[w++] = 0x0d;
    buf[w++] = 0x0a;
    this.used = w;
  }

  private put(s: string): void {
    if (s.length > CHUNK - this.used) {
      this.flush();
      if (s.length > CHUNK) {
        this.hash.update(s, 'latin1');
        this.bytes += s.length;
        return;
      }
    }
    this.used += this.buf.write(s, this.used, 'latin1');
  }

  private flush(): void {
    if (this.used === 0) return;
    this.hash.update(this.buf.subarray(0, this.used));
    this.bytes += this.used;
    this.used = 0;
  }
}
