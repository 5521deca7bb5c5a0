// Is this PTR name dynamic/residential (or generic)? Used by filter-rdns (-dyndns) and as
// a spam-scorer rule.
//
// Method (our own; the kinds of evidence follow rspamd's hfilter and SpamAssassin's
// 20_dynrdns.cf, the words and rules do not):
// 1. Only the host part counts: the registered domain (public suffix + one label, see
//    TWO_LABEL_SUFFIXES) is removed first, so `mail.dynatrace.com` or `gw.dyn.com` cannot hit
//    on their company name (rspamd/rspamd#2140 was exactly that false positive).
// 2. The host part is cut into tokens: maximal runs of letters and of digits. Words are
//    compared with whole tokens, so `dynamo` is not `dyn` and `poolside` is not `pool`
//    (decided: a compound is a different word; the compounds ISPs use, like dynip or
//    cablemodem, are listed, and letters ending in "dsl" count as dsl).
// 3. Evidence: a strong access word (dsl, dhcp, pool, ppp, cable…); the client IP in the
//    name (lib/dynrdns-ip.ts) or four octet-like numbers in a row; a weak word (host, user,
//    client, cm…) together with numeric evidence.
// 4. An excuse word in the host part overrides the built-in evidence: static, dedicated,
//    business… (the name says it is not a pool address) always; mail, smtp, mx, outbound,
//    relay… (the name says mail server) unless the name also says dyn/dynamic/dhcp — a
//    mail server on an address its ISP calls dynamic is what this check is for.
// 5. Patterns from -dyndnsFile (like smtpd's `rdns regex` table) are applied to the whole
//    lower-cased name, and a hit is dynamic whatever the excuses: the admin asked for it.
//
// Generic hosting names that only embed the IP (ec2-54-1-2-3.compute-1.amazonaws.com) are
// reported dynamic too: nothing in such a name says mail server, which is what the check
// is for. All built-in scanning is linear in the name's length (no backtracking regexes).

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseIp } from './net.js';
import { findIpv4, findIpv6, hasIpShape, isNumberHeavy } from './dynrdns-ip.js';
import {
  DYNAMIC_WORDS,
  ROLE_WORDS,
  STATIC_WORDS,
  STRONG_WORDS,
  TWO_LABEL_SUFFIXES,
  WEAK_WORDS,
  isDslWord,
} from './dynrdns-words.js';

export interface RdnsClass {
  dynamic: boolean;
  /** The evidence, e.g. `word:dsl`, `ip:in-order`, `weak:host+numbers`, `pattern:FILE:LINE`. */
  reasons: string[];
  /** The word that excused evidence found in the name (`static`, `mail`, …). */
  excusedBy?: string;
}

/** One -dyndnsFile regex, with where it came from for logs. */
export interface RdnsPattern {
  re: RegExp;
  source: string;
  line: number;
}

export interface ClassifyOptions {
  patterns?: readonly RdnsPattern[];
}

/**
 * Splits a lower-case name into host labels and registered domain. With fewer labels than
 * suffix + 1 the whole name is the domain and the host part is empty.
 */
export function splitRegisteredDomain(name: string): { host: string[]; domain: string } {
  const labels = name.split('.');
  const suffixLen = labels.length >= 3 && TWO_LABEL_SUFFIXES.has(labels.slice(-2).join('.')) ? 2 : 1;
  const cut = Math.max(0, labels.length - suffixLen - 1);
  return { host: labels.slice(0, cut), domain: labels.slice(cut).join('.') };
}

/** Classifies a PTR name; ip (the client's address) enables the IP-in-name checks. */
export function classifyRdns(name: string, ip?: string, options: ClassifyOptions = {}): RdnsClass {
  const n = name.trim().toLowerCase().replace(/\.$/, '');
  const reasons: string[] = [];
  // smtpd writes `<unknown>` when there is no PTR; an IP literal is no name either.
  if (n === '' || n.startsWith('<') || n.startsWith('[') || isIP(n) !== 0) return { dynamic: false, reasons };

  for (const p of options.patterns ?? []) {
    if (p.re.test(n)) {
      reasons.push(`pattern:${p.source}:${p.line}`);
      break;
    }
  }
  const userHit = reasons.length > 0;

  const { host: labels } = splitRegisteredDomain(n);
  const host = labels.join('.');
  let staticWord: string | undefined;
  let roleWord: string | undefined;
  let saysDynamic = false;
  const weak: string[] = [];
  for (const word of host.match(/[a-z]+/g) ?? []) {
    if (staticWord === undefined && STATIC_WORDS.has(word)) staticWord = word;
    if (roleWord === undefined && ROLE_WORDS.has(word)) roleWord = word;
    if (DYNAMIC_WORDS.has(word)) saysDynamic = true;
    if (STRONG_WORDS.has(word) || isDslWord(word)) pushOnce(reasons, `word:${word}`);
    else if (WEAK_WORDS.has(word)) pushOnce(weak, word);
  }

  let numeric = false;
  const addr = ip === undefined ? null : parseIp(ip);
  if (addr !== null && labels.length > 0) {
    const found = addr.family === 4 ? findIpv4(host, labels, addr) : findIpv6(labels, addr);
    for (const r of found.strong) reasons.push(r);
    numeric = found.partial;
  }
  if (hasIpShape(host)) {
    if (!reasons.some((r) => r.startsWith('ip:') || r.startsWith('ip6:'))) reasons.push('ip-shaped');
    numeric = true;
  }
  if (weak.length > 0 && (numeric || isNumberHeavy(host))) reasons.push(`weak:${weak.join('+')}+numbers`);

  const builtIn = reasons.length > (userHit ? 1 : 0);
  const excuse = staticWord ?? (saysDynamic ? undefined : roleWord);
  if (excuse !== undefined && builtIn && !userHit) return { dynamic: false, reasons, excusedBy: excuse };
  return { dynamic: userHit || builtIn, reasons };
}

function pushOnce(list: string[], item: string): void {
  if (!list.includes(item)) list.push(item);
}

/** Thrown for a bad -dyndnsFile line; the message names file and line. */
export class PatternFileError extends Error {
  constructor(
    readonly source: string,
    readonly line: number,
    detail: string,
  ) {
    super(`${source}:${line}: ${detail}`);
    this.name = 'PatternFileError';
  }
}

/**
 * Parses -dyndnsFile text: one regex per line (JavaScript syntax, case-insensitive,
 * unanchored like smtpd's `rdns regex` table), `#` at the start of a line is a comment,
 * blank lines are skipped. Only whole-line comments: `#` is legal inside a regex.
 * The admin's regexes run as written; keep them free of nested quantifiers.
 */
export function parsePatterns(text: string, source: string): RdnsPattern[] {
  const out: RdnsPattern[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const src = lines[i]!.trim();
    if (src === '' || src.startsWith('#')) continue;
    try {
      out.push({ re: new RegExp(src, 'i'), source, line: i + 1 });
    } catch (err) {
      throw new PatternFileError(source, i + 1, `invalid regular expression ${JSON.stringify(src)}: ${(err as Error).message}`);
    }
  }
  return out;
}

/** Reads a -dyndnsFile at startup; errors name the file (and line). */
export function loadPatternFile(path: string): RdnsPattern[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${path}: cannot read pattern file: ${(err as Error).message}`);
  }
  return parsePatterns(text, path);
}
