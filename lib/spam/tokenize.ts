// Bayes tokens of a message: what it says and who sends it. Sources, each with its own
// prefix so that "free" in the Subject and "free" in the body are different evidence:
//   body words and word pairs (decoded, HTML rendered), text hidden by HTML tricks,
//   selected header fields (sender, mailer, Message-ID shape...), the client (from session
//   facts), URLs (host, domain, first path segment).
// Formatting (HTML markup, MIME structure, transfer encodings) is deliberately not
// tokenized: a site whose learned ham has no HTML newsletters would otherwise learn
// "HTML = spam" and junk every newsletter. Formatting is left to the rules, whose weights
// are fitted and bounded.
// Header fields that describe the recipient, the delivery path or mailing-list handling
// are ignored (the same list SpamAssassin's Bayes ignores, plus recipients): they teach
// where mail was collected, not what it is.
//
// Tokens are hashed to 53-bit integers (exact in a double): compact in the store and
// cheap to compare. A collision only merges two tokens' counts.

import type { Analysis } from './analyze.js';
import { addressOf, domainOf, registrableDomain } from './analyze.js';
import { decodeHeader } from './mime.js';
import type { SessionFacts } from './types.js';

/** cyrb53: a fast 53-bit string hash (public domain, bryc). */
export function hash53(str: string, seed = 0): number {
  return cyrb53(str, '', '', seed);
}

export interface TokenizeOptions {
  /** Keep the token strings (debugging, `check --tokens`). */
  keepStrings?: boolean;
  /** At most this many body words are read (bounded CPU on huge messages). */
  maxWords?: number;
  /** Emit word pairs. */
  bigrams?: boolean;
}

export interface Tokens {
  /** Unique token hashes. */
  hashes: number[];
  strings?: string[];
}

// Header fields whose words are evidence (lower-cased name → prefix).
const HEADER_WORDS: Record<string, string> = {
  'x-mailer': 'xm',
  'user-agent': 'ua',
  'x-mimeole': 'mo',
  'x-msmail-priority': 'mp',
  'x-priority': 'xp',
  'importance': 'im',
  'organization': 'org',
  'content-type': 'ct',
  'x-originating-ip': 'oip',
  'errors-to': 'et',
  'x-accept-language': 'al',
  'thread-index': 'ti',
  'comments': 'cm',
  'x-sender': 'xs',
  'disposition-notification-to': 'dn',
};

// Never tokenized at all, not even their presence: delivery path, recipients, mailing-list
// handling, mailbox annotations and other filters' verdicts (SpamAssassin Bayes.pm
// IGNORED_HDRS, plus recipient fields).
const IGNORED = /^(received|delivered-to|delivery-date|x-original-to|envelope-to|x-envelope-to|return-path|to|cc|bcc|apparently-to|x-apparently-to|date|x-original-date|resent-.*|x-resent-.*|original-.*|x-original-.*|list-.*|x-list.*|mailing-list|x-mailing-list|x-mailman-version|x-beenthere|x-been-there|x-loop|precedence|mail-followup-to|x-egroups-.*|x-mdmailing-list|x-xemacs-list|x-spam.*|x-bogosity|x-virus-.*|x-mailscanner.*|x-antispam.*|x-scanned-by|x-filtered-by|x-pyzor|x-dcc-.*|x-razor.*|status|x-status|x-flags|x-keywords|x-uidl?|x-imapbase|lines|content-length|replied|forwarded|x-authentication-warning|x-mass-check-id|x-spamcop-.*|x-mozilla-status2?|x-evolution.*|sender|x-sender|x-ack|x-unsubscribe|x-unsub|x-message-number|mailing-list|x-reply-to|x-trace|x-complaints-to|nntp-posting-.*|path|xref|newsgroups|x-newsreader|x-gateway)$/;

const WORD_RE = /[\p{L}\p{N}$][\p{L}\p{N}\p{M}$'’_-]*/gu;
const CJK_RE = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]/;

function shape(s: string): string {
  return s.replace(/[A-Z]+/g, 'A').replace(/[a-z]+/g, 'a').replace(/[0-9]+/g, '9').slice(0, 24);
}

/** hash53 of a + b + c without building the string (the same characters through the same
 *  state): a message's word pairs and prefixed words are most of its tokens. */
export function hash53Join(a: string, b: string, c = ''): number {
  return cyrb53(a, b, c, 0);
}

