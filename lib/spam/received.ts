// Received header fields (RFC 5321 §4.4) parsed well enough to recover what the receiving
// MTA saw: client IP, its reverse DNS name, the HELO name. The filter gets these facts from
// smtpd's link-connect/link-identify events; the CLI (`check` on stored mail) and the
// benchmark (a corpus without sessions) recover the same facts from the topmost Received
// field written by a host we trust, as SpamAssassin does with trusted_networks.

import type { HeaderField } from './mime.js';
import type { SessionFacts } from './types.js';

export interface ReceivedRecord {
  helo?: string;
  rdns?: string; // undefined: none recorded
  ip?: string;
  by?: string;
  with?: string;
  /** Sendmail's "(may be forged)": the PTR name does not resolve back. */
  forged: boolean;
  /** RFC 3848 "with ESMTPA/ESMTPSA": the client authenticated. */
  authenticated: boolean;
  date?: number; // ms since epoch
  raw: string;
}

const IPV4 = /\b(\d{1,3}(?:\.\d{1,3}){3})\b/;

export function parseReceived(raw: string): ReceivedRecord {
  const v = raw.replace(/\s+/g, ' ');
  const rec: ReceivedRecord = { forged: /may be forged/i.test(v), authenticated: false, raw: v };
  const semi = v.lastIndexOf(';');
  if (semi >= 0) {
    const t = Date.parse(v.slice(semi + 1).trim().replace(/\s*\([^)]*\)\s*$/, ''));
    if (!Number.isNaN(t)) rec.date = t;
  }
  const by = /\bby ([^\s;()]+)/i.exec(v);
  if (by) rec.by = by[1]!.toLowerCase();
  const wi = /\bwith ([^\s;()]+)/i.exec(v);
  if (wi) {
    rec.with = wi[1]!.toLowerCase();
    rec.authenticated = /^(e?smtps?a|utf8smtps?a|lmtpsa?)$/.test(rec.with) && rec.with.endsWith('a');
  }
  const fm = /^\s*from (.*?)(?: by |;|$)/i.exec(v);
  if (!fm) return rec;
  const from = fm[1]!;
  // IP: bracketed literal first, then qmail's "(1.2.3.4)", then any dotted quad.
  const br = /\[(?:IPv6:)?([0-9a-fA-F:.]+)\]/.exec(from);
  const ip = br?.[1] ?? /\((\d{1,3}(?:\.\d{1,3}){3})\)/.exec(from)?.[1] ?? IPV4.exec(from)?.[1];
  if (ip) rec.ip = ip;
  // Exim: "from rdns ([ip] helo=HELO)" or "from [ip] (helo=HELO)".
  const exim = /helo=([^\s)]+)/i.exec(from);
  // qmail: "from rdns (HELO helo) (ip)".
  const qmail = /\(HELO ([^\s)]+)\)/.exec(from);
  const first = /^(\S+)/.exec(from)?.[1];
  if (exim) {
    rec.helo = exim[1]!.toLowerCase();
    if (first && !first.startsWith('[') && first !== 'unknown') rec.rdns = first.toLowerCase();
  } else if (qmail) {
    rec.helo = qmail[1]!.toLowerCase();
    if (first && first !== 'unknown') rec.rdns = first.toLowerCase();
  } else {
    if (first && first !== '(') rec.helo = first.toLowerCase().replace(/^\(|\)$/g, '');
    // Sendmail/Postfix/OpenSMTPD: "from HELO (rdns [ip])", "(IDENT:u@rdns [ip])",
    // Postfix "(unknown [ip])", no rDNS at all "([ip])".
    // OpenSMTPD: "from HELO (rdns [ip])", "(<unknown> [ip])", IPv6 as "(rdns IPv6:addr)".
    const paren = /\(([^()]*?)\s*(?:\[[0-9a-fA-F:.IPv]+\]|IPv6:[0-9a-fA-F:.]+)/.exec(from);
    if (!rec.ip) {
      const v6 = /\(\S*\s*IPv6:([0-9a-fA-F:.]+)\)/.exec(from)?.[1];
      if (v6) rec.ip = v6;
    }
    if (paren) {
      let name = paren[1]!.trim();
      name = name.replace(/^IDENT:/i, '').replace(/^[^@\s]*@/, '').replace(/^<|>$/g, '');
      if (name && name.toLowerCase() !== 'unknown' && /[a-z]/i.test(name)) rec.rdns = name.toLowerCase();
    } else if (/^\S+ \[[0-9.]+\]/.test(from) && first) {
      // fetchmail style "from host [ip]": the name is the server's own name.
      rec.rdns = first.toLowerCase();
    }
  }
  return rec;
}

export function isPrivateIp(ip: string): boolean {
  if (ip.includes(':')) return /^(::1$|fe80:|fc|fd)/i.test(ip);
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !(x >= 0 && x <= 255))) return true;
  const [a, b] = p as [number, number];
  return a === 10 || a === 127 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254);
}

export interface TrustOptions {
  /** Host names (or domain suffixes) of our own relays; their records are skipped. */
  trustedHosts?: string[];
  /** IPv4 prefixes ("193.120.211.") of our own relays. */
  trustedIpPrefixes?: string[];
}

function trusted(rec: ReceivedRecord, opt: TrustOptions): boolean {
  if (!rec.ip || isPrivateIp(rec.ip)) return true;
  if (rec.with && /^(pop3|imap|local|lmtp)/.test(rec.with)) return true;
  if (/fetchmail/i.test(rec.raw)) return true;
  if (opt.trustedIpPrefixes?.some((p) => rec.ip!.startsWith(p))) return true;
  const names = [rec.rdns, rec.helo].filter((x): x is string => !!x);
  if (opt.trustedHosts?.some((h) => names.some((n) => n === h || n.endsWith('.' + h))) && rec.rdns) return true;
  return false;
}

/** Recover the session facts of the first untrusted hop (the client our MX talked to). */
export function sessionFromReceived(headers: HeaderField[], opt: TrustOptions = {}): SessionFacts | undefined {
  for (const h of headers) {
    if (h.lname !== 'received') continue;
    const rec = parseReceived(h.raw);
    if (trusted(rec, opt)) continue;
    const s: SessionFacts = { ip: rec.ip!, rdns: rec.rdns ?? null, fcrdns: rec.forged ? 'fail' : rec.rdns ? 'pass' : 'fail' };
    if (rec.helo !== undefined) s.helo = rec.helo;
    if (rec.date !== undefined) s.time = rec.date;
    if (rec.authenticated) s.authenticated = true;
    return s;
  }
  return undefined;
}
