// A tolerant MIME parser for scoring (RFC 5322 header fields, RFC 2045/2046 entities,
// RFC 2047 encoded words, RFC 2231 parameters). It never throws on malformed input: spam is
// malformed on purpose, so every deviation is recorded in `anomalies` for the rules instead.
//
// Input is the raw message as bytes. It is read as a latin1 string (one char = one byte),
// decoded per part (base64, quoted-printable) and only then turned into text with the part's
// charset (lib/spam/charset.ts).

import { decodeBytes, decodeRawHeader, decoderFor } from './charset.js';

export interface HeaderField {
  /** Field name as written. */
  name: string;
  /** Lower-cased field name. */
  lname: string;
  /** Unfolded raw value (latin1, CR/LF removed, leading whitespace trimmed). */
  raw: string;
}

export interface MimePart {
  headers: HeaderField[];
  /** Lower-cased "type/subtype"; text/plain when absent (RFC 2045 §5.2). */
  type: string;
  params: Record<string, string>;
  /** Declared charset, lower-cased, if any. */
  charset?: string;
  /** Lower-cased Content-Transfer-Encoding ("7bit" when absent). */
  encoding: string;
  /** Lower-cased disposition type ("inline", "attachment") if present. */
  disposition?: string;
  filename?: string;
  /** Decoded text for text/* parts. */
  text?: string;
  /** Charset actually used to decode `text`. */
  textCharset?: string;
  /** Length of the decoded body in bytes (leaves only). */
  size: number;
  children: MimePart[];
  depth: number;
}

export type Anomaly =
  | 'missing-boundary'      // multipart without (usable) boundary parameter
  | 'unclosed-multipart'    // no closing delimiter
  | 'qp-long-line'          // quoted-printable line over 76 chars (RFC 2045 §6.7 rule 5)
  | 'bad-base64'            // characters outside the base64 alphabet
  | 'unknown-charset'
  | 'undeclared-8bit'       // 8-bit text with no charset
  | 'ascii-8bit'            // 8-bit text declared us-ascii
  | 'invalid-utf8'          // declared utf-8, is not
  | 'raw-8bit-header'       // unencoded 8-bit bytes in a header field
  | 'bad-encoded-word'      // RFC 2047 word with unknown charset or bad encoding
  | 'too-deep'              // MIME nesting beyond the limit
  | 'too-many-parts'
  | 'no-header-end';        // header block not terminated by an empty line

export interface ParsedMessage {
  headers: HeaderField[];
  root: MimePart;
  /** Non-multipart parts in document order (including parts of attached messages). */
  leaves: MimePart[];
  anomalies: Set<Anomaly>;
  /** Offset of the body in the input (after the mbox line, if any). */
  bodyOffset: number;
  /** True when the input began with an mbox "From " line (skipped). */
  mboxFrom: boolean;
}

const MAX_DEPTH = 20;
const MAX_PARTS = 500;

interface Ctx {
  s: string;
  anomalies: Set<Anomaly>;
  leaves: MimePart[];
  parts: number;
}

/** Parse header fields from s[start..end). Returns the fields and the body offset. */
export function parseHeaderBlock(s: string, start: number, end: number, anomalies?: Set<Anomaly>): { headers: HeaderField[]; body: number } {
  const headers: HeaderField[] = [];
  let pos = start;
  let cur: { name: string; parts: string[] } | null = null;
  const flush = () => {
    if (!cur) return;
    let raw = cur.parts.length === 1 ? cur.parts[0]! : cur.parts.join('');
    raw = raw.trim();
    headers.push({ name: cur.name, lname: cur.name.toLowerCase(), raw });
    cur = null;
  };
  while (pos < end) {
    let nl = s.indexOf('\n', pos);
    if (nl < 0 || nl >= end) nl = end;
    let lineEnd = nl;
    if (lineEnd > pos && s.charCodeAt(lineEnd - 1) === 13) lineEnd--;
    if (lineEnd === pos) {
      // Empty line: end of the header block.
      flush();
      return { headers, body: Math.min(nl + 1, end) };
    }
    const c = s.charCodeAt(pos);
    if ((c === 32 || c === 9) && cur) {
      (cur as { parts: string[] }).parts.push(s.slice(pos, lineEnd));
    } else {
      const colon = s.indexOf(':', pos);
      // A field name is printable ASCII without spaces (RFC 5322 §3.6.8); tolerate
      // "Name :" (obsolete syntax) but not lines without a colon.
      if (colon < 0 || colon >= lineEnd || !/^[!-9;-~]+[ \t]*$/.test(s.slice(pos, colon))) {
        // Not a header line: the body starts here (the header block had no empty line).
        flush();
        anomalies?.add('no-header-end');
        return { headers, body: pos };
      }
      flush();
      cur = { name: s.slice(pos, colon).trimEnd(), parts: [s.slice(colon + 1, lineEnd)] };
    }
    pos = nl + 1;
  }
  flush();
  return { headers, body: end };
}