/** cyrb53 over the characters of a, b and c in turn. */
function cyrb53(a: string, b: string, c: string, seed: number): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let part = 0; part < 3; part++) {
    const str = part === 0 ? a : part === 1 ? b : c;
    for (let i = 0; i < str.length; i++) {
      const ch = str.charCodeAt(i);
      h1 = Math.imul(h1 ^ ch, 2654435761);
      h2 = Math.imul(h2 ^ ch, 1597334677);
    }
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * The set of a message's token hashes, in the order first added. An open-addressing table of
 * doubles, reused from one message to the next (tokenize is synchronous): a Set<number> would
 * box every 53-bit hash and rehash as it grows, for each message.
 */
const SET_MIN = 2048;
/** a table grown past this (a message of many thousand tokens) is not kept for the next */
const SET_KEEP = 16384;

class HashSet {
  private keys = new Float64Array(SET_MIN);
  private mask = SET_MIN - 1;
  private zero = false;
  /** what was added, in order */
  out: number[] = [];

  /** Adds h; true when it was not there. */
  add(h: number): boolean {
    if (h === 0) {
      if (this.zero) return false;
      this.zero = true;
      this.out.push(h);
      return true;
    }
    if ((this.out.length + 1) * 2 > this.keys.length) this.grow();
    const keys = this.keys, mask = this.mask;
    let i = (h >>> 0) & mask;
    for (;;) {
      const k = keys[i]!;
      if (k === h) return false;
      if (k === 0) {
        keys[i] = h;
        this.out.push(h);
        return true;
      }
      i = (i + 1) & mask;
    }
  }

  private grow(): void {
    const cap = this.keys.length * 2;
    this.keys = new Float64Array(cap);
    this.mask = cap - 1;
    for (const h of this.out) {
      if (h === 0) continue;
      let i = (h >>> 0) & this.mask;
      while (this.keys[i] !== 0) i = (i + 1) & this.mask;
      this.keys[i] = h;
    }
  }

  /** The hashes added, and the set emptied for the next message. */
  take(): number[] {
    const out = this.out;
    this.out = [];
    this.zero = false;
    if (this.keys.length > SET_KEEP) {
      this.keys = new Float64Array(SET_MIN);
      this.mask = SET_MIN - 1;
    } else this.keys.fill(0);
    return out;
  }
}

/** tokenize's table, one message at a time */
const SHARED = new HashSet();

export class TokenSink {
  readonly strings: string[] | undefined;
  constructor(
    keep: boolean,
    private readonly hashes = new HashSet(),
  ) {
    this.strings = keep ? [] : undefined;
  }
  add(t: string): void {
    if (this.hashes.add(hash53(t))) this.strings?.push(t);
  }
  /** add(a + b + c), without building the string unless the strings are kept. */
  addJoin(a: string, b: string, c = ''): void {
    if (this.hashes.add(hash53Join(a, b, c))) this.strings?.push(a + b + c);
  }
  /** The unique hashes in the order first added; the sink is empty afterwards. */
  take(): number[] {
    return this.hashes.take();
  }
}

/** Words of a text: lower-cased, 2..20 chars; longer ones become "sk:<first 8>" (SA's
 *  skip tokens); CJK runs become character pairs (no spaces to split on). */
export function words(text: string, max: number, out: string[]): void {
  // match() gives the matched strings alone (exec builds a result array for each word); the
  // words past `max` are matched but not used.
  const found = text.match(WORD_RE);
  if (found === null) return;
  for (let k = 0; k < found.length && out.length < max; k++) {
    let w = found[k]!;
    // Trailing punctuation that the class allows inside words.
    while (w.length > 1 && /['’_-]$/.test(w)) w = w.slice(0, -1);
    if (CJK_RE.test(w)) {
      for (let i = 0; i + 1 < w.length && i < 40; i++) out.push(w.slice(i, i + 2));
      continue;
    }
    const l = w.toLowerCase();
    if (l.length < 2) continue;
    if (l.length > 20) {
      out.push('sk:' + l.slice(0, 8));
      continue;
    }
    if (/^\d+$/.test(l) && l.length > 4) {
      out.push('num:' + l.length);
      continue;
    }
    out.push(l);
  }
}

function addWords(sink: TokenSink, prefix: string, text: string, max: number, bigrams: boolean): void {
  const ws: string[] = [];
  words(text, max, ws);
  for (let i = 0; i < ws.length; i++) {
    sink.addJoin(prefix, ws[i]!);
    if (bigrams && i > 0) sink.addJoin(prefix + ws[i - 1], ' ', ws[i]!);
  }
}

function addAddress(sink: TokenSink, prefix: string, raw: string | undefined): void {
  if (raw === undefined) {
    sink.add(prefix + ':none');
    return;
  }
  const v = decodeHeader(raw);
  const addr = addressOf(v);
  if (!addr) {
    sink.add(prefix + ':noaddr');
    return;
  }
  const dom = domainOf(addr) ?? '';
  const local = addr.slice(0, addr.lastIndexOf('@'));
  sink.add(prefix + ':a:' + addr);
  sink.add(prefix + ':d:' + dom);
  sink.add(prefix + ':rd:' + registrableDomain(dom));
  sink.add(prefix + ':ls:' + shape(local));
  const name = v.replace(/<[^>]*>/, '').replace(/["()]/g, ' ').trim();
  if (name && !name.includes('@')) {
    const ws: string[] = [];
    words(name, 10, ws);
    for (const w of ws) sink.add(prefix + ':n:' + w);
  } else sink.add(prefix + ':noname');
}

function ipTokens(sink: TokenSink, prefix: string, ip: string): void {
  if (ip.includes(':')) {
    const p = ip.toLowerCase().split(':');
    sink.add(prefix + ':ip6:' + p.slice(0, 2).join(':'));
    sink.add(prefix + ':ip6:' + p.slice(0, 4).join(':'));
    return;
  }
  const p = ip.split('.');
  sink.add(prefix + ':ip:' + p[0]);
  sink.add(prefix + ':ip:' + p.slice(0, 2).join('.'));
  sink.add(prefix + ':ip:' + p.slice(0, 3).join('.'));
  sink.add(prefix + ':ip:' + ip);
}

export function tokenize(a: Analysis, session: SessionFacts | undefined, opt: TokenizeOptions = {}): Tokens {
  try {
    return tokenizeInto(new TokenSink(!!opt.keepStrings, SHARED), a, session, opt);
  } finally {
    SHARED.take(); // empty already, unless something threw half way
  }
}

function tokenizeInto(sink: TokenSink, a: Analysis, session: SessionFacts | undefined, opt: TokenizeOptions): Tokens {
  const maxWords = opt.maxWords ?? 4000;
  const bigrams = opt.bigrams ?? true;
  // Body.
  let budget = maxWords;
  for (const t of a.texts) {
    if (budget <= 0) break;
    const ws: string[] = [];
    words(t.text, budget, ws);
    budget -= ws.length;
    for (let i = 0; i < ws.length; i++) {
      sink.add(ws[i]!);
      if (bigrams && i > 0) sink.addJoin(ws[i - 1]!, ' ', ws[i]!);
    }
    if (t.html && t.html.hidden) addWords(sink, 'hid:', t.html.hidden, 300, false);
  }
  // Punctuation runs that spam loves ("!!!", "$$$").
  const pr = a.body.match(/[!$?*%]{3,}/g);
  if (pr) for (const x of pr.slice(0, 20)) sink.add('punct:' + x.slice(0, 5));
  // Subject.
  if (a.subjectRaw === undefined) sink.add('subj:none');
  else addWords(sink, 's:', a.subject, 40, bigrams);
  // Address fields.
  let fromRaw: string | undefined, replyRaw: string | undefined;
  for (const h of a.headers) {
    if (h.lname === 'from' && fromRaw === undefined) fromRaw = h.raw;
    else if (h.lname === 'reply-to' && replyRaw === undefined) replyRaw = h.raw;
  }
  addAddress(sink, 'from', fromRaw);
  if (replyRaw !== undefined) addAddress(sink, 'rt', replyRaw);
  // Other header fields: presence of every field name that is not ignored, and the words
  // of a selected few.
  for (const h of a.headers) {
    const n = h.lname;
    if (IGNORED.test(n)) continue;
    sink.add('hdr:' + n);
    const p = HEADER_WORDS[n];
    if (p) {
      const v = decodeHeader(h.raw);
      if (n === 'content-type') {
        // Only the boundary's shape: it fingerprints the mailer (like X-Mailer). The type
        // itself is formatting, left to the rules.
        const b = /boundary="?([^";]*)/i.exec(v)?.[1];
        if (b) sink.add('ct:bshape:' + shape(b));
        continue;
      }
      if (n === 'x-originating-ip') {
        const ip = /(\d{1,3}(?:\.\d{1,3}){3})/.exec(v)?.[1];
        if (ip) ipTokens(sink, 'oip', ip);
        continue;
      }
      addWords(sink, p + ':', v.slice(0, 200), 12, false);
      if (n === 'x-mailer' || n === 'user-agent') sink.add(p + ':shape:' + shape(v.trim()));
    } else if (n === 'message-id') {
      const v = h.raw.trim();
      const at = v.lastIndexOf('@');
      if (at < 0) sink.add('mid:noat');
      else {
        const dom = v.slice(at + 1).replace(/>.*$/, '').toLowerCase();
        sink.add('mid:d:' + dom);
        sink.add('mid:rd:' + registrableDomain(dom));
        sink.add('mid:ls:' + shape(v.slice(0, at).replace(/^</, '')));
      }
    }
  }
  // The client, as smtpd saw it.
  if (session) {
    if (session.ip) ipTokens(sink, 'cl', session.ip);
    if (session.rdns === null) sink.add('cl:rdns:none');
    else if (session.rdns) {
      sink.add('cl:rdns:' + registrableDomain(session.rdns));
      sink.add('cl:rdnsshape:' + shape(session.rdns.split('.')[0]!));
    }
    if (session.helo) {
      sink.add('cl:heloshape:' + shape(session.helo));
      if (session.rdns && session.helo === session.rdns) sink.add('cl:helo=rdns');
    }
    if (session.authenticated) sink.add('cl:auth');
  }
  // URLs.
  let nu = 0;
  for (const u of a.urls) {
    if (++nu > 200) break;
    sink.add('u:h:' + u.host);
    sink.add('u:d:' + u.domain);
    const path = /^[a-z]+:\/*[^/?#]*([/?#][^/?#]*)/i.exec(u.url)?.[1];
    if (path && path.length > 1) sink.add('u:p:' + u.domain + path.slice(0, 30).toLowerCase());
  }
  const out: Tokens = { hashes: sink.take() };
  if (sink.strings) out.strings = sink.strings;
  return out;
}
