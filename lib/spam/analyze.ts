// One pass over a message that everything else reads: decoded header values, visible text
// of every text part (HTML rendered), links with their domains, attachments. The tokenizer
// (Bayes) and the rules both work from this, so a message is parsed once per scan.

import { decodeHeader, parseMessage, type HeaderField, type MimePart, type ParsedMessage } from './mime.js';
import { htmlToText, type HtmlInfo } from './html.js';

export interface UrlInfo {
  url: string;
  /** Lower-cased host, userinfo and port removed, percent-decoded. */
  host: string;
  /** Registrable-domain approximation (see registrableDomain). */
  domain: string;
  /** Host is a numeric IP (dotted, decimal, hex or octal). */
  ip: boolean;
  /** Link display text (HTML <a> only). */
  text?: string;
  /** Where it came from. */
  source: 'text' | 'a' | 'img' | 'other';
  /** Obfuscation tricks seen: userinfo before the host, %-encoded host chars. */
  userinfo: boolean;
  encodedHost: boolean;
}

export interface TextPart {
  text: string;
  html: HtmlInfo | null;
  charset?: string;
  part: MimePart;
}

export interface Attachment {
  filename: string;
  type: string;
  size: number;
}

export interface Analysis {
  msg: ParsedMessage;
  headers: HeaderField[];
  subject: string;
  /** Raw (undecoded) subject, for 8-bit checks. */
  subjectRaw: string | undefined;
  from: string;
  texts: TextPart[];
  urls: UrlInfo[];
  attachments: Attachment[];
  /** All visible text, parts separated by newlines. */
  body: string;
}

// Second-level labels under which ccTLDs register names (co.uk, com.au, ne.jp ...). Without
// the Public Suffix List this covers most mail domains.
const SLD = new Set(['co', 'com', 'net', 'org', 'ac', 'gov', 'edu', 'ne', 'or', 'go', 'gob', 'mil', 'ltd', 'plc', 'nom', 'sch', 'gen', 'biz', 'info']);

export function registrableDomain(host: string): string {
  if (/^[0-9.]+$/.test(host) || host.includes(':')) return host;
  const labels = host.split('.').filter(Boolean);
  if (labels.length <= 2) return labels.join('.');
  const tld = labels[labels.length - 1]!;
  const sld = labels[labels.length - 2]!;
  if (tld.length === 2 && SLD.has(sld)) return labels.slice(-3).join('.');
  return labels.slice(-2).join('.');
}

function numericHost(h: string): boolean {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(h)) return true;
  if (/^(0x[0-9a-f]+|\d{8,10})$/.test(h)) return true; // http://3232235777/
  if (/^(0x[0-9a-f]{1,2}|0[0-7]{1,3}|\d{1,3})(\.(0x[0-9a-f]{1,2}|0[0-7]{1,3}|\d{1,3})){3}$/.test(h)) return true;
  return h.startsWith('[');
}

export function parseUrl(url: string, source: UrlInfo['source'], text?: string): UrlInfo | null {
  let u = url.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(u)?.[1]?.toLowerCase();
  if (scheme === 'mailto') {
    const host = /@([^?&>\s]+)/.exec(u)?.[1]?.toLowerCase();
    if (!host) return null;
    return { url: u, host, domain: registrableDomain(host), ip: false, source, userinfo: false, encodedHost: false, ...(text !== undefined ? { text } : {}) };
  }
  if (scheme && scheme !== 'http' && scheme !== 'https' && scheme !== 'ftp') return null;
  if (!scheme) {
    if (!/^www\./i.test(u)) return null;
    u = 'http://' + u;
  }
  const m = /^[a-z][a-z0-9+.-]*:\/*([^/?#\\]*)/i.exec(u);
  if (!m) return null;
  let auth = m[1]!;
  let userinfo = false;
  const at = auth.lastIndexOf('@');
  if (at >= 0) {
    userinfo = true;
    auth = auth.slice(at + 1);
  }
  let encodedHost = false;
  if (auth.includes('%')) {
    encodedHost = true;
    try {
      auth = decodeURIComponent(auth);
    } catch {
      /* keep */
    }
  }
  let host = auth.replace(/:\d*$/, '').toLowerCase().replace(/\.$/, '');
  if (!host || !/^[a-z0-9\-._\[\]:\u0080-\uffff]+$/.test(host)) return null;
  const ip = numericHost(host);
  return { url: u, host, domain: ip ? host : registrableDomain(host), ip, source, userinfo, encodedHost, ...(text !== undefined ? { text } : {}) };
}