export interface ParsedValue {
  value: string;
  params: Record<string, string>;
}

/** Parse "value; a=b; c*=utf-8''x%20y" (RFC 2045 §5.1, RFC 2231). Keys lower-cased. */
export function parseParams(raw: string): ParsedValue {
  const semi = raw.indexOf(';');
  const value = (semi < 0 ? raw : raw.slice(0, semi)).trim().replace(/\s+/g, '').toLowerCase();
  const params: Record<string, string> = {};
  if (semi < 0) return { value, params };
  const cont = new Map<string, { charset?: string; pieces: { n: number; v: string; enc: boolean }[] }>();
  const re = /;?\s*([^\s=;"]+)\s*=\s*("((?:[^"\\]|\\.)*)"?|[^;]*)/g;
  const rest = raw.slice(semi);
  let m: RegExpExecArray | null;
  while ((m = re.exec(rest)) !== null) {
    const key = m[1]!.toLowerCase();
    let v = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2]!.trim();
    const ext = /^([^*]+)(?:\*(\d+))?(\*)?$/.exec(key);
    if (ext && (ext[2] !== undefined || ext[3])) {
      const base = ext[1]!;
      const n = ext[2] !== undefined ? Number(ext[2]) : 0;
      const enc = !!ext[3];
      let entry = cont.get(base);
      if (!entry) cont.set(base, (entry = { pieces: [] }));
      if (enc && n === 0) {
        const q1 = v.indexOf("'");
        const q2 = q1 >= 0 ? v.indexOf("'", q1 + 1) : -1;
        if (q2 > 0) {
          entry.charset = v.slice(0, q1);
          v = v.slice(q2 + 1);
        }
      }
      entry.pieces.push({ n, v, enc });
    } else if (!(key in params)) {
      params[key] = v;
    }
  }
  for (const [base, entry] of cont) {
    entry.pieces.sort((a, b) => a.n - b.n);
    const bytes: number[] = [];
    for (const p of entry.pieces) {
      if (p.enc) {
        for (let i = 0; i < p.v.length; i++) {
          const ch = p.v.charCodeAt(i);
          if (ch === 37 && /^[0-9a-fA-F]{2}$/.test(p.v.slice(i + 1, i + 3))) {
            bytes.push(parseInt(p.v.slice(i + 1, i + 3), 16));
            i += 2;
          } else bytes.push(ch & 0xff);
        }
      } else for (let i = 0; i < p.v.length; i++) bytes.push(p.v.charCodeAt(i) & 0xff);
    }
    params[base] = decodeBytes(Uint8Array.from(bytes), entry.charset || 'utf-8').text;
  }
  return { value, params };
}

/** Decode RFC 2047 encoded words in a raw (latin1) header value; raw 8-bit bytes are
 *  decoded as UTF-8 when valid, else windows-1252. */
export function decodeHeader(raw: string, anomalies?: Set<Anomaly>): string {
  if (anomalies && /[\x80-\xff]/.test(raw)) anomalies.add('raw-8bit-header');
  if (raw.indexOf('=?') < 0) return decodeRawHeader(raw);
  // Whitespace between adjacent encoded words is dropped (RFC 2047 §6.2).
  const re = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;
  let out = '';
  let last = 0;
  let prevWasWord = false;
  let m: RegExpExecArray | null;
  while ((m = re.exec(raw)) !== null) {
    const between = raw.slice(last, m.index);
    if (!(prevWasWord && /^\s*$/.test(between))) out += decodeRawHeader(between);
    let charset = m[1]!;
    const star = charset.indexOf('*'); // RFC 2231 language suffix
    if (star >= 0) charset = charset.slice(0, star);
    const enc = m[2]!.toLowerCase();
    let bytes: Buffer;
    if (enc === 'b') {
      if (anomalies && /[^A-Za-z0-9+/=]/.test(m[3]!)) anomalies.add('bad-encoded-word');
      bytes = Buffer.from(m[3]!, 'base64');
    } else {
      bytes = Buffer.from(
        m[3]!.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
        'latin1',
      );
    }
    if (anomalies && !decoderFor(charset)) anomalies.add('bad-encoded-word');
    out += decodeBytes(bytes, charset).text;
    last = m.index + m[0].length;
    prevWasWord = true;
  }
  out += decodeRawHeader(raw.slice(last));
  return out;
}

/** Quoted-printable decoding (RFC 2045 §6.7), tolerant of bad escapes. */
export function decodeQP(s: string): { bytes: Buffer; longLine: boolean } {
  let longLine = false;
  // Line length check on the encoded form (rule 5: at most 76 chars).
  let p = 0;
  while (p < s.length) {
    let nl = s.indexOf('\n', p);
    if (nl < 0) nl = s.length;
    let len = nl - p;
    if (len > 0 && s.charCodeAt(nl - 1) === 13) len--;
    if (len > 78) {
      longLine = true;
      break;
    }
    p = nl + 1;
  }
  const out = s.replace(/=(?:[ \t]*\r?\n|([0-9A-Fa-f]{2}))/g, (_m, h: string | undefined) =>
    h ? String.fromCharCode(parseInt(h, 16)) : '',
  );
  return { bytes: Buffer.from(out, 'latin1'), longLine };
}

function decodeBody(ctx: Ctx, encoding: string, start: number, end: number): Buffer {
  const s = ctx.s;
  if (encoding === 'base64') {
    const body = s.slice(start, end);
    // Node's decoder skips whitespace; note other junk (often a sign of hand-made MIME).
    if (/[^A-Za-z0-9+/=\s]/.test(body)) ctx.anomalies.add('bad-base64');
    return Buffer.from(body, 'base64');
  }
  if (encoding === 'quoted-printable') {
    const r = decodeQP(s.slice(start, end));
    if (r.longLine) ctx.anomalies.add('qp-long-line');
    return r.bytes;
  }
  return Buffer.from(s.slice(start, end), 'latin1');
}

function headerValue(headers: HeaderField[], lname: string): string | undefined {
  for (const h of headers) if (h.lname === lname) return h.raw;
  return undefined;
}

function parseEntity(ctx: Ctx, start: number, end: number, depth: number, defaultType: string): MimePart {
  ctx.parts++;
  const { headers, body } = parseHeaderBlock(ctx.s, start, end, depth === 0 ? undefined : ctx.anomalies);
  return parseEntityBody(ctx, headers, body, end, depth, defaultType);
}

function parseEntityBody(ctx: Ctx, headers: HeaderField[], body: number, end: number, depth: number, defaultType: string): MimePart {
  const ctRaw = headerValue(headers, 'content-type');
  let type = defaultType;
  let params: Record<string, string> = {};
  if (ctRaw !== undefined) {
    const p = parseParams(ctRaw);
    if (/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(p.value)) type = p.value;
    params = p.params;
  }
  const cte = (headerValue(headers, 'content-transfer-encoding') ?? '7bit').trim().toLowerCase().replace(/[^a-z0-9-].*$/, '') || '7bit';
  const part: MimePart = { headers, type, params, encoding: cte, size: 0, children: [], depth };
  if (params['charset']) part.charset = params['charset'].toLowerCase();
  const cd = headerValue(headers, 'content-disposition');
  let filename: string | undefined;
  if (cd !== undefined) {
    const p = parseParams(cd);
    if (p.value) part.disposition = p.value;
    filename = p.params['filename'];
  }
  filename ??= params['name'];
  if (filename !== undefined) part.filename = decodeHeader(filename);

  if (type.startsWith('multipart/')) {
    const boundary = params['boundary'];
    if (!boundary) {
      ctx.anomalies.add('missing-boundary');
      return leaf(ctx, part, body, end, 'text/plain');
    }
    if (depth >= MAX_DEPTH) {
      ctx.anomalies.add('too-deep');
      return part;
    }
    splitMultipart(ctx, part, boundary, body, end, depth, type === 'multipart/digest' ? 'message/rfc822' : 'text/plain');
    return part;
  }
  if (type === 'message/rfc822' || type === 'message/global') {
    if (depth >= MAX_DEPTH) {
      ctx.anomalies.add('too-deep');
      return part;
    }
    if (cte === 'base64' || cte === 'quoted-printable') {
      // Encoded attached message: decode into a new string and parse it separately.
      const bytes = decodeBody(ctx, cte, body, end);
      const inner = parseMessageBytes(bytes, ctx, depth + 1);
      part.children.push(inner);
      return part;
    }
    part.children.push(parseEntity(ctx, body, end, depth + 1, 'text/plain'));
    return part;
  }
  return leaf(ctx, part, body, end, type);
}

function leaf(ctx: Ctx, part: MimePart, body: number, end: number, type: string): MimePart {
  part.type = type;
  const bytes = decodeBody(ctx, part.encoding, body, end);
  part.size = bytes.length;
  if (type.startsWith('text/') && !(part.disposition === 'attachment' && part.filename && !/\.(txt|html?)$/i.test(part.filename))) {
    const r = decodeBytes(bytes, part.charset);
    part.text = r.text;
    part.textCharset = r.used;
    if (r.oddity) ctx.anomalies.add(r.oddity);
  }
  ctx.leaves.push(part);
  return part;
}

function splitMultipart(ctx: Ctx, part: MimePart, boundary: string, body: number, end: number, depth: number, childDefault: string): void {
  const s = ctx.s;
  const delim = '--' + boundary;
  const starts: number[] = []; // offsets of delimiter lines
  let closed = -1;
  let pos = body;
  while (pos < end) {
    const i = s.indexOf(delim, pos);
    if (i < 0 || i >= end) break;
    pos = i + delim.length;
    if (i !== body && s.charCodeAt(i - 1) !== 10) continue; // not at a line start
    const after = i + delim.length;
    const c = after < end ? s.charCodeAt(after) : 10;
    const isClose = c === 45 && s.charCodeAt(after + 1) === 45;
    // The delimiter must be the whole line (RFC 2046 §5.1.1 allows trailing whitespace);
    // a longer token is a different (nested) boundary that shares our prefix.
    if (!isClose && c !== 10 && c !== 13 && c !== 32 && c !== 9) continue;
    if (isClose) {
      closed = i;
      break;
    }
    starts.push(i);
  }
  if (closed < 0) ctx.anomalies.add('unclosed-multipart');
  if (starts.length === 0) {
    // No delimiter at all: treat the body as text so its words still count.
    ctx.anomalies.add('missing-boundary');
    leaf(ctx, part, body, end, 'text/plain');
    part.type = 'multipart/mixed';
    return;
  }
  const stop = closed >= 0 ? closed : end;
  for (let k = 0; k < starts.length; k++) {
    if (ctx.parts >= MAX_PARTS) {
      ctx.anomalies.add('too-many-parts');
      break;
    }
    let a = s.indexOf('\n', starts[k]!);
    a = a < 0 ? stop : a + 1;
    let b = k + 1 < starts.length ? starts[k + 1]! : stop;
    // The line break before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
    if (b > a && s.charCodeAt(b - 1) === 10) b--;
    if (b > a && s.charCodeAt(b - 1) === 13) b--;
    if (b < a) b = a;
    part.children.push(parseEntity(ctx, a, b, depth + 1, childDefault));
  }
}

function parseMessageBytes(bytes: Buffer, parent: Ctx, depth: number): MimePart {
  const ctx: Ctx = { s: bytes.toString('latin1'), anomalies: parent.anomalies, leaves: parent.leaves, parts: parent.parts };
  const p = parseEntity(ctx, 0, ctx.s.length, depth, 'text/plain');
  parent.parts = ctx.parts;
  return p;
}

/** Parse a whole message. `input` is raw bytes or a latin1 string. */
export function parseMessage(input: Buffer | string): ParsedMessage {
  const s = typeof input === 'string' ? input : input.toString('latin1');
  const anomalies = new Set<Anomaly>();
  let start = 0;
  let mboxFrom = false;
  // mbox separator ("From sender date") written by mbox tools and kept in many corpora.
  if (s.startsWith('From ')) {
    const nl = s.indexOf('\n');
    const first = s.slice(0, nl < 0 ? s.length : nl);
    if (!/^From [^\s:]+:/.test(first) && !/^From:/.test(first)) {
      start = nl < 0 ? s.length : nl + 1;
      mboxFrom = true;
    }
  }
  const ctx: Ctx = { s, anomalies, leaves: [], parts: 1 };
  const { headers, body } = parseHeaderBlock(s, start, s.length, anomalies);
  const root = parseEntityBody(ctx, headers, body, s.length, 0, 'text/plain');
  return { headers, root, leaves: ctx.leaves, anomalies, bodyOffset: body, mboxFrom };
}

/** First header field value (decoded), or undefined. */
export function getHeader(msg: { headers: HeaderField[] }, lname: string): string | undefined {
  const v = headerValue(msg.headers, lname);
  return v === undefined ? undefined : decodeHeader(v);
}

export function getHeaders(msg: { headers: HeaderField[] }, lname: string): HeaderField[] {
  return msg.headers.filter((h) => h.lname === lname);
}

/** Only the header fields of a message (fast: the body is not parsed). */
export function headerFields(input: Buffer | string, limit = 256 * 1024): HeaderField[] {
  const s = typeof input === 'string' ? input.slice(0, limit) : input.subarray(0, limit).toString('latin1');
  let start = 0;
  if (s.startsWith('From ') && !/^From:/.test(s)) {
    const nl = s.indexOf('\n');
    start = nl < 0 ? s.length : nl + 1;
  }
  return parseHeaderBlock(s, start, s.length).headers;
}
