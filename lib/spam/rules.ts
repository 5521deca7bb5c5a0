// Named rules (symbols). Each is a yes/no test over the analysed message and the session
// facts; its weight comes from lib/spam/weights.ts (fitted on the training split only, see
// lib/spam/fit.ts and bench/spam.ts). Rules describe spam signs only: their weights are
// constrained to be >= 0 so a sender cannot buy points by adding "ham-looking" features.
// Which rules are kept is decided by measurement (bench/spam.ts --ablation).
//
// Bulk-style rules (`bulk: true`) describe how bulk mail is formatted or addressed (HTML
// without a text part, huge fonts, base64 text, undisclosed recipients, a shouting or
// exclaiming subject ...). Legitimate newsletters do the same, and a training set whose
// ham has no newsletters (the SpamAssassin corpus's easy ham has no HTML-only message at
// all) would fit them as if they were proof of spam: their weight is capped at
// BULK_RULE_MAX (lib/spam/fit.ts). They are context, not evidence. Rules about deception
// (hidden text, link tricks, forged senders), sloppy or forged headers, the SMTP session
// and spam's own vocabulary are not capped beyond the general per-rule cap.

import { addressOf, domainOf, registrableDomain, type Analysis } from './analyze.js';
import { getHeader } from './mime.js';
import type { SessionFacts } from './types.js';

export interface RuleContext {
  a: Analysis;
  session: SessionFacts | undefined;
  /** Reference time, ms since epoch (session.time or now). */
  now: number;
}

export interface Rule {
  name: string;
  description: string;
  test(c: RuleContext): boolean;
  /** Bulk-style: formatting or addressing that legitimate newsletters share (weight capped). */
  bulk?: boolean;
}

/** GTUBE (SpamAssassin's test string; rspamd knows it too): always rejected. */
export const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

export function hasGtube(raw: Buffer | string, a?: Analysis): boolean {
  const s = typeof raw === 'string' ? raw : raw.toString('latin1');
  if (s.includes(GTUBE)) return true;
  return a ? a.body.includes(GTUBE) : false;
}

const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;
const SHORTENERS = new Set([
  'bit.ly', 'bitly.com', 'tinyurl.com', 'goo.gl', 't.co', 'ow.ly', 'is.gd', 'buff.ly', 'rebrand.ly', 'cutt.ly', 'shorturl.at',
  'tiny.cc', 'x.co', 'lnkd.in', 'rb.gy', 'v.gd', 'tr.im', 'snipurl.com', 'shorl.com', 'qr.net', 'clck.ru', 'u.to', 'urlz.fr',
  'cli.gs', 'budurl.com', 'su.pr', 'short.io', 'bl.ink', 's.id', 'tiny.one', 'shrtco.de', 'hyperurl.co', 'go2l.ink',
]);
const EXEC_EXT = /\.(exe|scr|pif|bat|com|cmd|vbs|vbe|js|jse|wsf|wsh|hta|cpl|msi|jar|lnk|reg|ps1|dll|msc|shs|shb|chm|gadget|application|iso|img)$/i;

