// Charset decoding for message text (RFC 2045 charset parameter, RFC 2047 encoded words).
//
// Node is built with full ICU here, so TextDecoder knows every WHATWG label (big5, gb18030,
// iso-2022-jp, koi8-r, windows-125x, ...). Mail in the wild lies about charsets, so the rules
// are: a declared, known charset is used; a declared "us-ascii" over 8-bit bytes, an absent or
// unknown label, or "utf-8" over bytes that are not UTF-8 fall back to UTF-8 when the bytes
// are valid UTF-8, else to windows-1252 (what every MUA does for "latin-1" mail). Each
// fallback is reported so the rules can score charset oddities.

export interface Decoder {
  readonly encoding: string;
  decode(bytes: Uint8Array): string;
}

// windows-1252 by hand: Node 20's TextDecoder('windows-1252') (and so 'iso-8859-1',
// 'latin1', 'us-ascii', which WHATWG maps to it) drops the bytes 0x80-0x9F instead of
// mapping them to € ‚ ƒ „ … † ‡ ˆ ‰ Š ‹ Œ Ž ‘ ’ “ ” • – — ˜ ™ š › œ ž Ÿ.
const CP1252_HIGH =
  '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f' +
  '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';

const cp1252: Decoder = {
  encoding: 'windows-1252',
  decode(bytes: Uint8Array): string {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const s = buf.toString('latin1');
    // eslint-disable-next-line no-control-regex
    return /[\x80-\x9f]/.test(s) ? s.replace(/[\x80-\x9f]/g, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80]!) : s;
  },
};

const decoders = new Map<string, Decoder | null>();
const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/** Labels seen in mail that WHATWG does not know, mapped to what they mean. */
const ALIASES: Record<string, string> = {
  'ascii': 'windows-1252',
  'us': 'windows-1252',
  'ansi_x3.4-1968': 'windows-1252',
  'iso8859-1': 'iso-8859-1',
  'iso_8859_1': 'iso-8859-1',
  'latin-1': 'iso-8859-1',
  'iso-8859-8-i': 'iso-8859-8-i',
  'ks_c_5601-1987': 'euc-kr',
  'ks_c_5601': 'euc-kr',
  'x-sjis': 'shift_jis',
  'x-gbk': 'gbk',
  'gb2312-80': 'gb2312',
  'cp936': 'gbk',
  'x-euc-tw': 'big5',
  'big5-hkscs': 'big5',
  'utf8': 'utf-8',
  'unicode-1-1-utf-8': 'utf-8',
  'x-unknown': '',
  'unknown-8bit': '',
  'x-user-defined': '',
  'default': '',
};

export function decoderFor(label: string | undefined): Decoder | null {
  if (!label) return null;
  let l = label.trim().toLowerCase().replace(/^["']|["']$/g, '');
  if (l in ALIASES) l = ALIASES[l]!;
  if (!l) return null;
  let d = decoders.get(l);
  if (d !== undefined) return d;
  try {
    const td = new TextDecoder(l);
    d = td.encoding === 'windows-1252' ? cp1252 : td;
  } catch {
    d = null;
  }
  if (decoders.size < 256) decoders.set(l, d);
  return d;
}

/** True when every byte is < 0x80. */
export function isAscii(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80) return false;
  return true;
}

export interface DecodeResult {
  text: string;
  /** The charset actually used. */
  used: string;
  /** Why the declared charset was not used as is, if it was not. */
  oddity?: 'unknown-charset' | 'undeclared-8bit' | 'ascii-8bit' | 'invalid-utf8';
}

function guess(bytes: Uint8Array): { text: string; used: string } {
  try {
    return { text: utf8Fatal.decode(bytes), used: 'utf-8' };
  } catch {
    return { text: cp1252.decode(bytes), used: 'windows-1252' };
  }
}

export function decodeBytes(bytes: Uint8Array, declared: string | undefined): DecodeResult {
  const ascii = isAscii(bytes);
  if (ascii) {
    // Pure ASCII decodes the same under every ASCII-compatible charset; only the 7-bit
    // stateful or UTF-16/7 encodings need their decoder.
    const d = declared ? decoderFor(declared) : null;
    if (d && /^(utf-16|iso-2022|utf-7|hz)/.test(d.encoding)) return { text: d.decode(bytes), used: d.encoding };
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
    if (declared && !d) return { text, used: 'us-ascii', oddity: 'unknown-charset' };
    return { text, used: 'us-ascii' };
  }
  if (!declared) {
    const g = guess(bytes);
    return { ...g, oddity: 'undeclared-8bit' };
  }
  const d = decoderFor(declared);
  if (!d) {
    const g = guess(bytes);
    return { ...g, oddity: 'unknown-charset' };
  }
  const l = declared.trim().toLowerCase();
  if (l === 'us-ascii' || l === 'ascii' || l === 'us') {
    const g = guess(bytes);
    return { ...g, oddity: 'ascii-8bit' };
  }
  if (d.encoding === 'utf-8') {
    try {
      return { text: utf8Fatal.decode(bytes), used: 'utf-8' };
    } catch {
      return { text: cp1252.decode(bytes), used: 'windows-1252', oddity: 'invalid-utf8' };
    }
  }
  return { text: d.decode(bytes), used: d.encoding };
}

/** Decode a latin1 string (one char = one byte) that holds raw header bytes. */
export function decodeRawHeader(raw: string): string {
  // Fast path: nothing 8-bit.
  // eslint-disable-next-line no-control-regex
  if (!/[\x80-\xff]/.test(raw)) return raw;
  const bytes = Buffer.from(raw, 'latin1');
  return guess(bytes).text;
}