const TEXT_URL = /\b(?:(?:https?|ftp):\/\/[^\s<>"'(){}|\\^`]+|www\.[a-z0-9-]+\.[^\s<>"'(){}|\\^`]+|mailto:[^\s<>"'()]+)/gi;

const MAX_TEXT = 300_000; // characters of visible text analysed per part

export function analyze(input: Buffer | string | ParsedMessage): Analysis {
  const msg = typeof input === 'string' || Buffer.isBuffer(input) ? parseMessage(input) : input;
  const texts: TextPart[] = [];
  const urls: UrlInfo[] = [];
  const attachments: Attachment[] = [];
  const bodyParts: string[] = [];
  for (const p of msg.leaves) {
    if (p.filename && (p.disposition === 'attachment' || !p.type.startsWith('text/'))) {
      attachments.push({ filename: p.filename, type: p.type, size: p.size });
    }
    if (p.text === undefined) continue;
    let t = p.text.length > MAX_TEXT ? p.text.slice(0, MAX_TEXT) : p.text;
    let html: HtmlInfo | null = null;
    if (p.type === 'text/html' || (p.type === 'text/plain' && /^\s*<(!doctype|html|head|body)\b/i.test(t.slice(0, 200)))) {
      html = htmlToText(t);
      for (const l of html.links) {
        const u = parseUrl(l.href, l.tag === 'a' ? 'a' : l.tag === 'img' ? 'img' : 'other', l.text);
        if (u) urls.push(u);
      }
      t = html.text;
    }
    TEXT_URL.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = TEXT_URL.exec(t)) !== null) {
      const u = parseUrl(m[0].replace(/[.,;:!?]+$/, ''), 'text');
      if (u) urls.push(u);
      if (urls.length > 500) break;
    }
    // uuencoded attachments inside text (old mailers, and spam).
    const uu = /^begin [0-7]{3,4} (\S[^\r\n]*)$/m.exec(t);
    if (uu) attachments.push({ filename: uu[1]!, type: 'application/octet-stream', size: 0 });
    const tp: TextPart = { text: t, html, part: p };
    if (p.textCharset) tp.charset = p.textCharset;
    texts.push(tp);
    bodyParts.push(t);
  }
  let subjectRaw: string | undefined;
  let fromRaw: string | undefined;
  for (const h of msg.headers) {
    if (h.lname === 'subject' && subjectRaw === undefined) subjectRaw = h.raw;
    else if (h.lname === 'from' && fromRaw === undefined) fromRaw = h.raw;
  }
  return {
    msg,
    headers: msg.headers,
    subject: subjectRaw === undefined ? '' : decodeHeader(subjectRaw, msg.anomalies),
    subjectRaw,
    from: fromRaw === undefined ? '' : decodeHeader(fromRaw, msg.anomalies),
    texts,
    urls,
    attachments,
    body: bodyParts.join('\n'),
  };
}

/** The address part of a From/Reply-To value ("Name <a@b>" or "a@b (Name)"). */
export function addressOf(v: string): string | undefined {
  const angle = /<([^<>]*@[^<>]*)>/.exec(v);
  const a = angle ? angle[1] : bareAddress(v);
  return a?.trim().toLowerCase();
}

/**
 * The first run of address characters with an '@' inside it (not first, not last): what
 * /[^\s<>"(),;:]+@[^\s<>"(),;:]+/ finds, in linear time. The regex retried every start
 * inside a long run without an '@' (quadratic: a 250 KB From field took a minute).
 */
function bareAddress(v: string): string | undefined {
  for (const run of v.split(/[\s<>"(),;:]+/)) {
    const at = run.indexOf('@', 1);
    if (at >= 1 && at <= run.length - 2) return run;
  }
  return undefined;
}

export function domainOf(addr: string | undefined): string | undefined {
  if (!addr) return undefined;
  const at = addr.lastIndexOf('@');
  return at < 0 ? undefined : addr.slice(at + 1).replace(/[>\].]+$/, '').toLowerCase();
}
