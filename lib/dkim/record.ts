// The DKIM key record in DNS (RFC 6376 §3.6.1, RFC 8463 for Ed25519): make it from a key,
// render it for a zone file, and check that a published record carries our key.

import { createPublicKey, type KeyObject } from 'node:crypto';

function publicOf(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key;
}

/** The p= value: base64 SubjectPublicKeyInfo for RSA, the raw 32-byte key for Ed25519. */
export function publicKeyData(key: KeyObject): string {
  const pub = publicOf(key);
  if (pub.asymmetricKeyType === 'ed25519') {
    const x = (pub.export({ format: 'jwk' }) as { x?: string }).x;
    if (x === undefined) throw new Error('ed25519 key without public part');
    return Buffer.from(x, 'base64url').toString('base64');
  }
  if (pub.asymmetricKeyType === 'rsa') {
    return (pub.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64');
  }
  throw new Error(`unsupported key type ${pub.asymmetricKeyType ?? '?'}`);
}

/** The TXT record value to publish at <selector>._domainkey.<domain>. */
export function publicKeyRecord(key: KeyObject): string {
  const type = publicOf(key).asymmetricKeyType;
  return `v=DKIM1; k=${type === 'ed25519' ? 'ed25519' : 'rsa'}; p=${publicKeyData(key)}`;
}

/** Split a TXT value into character-strings of at most `max` (255) bytes (RFC 1035 §3.3.14). */
export function splitTxt(value: string, max = 255): string[] {
  if (value === '') return [''];
  const out: string[] = [];
  for (let i = 0; i < value.length; i += max) out.push(value.slice(i, i + max));
  return out;
}

function quoteTxt(s: string): string {
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** The record's owner name, fully qualified: "<selector>._domainkey.<domain>." */
export function recordName(selector: string, domain: string): string {
  return `${selector}._domainkey.${domain.endsWith('.') ? domain : `${domain}.`}`;
}

/** A BIND zone-file line: `sel._domainkey.example.org. IN TXT ( "v=DKIM1; k=rsa; p=…" "…" )` */
export function zoneLine(selector: string, domain: string, value: string): string {
  return `${recordName(selector, domain)} IN TXT ( ${splitTxt(value).map(quoteTxt).join(' ')} )`;
}

/** RFC 6376 §3.2 tag=value list; tag names are case-sensitive, FWS around tags and values ignored.
 * Returns null when the text is not a tag list (or repeats a tag). */
export function parseTagList(text: string): Map<string, string> | null {
  const tags = new Map<string, string>();
  const parts = text.split(';');
  if (parts.length > 1 && parts[parts.length - 1]!.trim() === '') parts.pop();
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq < 0) return null;
    const name = part.slice(0, eq).replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(name) || tags.has(name)) return null;
    tags.set(name, part.slice(eq + 1).replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, ''));
  }
  return tags;
}

export interface PublishedKeyCheck {
  ok: boolean;
  /** Why not, in one line (empty when ok). */
  reason: string;
}

function samePublicKey(p: string, key: KeyObject): boolean {
  const pub = publicOf(key);
  if (pub.asymmetricKeyType === 'ed25519') return p === publicKeyData(pub);
  const der = Buffer.from(p, 'base64');
  const ours = pub.export({ type: 'spki', format: 'der' }) as Buffer;
  if (der.equals(ours)) return true;
  try {
    // some publish the bare RSAPublicKey (PKCS#1) instead of SubjectPublicKeyInfo
    const theirs = createPublicKey({ key: der, format: 'der', type: 'pkcs1' });
    return (theirs.export({ type: 'spki', format: 'der' }) as Buffer).equals(ours);
  } catch {
    return false;
  }
}

/**
 * Check TXT data fetched from DNS for <selector>._domainkey.<domain> against our key: one
 * record, v=DKIM1 if present, k= (default rsa) matching the key type, h= allowing sha256 if
 * present, s= allowing email if present, and p= (white space ignored) equal to our public key.
 * `txt` is what dns.resolveTxt gives (records of character-strings) or record strings.
 */
export function checkPublishedKey(
  txt: string | readonly string[] | readonly (readonly string[])[],
  key: KeyObject,
): PublishedKeyCheck {
  const records = typeof txt === 'string'
    ? [txt]
    : txt.map((r) => (typeof r === 'string' ? r : r.join('')));
  const no = (reason: string): PublishedKeyCheck => ({ ok: false, reason });
  if (records.length === 0) return no('no TXT record');
  if (records.length > 1) return no(`${records.length} TXT records; verifiers may pick any`);
  const tags = parseTagList(records[0]!);
  if (tags === null) return no('TXT record is not a DKIM tag list');
  const v = tags.get('v');
  if (v !== undefined && v !== 'DKIM1') return no(`v=${v}, not DKIM1`);
  const type = publicOf(key).asymmetricKeyType === 'ed25519' ? 'ed25519' : 'rsa';
  const k = tags.get('k') ?? 'rsa';
  if (k !== type) return no(`k=${k} but our key is ${type}`);
  const h = tags.get('h');
  if (h !== undefined && !h.split(':').map((x) => x.trim()).includes('sha256')) {
    return no(`h=${h} does not allow sha256`);
  }
  const s = tags.get('s');
  if (s !== undefined && !s.split(':').map((x) => x.trim()).some((x) => x === '*' || x === 'email')) {
    return no(`s=${s} does not allow email`);
  }
  const p = tags.get('p');
  if (p === undefined) return no('no p= tag');
  const data = p.replace(/[ \t\r\n]+/g, '');
  if (data === '') return no('key revoked (empty p=)');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data)) return no('p= is not base64');
  if (!samePublicKey(data, key)) return no('p= is a different public key');
  return { ok: true, reason: '' };
}