// Big mailbox providers whose users' mail leaves through the provider's own servers
// (webmail, or submission to the provider). Mail that names one of them in From or
// Message-ID without having passed through it was forged (SpamAssassin's
// FORGED_HOTMAIL_RCVD, FORGED_YAHOO_RCVD, FORGED_JUNO_RCVD, FORGED_MSGID_*); a client
// that calls itself one of them in HELO without being it is lying.
const PROVIDERS: { domains: RegExp; relays: RegExp }[] = [
  { domains: /^(hotmail\.[a-z.]+|msn\.com|passport\.com|outlook\.com|live\.com)$/, relays: /\b(hotmail|msn|outlook|live)\.com\b/ },
  { domains: /^(yahoo\.[a-z.]+|ymail\.com|rocketmail\.com)$/, relays: /\byahoo(groups)?\.[a-z]{2,3}\b|\byahoo-inc\.com\b|\byahoodns\.net\b/ },
  { domains: /^aol\.com$/, relays: /\baol\.(com|net)\b/ },
  { domains: /^(gmail|googlemail)\.com$/, relays: /\b(google|gmail|googlemail)\.com\b/ },
  { domains: /^juno\.com$/, relays: /\b(juno|untd)\.com\b/ },
  { domains: /^excite\.com$/, relays: /\bexcite\.com\b/ },
];
// Free mailboxes anyone can open in a minute (for "replies go to a throwaway address").
const FREEMAIL = /^(hotmail\.[a-z.]+|msn\.com|outlook\.com|live\.com|yahoo\.[a-z.]+|ymail\.com|rocketmail\.com|aol\.com|gmail\.com|googlemail\.com|juno\.com|excite\.[a-z.]+|netscape\.net|lycos\.[a-z.]+|mail\.com|email\.com|usa\.net|rediffmail\.com|gmx\.[a-z.]+|web\.de|mail\.ru|caramail\.com|netzero\.(com|net)|latinmail\.com|indiatimes\.com|yandex\.ru|zzn\.com|fastmail\.fm|hushmail\.com)$/;
/** 419 (advance-fee) letters' formulae; three different ones make the rule hit. */
const ADVANCE_FEE = [
  /\bnext of kin\b/i,
  /\b(strict(est)?|utmost|absolute|total)\s+(confidence|confidentiality|secrecy|discretion)\b/i,
  /\btransfer(red|ring)?\s+(of\s+)?(this|the|these|said)\s+(funds?|money|sum|amount)\b/i,
  /\b(late|deceased)\s+(husband|father|client|president|head of state|general|mother)\b/i,
  /\b(foreign|overseas|offshore|trustworthy|reliable)\s+(business\s+)?(partner|account)\b/i,
  /\b\d{1,2}(\.\d+)?\s?%\s+(of\s+)?(the\s+)?(total\s+)?(fund|sum|money|amount)\b/i,
  /\b(bank draft|security company|diplomatic (courier|bag)|consignment box)\b/i,
  /\b(million|m)\s*(united states|u\.?\s?s\.?)?\s*(dollars|usd)\b|\b(us\s?\$|usd)\s?\d[\d,.]*\s*(m\b|million)/i,
  /\b(barrister|solicitor general|attorney at law)\b/i,
  /\b(son|daughter|wife|widow)\s+of\s+(the\s+)?(late|former)\b/i,
];
const LIST_FIELDS = new Set(['list-id', 'list-unsubscribe', 'list-post', 'mailing-list', 'list-help']);

function receivedText(c: RuleContext): string {
  const r = c.a.headers.filter((h) => h.lname === 'received').map((h) => h.raw.toLowerCase());
  if (c.session?.rdns) r.push(c.session.rdns.toLowerCase());
  return r.join('\n');
}

function hdr(a: Analysis, lname: string): string | undefined {
  return getHeader(a, lname);
}
function has(a: Analysis, lname: string): boolean {
  return a.headers.some((h) => h.lname === lname);
}
function notAuth(c: RuleContext): boolean {
  return !!c.session && !c.session.authenticated;
}

function parseDate(v: string): number {
  const t = Date.parse(v.replace(/\s*\([^)]*\)\s*$/, '').trim());
  return t;
}

export const RULES: Rule[] = [
  // Session facts (smtpd link-connect / link-identify). Skipped for authenticated senders.
  {
    name: 'RDNS_NONE',
    description: 'Client IP has no reverse DNS name',
    test: (c) => notAuth(c) && c.session!.rdns === null && !!c.session!.ip,
  },
  {
    name: 'RDNS_DYNAMIC',
    description: 'Client reverse DNS looks like a dynamic/residential pool',
    test: (c) => notAuth(c) && !!c.session!.rdnsDynamic,
  },
  {
    name: 'FCRDNS_FAIL',
    description: 'Client reverse DNS name does not resolve back to its IP',
    test: (c) => notAuth(c) && !!c.session!.rdns && c.session!.fcrdns === 'fail',
  },
  {
    name: 'HELO_BARE_IP',
    description: 'HELO is an IP address without brackets (RFC 5321 4.1.3)',
    test: (c) => notAuth(c) && !!c.session!.helo && IPV4_RE.test(c.session!.helo),
  },
  {
    name: 'HELO_IP_MISMATCH',
    description: 'HELO address literal is not the client IP',
    test: (c) => {
      if (!notAuth(c) || !c.session!.helo || !c.session!.ip) return false;
      const h = c.session!.helo.replace(/^\[(ipv6:)?|\]$/gi, '');
      return (IPV4_RE.test(h) || h.includes(':')) && h.toLowerCase() !== c.session!.ip.toLowerCase();
    },
  },
  {
    name: 'HELO_NOT_FQDN',
    description: 'HELO name is not a fully qualified domain name',
    test: (c) => {
      if (!notAuth(c) || !c.session!.helo) return false;
      const h = c.session!.helo;
      return !h.startsWith('[') && !IPV4_RE.test(h) && !/^[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$/i.test(h);
    },
  },
  {
    name: 'HELO_LOCALHOST',
    description: 'HELO claims to be localhost',
    test: (c) => notAuth(c) && /^(localhost(\.localdomain)?|127\.0\.0\.1|\[127\.0\.0\.1\])$/i.test(c.session!.helo ?? ''),
  },
  {
    name: 'HELO_CLAIMS_US',
    description: 'HELO claims to be this server',
    test: (c) => {
      if (!notAuth(c) || !c.session!.helo || !c.session!.localNames?.length) return false;
      const h = c.session!.helo.toLowerCase().replace(/^\[|\]$/g, '');
      return c.session!.localNames.some((n) => n.toLowerCase() === h);
    },
  },
  {
    name: 'HELO_FORGED_PROVIDER',
    description: 'HELO claims a big mailbox provider the client is not part of',
    test: (c) => {
      if (!notAuth(c) || !c.session!.helo) return false;
      const h = registrableDomain(c.session!.helo.toLowerCase().replace(/\.$/, ''));
      const p = PROVIDERS.find((x) => x.domains.test(h));
      return !!p && !(c.session!.rdns && p.relays.test(c.session!.rdns.toLowerCase()));
    },
  },
  // Header fields.
  { name: 'MISSING_DATE', description: 'Missing Date header field (RFC 5322 3.6)', test: (c) => !has(c.a, 'date') },
  { name: 'MISSING_MID', description: 'Missing Message-ID header field', test: (c) => !has(c.a, 'message-id') },
  { name: 'MISSING_FROM', description: 'Missing From header field', test: (c) => !has(c.a, 'from') },
  { name: 'MISSING_SUBJECT', description: 'Missing Subject header field', test: (c) => !has(c.a, 'subject') },
  {
    name: 'MISSING_TO',
    description: 'No To or Cc header field',
    test: (c) => !has(c.a, 'to') && !has(c.a, 'cc'),
  },
  {
    name: 'MID_MALFORMED',
    description: 'Message-ID is not <left@right>',
    test: (c) => {
      const v = c.a.headers.find((h) => h.lname === 'message-id')?.raw;
      return v !== undefined && !/^<[^<>@\s]+@[^<>@\s]+>$/.test(v.trim());
    },
  },
  {
    name: 'DATE_INVALID',
    description: 'Date header field cannot be parsed',
    test: (c) => {
      const v = hdr(c.a, 'date');
      return v !== undefined && Number.isNaN(parseDate(v));
    },
  },
  {
    name: 'DATE_BAD_TZ',
    description: 'Date has an impossible time zone offset',
    test: (c) => {
      const v = hdr(c.a, 'date');
      const m = v ? /\s([+-])(\d\d)(\d\d)\b/.exec(v) : null;
      if (!m) return false;
      const hh = Number(m[2]), mm = Number(m[3]);
      return hh > 14 || (mm !== 0 && mm !== 30 && mm !== 45);
    },
  },
  {
    name: 'DATE_IN_FUTURE',
    description: 'Date is more than 12 hours after arrival',
    test: (c) => {
      const v = hdr(c.a, 'date');
      const t = v ? parseDate(v) : NaN;
      return !Number.isNaN(t) && t - c.now > 12 * 3600e3;
    },
  },
  {
    name: 'DATE_IN_PAST',
    description: 'Date is more than 96 hours before arrival',
    test: (c) => {
      const v = hdr(c.a, 'date');
      const t = v ? parseDate(v) : NaN;
      return !Number.isNaN(t) && c.now - t > 96 * 3600e3;
    },
  },
  {
    name: 'FROM_REPLYTO_DIFF',
    description: 'Reply-To domain differs from From domain',
    test: (c) => {
      const rt = hdr(c.a, 'reply-to');
      if (rt === undefined) return false;
      const fd = domainOf(addressOf(c.a.from));
      const rd = domainOf(addressOf(rt));
      return !!fd && !!rd && registrableDomain(fd) !== registrableDomain(rd);
    },
  },
  {
    name: 'FROM_NAME_ADDR_DIFF',
    description: 'From display name shows an address of another domain',
    test: (c) => {
      const v = c.a.from;
      const addr = addressOf(v);
      const name = v.replace(/<[^>]*>\s*$/, '');
      const shown = /([^\s<>"'@]+@([a-z0-9.-]+\.[a-z]{2,}))/i.exec(name)?.[2]?.toLowerCase();
      const real = domainOf(addr);
      return !!shown && !!real && registrableDomain(shown) !== registrableDomain(real);
    },
  },
  {
    name: 'FROM_NO_ADDRESS',
    description: 'From has no parsable address',
    test: (c) => has(c.a, 'from') && !addressOf(c.a.from),
  },
  {
    name: 'FROM_LOCAL_DIGITS',
    description: 'From local part has a long digit run',
    test: (c) => /\d{5,}[^@]*@/.test(addressOf(c.a.from) ?? ''),
  },
  {
    name: 'FREEMAIL_FORGED',
    description: 'From or Message-ID names a big mailbox provider the message never passed through',
    test: (c) => {
      if (c.session?.authenticated) return false; // our own user, sending as their other address
      // A mailing list or news gateway relays posts made on its web pages: not forged.
      if (c.a.headers.some((h) => LIST_FIELDS.has(h.lname))) return false;
      const mid = /@([^<>@\s]+)>\s*$/.exec(hdr(c.a, 'message-id') ?? '')?.[1];
      const doms = [domainOf(addressOf(c.a.from)), mid?.toLowerCase()].filter((d): d is string => !!d).map(registrableDomain);
      const providers = PROVIDERS.filter((p) => doms.some((d) => p.domains.test(d)));
      if (!providers.length) return false;
      const rcvd = receivedText(c);
      return providers.some((p) => !p.relays.test(rcvd));
    },
  },
  {
    name: 'FREEMAIL_REPLYTO',
    description: 'Replies go to a free mailbox of another domain than From',
    test: (c) => {
      const rt = hdr(c.a, 'reply-to');
      if (rt === undefined) return false;
      const rd = domainOf(addressOf(rt));
      const fd = domainOf(addressOf(c.a.from));
      return !!rd && FREEMAIL.test(registrableDomain(rd)) && (!fd || registrableDomain(fd) !== registrableDomain(rd));
    },
  },
  {
    name: 'TO_UNDISCLOSED',
    bulk: true,
    description: 'To is undisclosed-recipients or an empty group',
    test: (c) => /undisclosed|^\s*[^:@<>]*:\s*;\s*$/i.test(hdr(c.a, 'to') ?? ''),
  },
  {
    name: 'TO_MANY',
    bulk: true,
    description: 'More than 10 recipients in To/Cc',
    test: (c) => ((hdr(c.a, 'to') ?? '') + ',' + (hdr(c.a, 'cc') ?? '')).split('@').length - 1 > 10,
  },
  {
    name: 'SUBJ_SHOUT',
    bulk: true,
    description: 'Subject is mostly upper case',
    test: (c) => {
      const letters = c.a.subject.replace(/^\s*((re|fw|fwd|aw)\s*:\s*)+/i, '').replace(/[^\p{L}]/gu, '');
      if (letters.length < 10) return false;
      const upper = letters.replace(/[^\p{Lu}]/gu, '').length;
      return upper / letters.length >= 0.75;
    },
  },
  {
    name: 'SUBJ_EXCLAIM',
    bulk: true,
    description: 'Subject has !! or $$ or ends with !',
    test: (c) => /!!|\$\$|!\s*$/.test(c.a.subject),
  },
  {
    name: 'SUBJ_TRAILING_ID',
    description: 'Subject ends in a random-looking id after spacing',
    test: (c) => {
      const s = c.a.subject.trimEnd();
      if (/\S\s{3,}\S+$/.test(s)) return true;
      const last = /\s[#(\[-]?([A-Za-z0-9]{5,})[)\]]?$/.exec(s)?.[1];
      return !!last && /\d/.test(last) && /[a-z]/i.test(last);
    },
  },
  {
    name: 'SUBJ_FAKE_REPLY',
    description: 'Subject starts with Re: but there is no In-Reply-To or References',
    test: (c) => /^\s*re\s*:/i.test(c.a.subject) && !has(c.a, 'in-reply-to') && !has(c.a, 'references'),
  },
  {
    name: 'SUBJ_ADV',
    description: 'Subject carries the ADV: label of unsolicited advertising',
    // Several US states (California B&P 17538.4 and others, from 1998) required unsolicited
    // commercial e-mail to start its Subject with "ADV:"; opt-in newsletters do not.
    test: (c) => /^\s*(\[[^\]]{1,40}\]\s*)?(adv\s*[:\-]|\[adv\])/i.test(c.a.subject),
  },
  {
    name: 'SUBJ_SPAM_TOPIC',
    description: "Subject names one of spam's staple products (drugs, sex, debt, get-rich, address lists)",
    test: (c) =>
      /\b(viagra|cialis|phentermine|penis|penile|enlarge(ment)?|porn\w*|xxx|sluts?|horny|refinanc\w*|mortgage rates?|debt[- ]free|lose weight|weight loss|diet pills?|work (from|at) home|home[- ]based business|make money|earn (extra )?(\$|money|cash)|e-?mail addresses|bulk e-?mail|get paid to)\b/i.test(
        c.a.subject,
      ),
  },
  {
    name: 'HEADER_8BIT',
    description: 'Unencoded 8-bit characters in header fields',
    test: (c) => c.a.msg.anomalies.has('raw-8bit-header'),
  },
  {
    name: 'XMAILER_RANDOM',
    description: 'X-Mailer looks like a random string',
    test: (c) => {
      const v = hdr(c.a, 'x-mailer')?.trim();
      return !!v && v.length >= 8 && !/\s/.test(v) && /\d/.test(v) && /[a-z]/.test(v) && /[A-Z]/.test(v) && !/[./(]/.test(v);
    },
  },
  {
    name: 'PRIORITY_HIGH',
    bulk: true,
    description: 'Message claims high priority',
    test: (c) => /^\s*1\b/.test(hdr(c.a, 'x-priority') ?? '') || /high/i.test(hdr(c.a, 'x-msmail-priority') ?? ''),
  },
  {
    name: 'FORGED_OUTLOOK_MID',
    description: 'Claims Outlook but the Message-ID is not Outlook-made',
    test: (c) => {
      const xm = hdr(c.a, 'x-mailer') ?? '';
      if (!/Microsoft Outlook|Outlook Express/i.test(xm)) return false;
      const mid = hdr(c.a, 'message-id') ?? '';
      return !/\$[0-9a-f]+\$|@[a-z0-9-]+(\.[a-z0-9-]+)+>|^<[0-9a-f]{16,}@/i.test(mid) && !/\$/.test(mid);
    },
  },
  {
    name: 'MIME_NO_VERSION',
    description: 'MIME structure without MIME-Version',
    test: (c) => !has(c.a, 'mime-version') && (c.a.msg.root.type.startsWith('multipart/') || c.a.msg.root.encoding === 'base64' || c.a.msg.root.encoding === 'quoted-printable'),
  },
  // Body and MIME structure.
  {
    name: 'MIME_HTML_ONLY',
    bulk: true,
    description: 'HTML without a plain-text alternative',
    test: (c) => c.a.texts.some((t) => t.html) && !c.a.texts.some((t) => !t.html && t.text.trim().length > 0),
  },
  {
    name: 'HTML_IMAGE_ONLY',
    bulk: true,
    description: 'HTML with images and under 300 characters of text',
    test: (c) => c.a.texts.some((t) => t.html && t.html.images > 0) && c.a.body.replace(/\s+/g, '').length < 300,
  },
  {
    name: 'HTML_HIDDEN_TEXT',
    description: 'HTML hides text from the reader',
    test: (c) => c.a.texts.some((t) => t.html && t.html.hidden.replace(/\s+/g, '').length > 20),
  },
  {
    name: 'HTML_COMMENT_SPLIT',
    description: 'HTML comments split words (filter evasion)',
    test: (c) => c.a.texts.some((t) => t.html && t.html.commentSplit > 0),
  },
  {
    name: 'HTML_FONT_HUGE',
    bulk: true,
    description: 'HTML uses huge fonts',
    test: (c) => c.a.texts.some((t) => t.html && t.html.hugeFont > 0),
  },
  {
    name: 'HTML_FORM',
    bulk: true,
    description: 'HTML contains a form',
    test: (c) => c.a.texts.some((t) => t.html?.tags.has('form')),
  },
  {
    name: 'HTML_SCRIPT',
    bulk: true,
    description: 'HTML contains script',
    test: (c) => c.a.texts.some((t) => t.html?.tags.has('script') || t.html?.tags.has('iframe')),
  },
  {
    name: 'MIME_BASE64_TEXT',
    bulk: true,
    description: 'Text part encoded in base64',
    test: (c) => c.a.texts.some((t) => t.part.encoding === 'base64' && t.part.type.startsWith('text/')),
  },
  {
    name: 'MIME_QP_LONG_LINE',
    bulk: true,
    description: 'Quoted-printable line longer than 76 characters',
    test: (c) => c.a.msg.anomalies.has('qp-long-line'),
  },
  {
    name: 'MIME_BAD_STRUCTURE',
    description: 'Broken MIME structure (boundaries, base64, header block)',
    test: (c) => ['missing-boundary', 'unclosed-multipart', 'bad-base64', 'too-deep', 'too-many-parts'].some((x) => c.a.msg.anomalies.has(x as never)),
  },
  {
    name: 'MIME_NO_TEXT',
    description: 'No text part at all',
    test: (c) => c.a.texts.length === 0,
  },
  {
    name: 'CHARSET_ODD',
    description: 'Charset missing, unknown or wrong for the bytes',
    test: (c) => ['unknown-charset', 'ascii-8bit', 'invalid-utf8', 'undeclared-8bit', 'bad-encoded-word'].some((x) => c.a.msg.anomalies.has(x as never)),
  },
  // Spam's own formulae in the text.
  {
    name: 'SPAM_DISCLAIMER',
    description: 'Text claims it is not spam or cites a spam "law" (S. 1618)',
    // 2002-era spam cited the never-enacted Senate bill S. 1618 (Murkowski) to claim it could
    // not be spam; a subscribed newsletter has no reason to argue that it is not spam.
    test: (c) =>
      /\bs\.?\s?1618\b|\bbill\s+1618\b|\b(this|the)\s+(e-?mail|message|letter|mailing)\s+(is|was)\s+(not|never)\s+(a\s+)?(spam|unsolicited)\b|\b(cannot|can ?not|should not|may not)\s+be\s+considered\s+(spam|unsolicited)\b|\bthis\s+is\s+not\s+(a\s+)?spam\b/i.test(
        c.a.body,
      ),
  },
  {
    name: 'ADVANCE_FEE',
    description: 'Advance-fee fraud (419) formulae',
    test: (c) => {
      let n = 0;
      for (const r of ADVANCE_FEE) if (r.test(c.a.body) && ++n >= 3) return true;
      return false;
    },
  },
  // Links.
  {
    name: 'URI_IP',
    description: 'Link to a numeric IP address',
    test: (c) => c.a.urls.some((u) => u.ip && u.source !== 'img'),
  },
  {
    name: 'URI_USERINFO',
    description: 'Link with user@ before the host (display trick)',
    test: (c) => c.a.urls.some((u) => u.userinfo && !u.url.toLowerCase().startsWith('mailto:')),
  },
  {
    name: 'URI_ENCODED_HOST',
    description: 'Link host is %-encoded',
    test: (c) => c.a.urls.some((u) => u.encodedHost),
  },
  {
    name: 'URI_TEXT_MISMATCH',
    description: 'Link text shows another domain than the link goes to',
    test: (c) =>
      c.a.urls.some((u) => {
        if (u.source !== 'a' || !u.text || u.url.toLowerCase().startsWith('mailto:')) return false;
        const m = /(?:https?:\/\/)?((?:[a-z0-9-]+\.)+[a-z]{2,})(?:[/:\s]|$)/i.exec(u.text);
        if (!m || !/^(https?:\/\/|www\.)/i.test(u.text.trim())) return false;
        return registrableDomain(m[1]!.toLowerCase()) !== u.domain;
      }),
  },
  {
    name: 'URI_SHORTENER',
    description: 'Link through a URL shortener',
    test: (c) => c.a.urls.some((u) => SHORTENERS.has(u.host) || SHORTENERS.has(u.domain)),
  },
  // Attachments.
  {
    name: 'ATTACH_EXECUTABLE',
    description: 'Executable attachment name',
    test: (c) => c.a.attachments.some((x) => EXEC_EXT.test(x.filename.trim().replace(/["']/g, ''))),
  },
];

export const RULE_NAMES = RULES.map((r) => r.name);

/** Names of the rules that hit. */
export function runRules(c: RuleContext, rules: Rule[] = RULES): string[] {
  const hits: string[] = [];
  for (const r of rules) {
    try {
      if (r.test(c)) hits.push(r.name);
    } catch {
      // A rule must never break a scan; a throwing rule simply does not hit.
    }
  }
  return hits;
}
