// RFC 5322 header fields as a DKIM signer needs them: the field name, the domain of the first
// mailbox in From:, and the signer's header list (-h).
//
// The address parser mirrors filter-dkimsign's mheader.c (Martijn van Duren, revision 74 / Debian
// 0.5) one ABNF production per function, because our domain choice must equal the C filter's for
// the same From: field. Each function takes the text and a position and returns the position
// after the match; with `optional` it returns the same position when nothing matches, without it
// NONE. Positions at or past the end read as NUL, like the C string terminator. Deliberate quirks
// of mheader.c kept for parity are marked "as mheader.c".

/** No match (mheader.c's NULL). */
const NONE = -1;

type Pos = number;

function at(s: string, p: Pos): number {
  return p < s.length ? s.charCodeAt(p) : 0;
}

function fail(start: Pos, optional: boolean): Pos {
  return optional ? start : NONE;
}

// ---- RFC 5234 core rules -------------------------------------------------------------------

function sp(s: string, p: Pos, optional: boolean): Pos {
  return at(s, p) === 0x20 ? p + 1 : fail(p, optional);
}

function htab(s: string, p: Pos, optional: boolean): Pos {
  return at(s, p) === 0x09 ? p + 1 : fail(p, optional);
}

function wsp(s: string, p: Pos, optional: boolean): Pos {
  const q = sp(s, p, false);
  if (q !== NONE) return q;
  const r = htab(s, p, false);
  if (r !== NONE) return r;
  return fail(p, optional);
}

function crlf(s: string, p: Pos, optional: boolean): Pos {
  return at(s, p) === 13 && at(s, p + 1) === 10 ? p + 2 : fail(p, optional);
}

function vchar(s: string, p: Pos, optional: boolean): Pos {
  const c = at(s, p);
  return c >= 0x21 && c <= 0x7e ? p + 1 : fail(p, optional);
}

function lf(s: string, p: Pos, optional: boolean): Pos {
  return at(s, p) === 0x0a ? p + 1 : fail(p, optional);
}

function cr(s: string, p: Pos, optional: boolean): Pos {
  return at(s, p) === 0x0d ? p + 1 : fail(p, optional);
}

function alpha(s: string, p: Pos, optional: boolean): Pos {
  const c = at(s, p);
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ? p + 1 : fail(p, optional);
}

function digit(s: string, p: Pos, optional: boolean): Pos {
  const c = at(s, p);
  return c >= 0x30 && c <= 0x39 ? p + 1 : fail(p, optional);
}

function dquote(s: string, p: Pos, optional: boolean): Pos {
  return at(s, p) === 0x22 ? p + 1 : fail(p, optional);
}

// ---- RFC 5322 §3.2.2 folding white space and comments (and §4.2 obs-FWS) -------------------

function skipWsps(s: string, p: Pos): Pos {
  let q: Pos;
  while ((q = wsp(s, p, false)) !== NONE) p = q;
  return p;
}

function obsFws(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  p = wsp(s, p, false);
  if (p === NONE) return fail(start, optional);
  let prev = skipWsps(s, p);
  for (;;) {
    p = crlf(s, prev, false);
    if (p === NONE) return prev;
    p = wsp(s, p, false);
    if (p === NONE) return prev;
    prev = skipWsps(s, p);
  }
}

function fws(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  const prev = skipWsps(s, p);
  // as mheader.c: without a CRLF after the leading WSP, start over from the beginning
  let q = crlf(s, prev, true);
  if (q === prev) q = start;
  q = wsp(s, q, false);
  if (q === NONE) return obsFws(s, start, optional);
  return skipWsps(s, q);
}

function obsNoWsCtl(s: string, p: Pos, optional: boolean): Pos {
  const c = at(s, p);
  return (c >= 1 && c <= 8) || c === 11 || c === 12 || (c >= 14 && c <= 31) || c === 127
    ? p + 1
    : fail(p, optional);
}

function ctext(s: string, p: Pos, optional: boolean): Pos {
  const c = at(s, p);
  if ((c >= 33 && c <= 39) || (c >= 42 && c <= 91) || (c >= 93 && c <= 126)) return p + 1;
  const q = obsNoWsCtl(s, p, false); // obs-ctext
  if (q !== NONE) return q;
  return fail(p, optional);
}

function obsQp(s: string, p: Pos, optional: boolean): Pos {
  if (at(s, p) === 0x5c) {
    let q = obsNoWsCtl(s, p + 1, false);
    if (q === NONE) q = lf(s, p + 1, false);
    if (q === NONE) q = cr(s, p + 1, false);
    if (q !== NONE) return q;
  }
  return fail(p, optional);
}

function quotedPair(s: string, p: Pos, optional: boolean): Pos {
  if (at(s, p) === 0x5c) {
    let q = vchar(s, p + 1, false);
    if (q === NONE) q = wsp(s, p + 1, false);
    if (q !== NONE) return q;
  }
  return obsQp(s, p, optional);
}

function ccontent(s: string, p: Pos, optional: boolean): Pos {
  let q = ctext(s, p, false);
  if (q !== NONE) return q;
  q = quotedPair(s, p, false);
  if (q !== NONE) return q;
  q = comment(s, p, false);
  if (q !== NONE) return q;
  return fail(p, optional);
}

function comment(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  if (at(s, p) !== 0x28) return fail(start, optional);
  p++;
  for (;;) {
    p = fws(s, p, true);
    if (at(s, p) === 0x29) return p + 1;
    p = ccontent(s, p, false);
    if (p === NONE) return fail(start, optional);
  }
}

function cfws(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  for (;;) {
    p = fws(s, p, true);
    const q = comment(s, p, false);
    if (q === NONE) break;
    p = q;
  }
  return p === start && !optional ? NONE : p;
}

// ---- RFC 5322 §3.2.3 atoms and §3.2.4 quoted strings ---------------------------------------

const ATEXT_SPECIALS = new Set("!#$%&'*+-/=?^_`{|}~".split('').map((c) => c.charCodeAt(0)));

function atext(s: string, p: Pos, optional: boolean): Pos {
  if (alpha(s, p, false) !== NONE || digit(s, p, false) !== NONE) return p + 1;
  return ATEXT_SPECIALS.has(at(s, p)) ? p + 1 : fail(p, optional);
}

function skipAtexts(s: string, p: Pos): Pos {
  let q: Pos;
  while ((q = atext(s, p, false)) !== NONE) p = q;
  return p;
}

function atom(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  p = atext(s, cfws(s, p, true), false);
  if (p === NONE) return fail(start, optional);
  return cfws(s, skipAtexts(s, p), true);
}

function dotAtomText(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  p = atext(s, p, false);
  if (p === NONE) return fail(start, optional);
  let prev = (p = skipAtexts(s, p));
  while (at(s, p) === 0x2e) {
    p = atext(s, p + 1, false);
    if (p === NONE) return prev; // "a." stops before the dot
    prev = p = skipAtexts(s, p);
  }
  return p;
}

function dotAtom(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  p = dotAtomText(s, cfws(s, p, true), false);
  if (p === NONE) return fail(start, optional);
  return cfws(s, p, true);
}

function qtext(s: string, p: Pos, optional: boolean): Pos {
  const c = at(s, p);
  if (c === 33 || (c >= 35 && c <= 91) || (c >= 93 && c <= 126)) return p + 1;
  const q = obsNoWsCtl(s, p, false); // obs-qtext
  if (q !== NONE) return q;
  return fail(p, optional);
}

function qcontent(s: string, p: Pos, optional: boolean): Pos {
  const q = qtext(s, p, false);
  if (q !== NONE) return q;
  return quotedPair(s, p, optional);
}

function quotedString(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  p = dquote(s, cfws(s, p, true), false);
  if (p === NONE) return fail(start, optional);
  let prev = p;
  for (;;) {
    p = qcontent(s, fws(s, p, true), false);
    if (p === NONE) break;
    prev = p;
  }
  // as mheader.c: FWS just before the closing DQUOTE is not accepted
  p = dquote(s, prev, false);
  if (p === NONE) return fail(start, optional);
  return cfws(s, p, true);
}

function word(s: string, p: Pos, optional: boolean): Pos {
  const q = atom(s, p, false);
  if (q !== NONE) return q;
  return quotedString(s, p, optional);
}

function obsPhrase(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  p = word(s, p, false);
  if (p === NONE) return fail(start, optional);
  for (;;) {
    const prev = p;
    let q = word(s, p, false);
    if (q !== NONE) {
      p = q;
      continue;
    }
    if (at(s, prev) === 0x2e) {
      p = prev + 1;
      continue;
    }
    q = cfws(s, prev, false);
    if (q !== NONE) {
      p = q;
      continue;
    }
    return prev;
  }
}

/** RFC 5322 phrase; obs-phrase is a superset, so (as mheader.c) only that is parsed. */
function phrase(s: string, p: Pos, optional: boolean): Pos {
  return obsPhrase(s, p, optional);
}

// ---- RFC 5322 §3.4.1 addr-spec -------------------------------------------------------------

function obsLocalPart(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  p = word(s, p, false);
  if (p === NONE) return fail(start, optional);
  let prev = p;
  while (at(s, p) === 0x2e) {
    p = word(s, p + 1, false);
    if (p === NONE) return prev;
    prev = p;
  }
  return p;
}

function localPart(s: string, p: Pos, optional: boolean): Pos {
  let q = dotAtom(s, p, false);
  if (q !== NONE) return q;
  q = quotedString(s, p, false);
  if (q !== NONE) return q;
  return obsLocalPart(s, p, optional);
}

function obsDtext(s: string, p: Pos, optional: boolean): Pos {
  const q = obsNoWsCtl(s, p, false);
  if (q !== NONE) return q;
  return quotedPair(s, p, optional);
}

function dtext(s: string, p: Pos, optional: boolean): Pos {
  const c = at(s, p);
  if ((c >= 33 && c <= 90) || (c >= 94 && c <= 126)) return p + 1;
  return obsDtext(s, p, optional);
}

function domainLiteral(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  p = cfws(s, p, true);
  if (at(s, p) !== 0x5b) return fail(start, optional);
  p++;
  for (;;) {
    p = fws(s, p, true);
    const q = dtext(s, p, false);
    if (q === NONE) break;
    p = q;
  }
  if (at(s, p) !== 0x5d) return fail(start, optional);
  // as mheader.c: the result stays on the "]" (so a literal's domain text lacks it)
  return cfws(s, p, true);
}

function obsDomain(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  p = atom(s, p, false);
  if (p === NONE) return fail(start, optional);
  let prev = p;
  for (;;) {
    if (at(s, p) !== 0x2e) return prev;
    p = atom(s, p + 1, false);
    if (p === NONE) return prev;
    prev = p;
  }
}

function domain(s: string, p: Pos, optional: boolean): Pos {
  let q = dotAtom(s, p, false);
  if (q !== NONE) return q;
  q = domainLiteral(s, p, false);
  if (q !== NONE) return q;
  return obsDomain(s, p, optional);
}

function addrSpec(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  p = localPart(s, p, false);
  if (p === NONE || at(s, p) !== 0x40) return fail(start, optional);
  p = domain(s, p + 1, false);
  if (p === NONE) return fail(start, optional);
  return p;
}

// ---- RFC 5322 §3.4 name-addr, angle-addr and §4.4 obs-route --------------------------------

function obsDomainList(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  let prev = p;
  for (;;) {
    if (at(s, p) === 0x2c) {
      prev = ++p;
      continue;
    }
    const q = cfws(s, p, false);
    if (q !== NONE) {
      prev = p = q;
      continue;
    }
    break;
  }
  p = prev;
  if (at(s, p) !== 0x40) return fail(start, optional);
  p = domain(s, p + 1, false);
  if (p === NONE) return fail(start, optional);
  for (;;) {
    if (at(s, p) !== 0x2c) break;
    p = cfws(s, p + 1, true);
    if (at(s, p) !== 0x40) continue;
    const q = domain(s, p + 1, false);
    if (q === NONE) break;
    p = q;
  }
  return p;
}

function obsRoute(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  p = obsDomainList(s, p, false);
  if (p === NONE || at(s, p) !== 0x3a) return fail(start, optional);
  return p + 1;
}

function obsAngleAddr(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  p = cfws(s, p, true);
  if (at(s, p) !== 0x3c) return fail(start, optional);
  p = obsRoute(s, p + 1, false);
  if (p === NONE) return fail(start, optional);
  p = addrSpec(s, p, false);
  if (p === NONE || at(s, p) !== 0x3e) return fail(start, optional);
  return cfws(s, p + 1, true);
}

function angleAddr(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  p = cfws(s, p, true);
  if (at(s, p) !== 0x3c) return obsAngleAddr(s, start, optional);
  p = addrSpec(s, p + 1, false);
  if (p === NONE || at(s, p) !== 0x3e) return obsAngleAddr(s, start, optional);
  return cfws(s, p + 1, true);
}

function displayName(s: string, p: Pos, optional: boolean): Pos {
  return phrase(s, p, optional);
}

function nameAddr(s: string, p: Pos, optional: boolean): Pos {
  const start = p;
  p = angleAddr(s, displayName(s, p, true), false);
  return p === NONE ? fail(start, optional) : p;
}

/**
 * The domain of the first mailbox of a From: field value (the text after "From:"), as
 * mheader.c's osmtpd_mheader_from_domain returns it: the raw text of the `domain` production,
 * which keeps surrounding CFWS (so `a@example.org (x)` gives "example.org (x)", which then
 * matches no -d) and lacks the "]" of a domain literal. Leading obs-mbox-list commas are
 * skipped; group syntax and unparsable values give null.
 */
export function fromDomain(value: string): string | null {
  try {
    let p = 0;
    for (;;) {
      const q = cfws(value, p, true);
      if (at(value, q) !== 0x2c) break;
      p = q + 1;
    }
    if (nameAddr(value, p, false) !== NONE) {
      p = cfws(value, displayName(value, p, true), true) + 1; // past "<"
      // mheader.c dereferences NULL here when the angle-addr has an obs-route
      // ("<@relay:a@b>") and the C filter crashes; we report "no domain" instead.
      p = localPart(value, p, false);
      if (p === NONE) return null;
    } else if (addrSpec(value, p, false) !== NONE) {
      p = localPart(value, p, false);
    } else {
      return null;
    }
    const end = domain(value, p + 1, false); // past "@"
    return end === NONE ? null : value.slice(p + 1, end);
  } catch (e) {
    if (e instanceof RangeError) return null; // comments nested deeper than the stack
    throw e;
  }
}

/** ASCII-only lower case (C locale tolower): 8-bit bytes are left alone. */
export function lowerAscii(s: string): string {
  // toLowerCase is ASCII-exact on ASCII text and much cheaper than a replace callback
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(s) ? s.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : s.toLowerCase();
}

/**
 * The -d domain matching a From: domain: exact match first, then each parent (a.b.example.org,
 * b.example.org, example.org, org), compared case-insensitively; null when none matches. The
 * entry of `domains` is returned as given.
 */
export function matchDomain(mailDomain: string, domains: readonly string[]): string | null {
  const wanted = domains.map(lowerAscii);
  let d: string | null = lowerAscii(mailDomain);
  while (d !== null && d !== '') {
    const i = wanted.indexOf(d);
    if (i >= 0) return domains[i]!;
    const dot = d.indexOf('.');
    d = dot < 0 ? null : d.slice(dot + 1);
  }
  return null;
}

/**
 * The signing domain for one or more From: field values (top to bottom): the first value whose
 * mailbox domain matches a -d domain (exactly or by parent), else the first -d domain.
 */
export function chooseDomain(from: string | readonly string[], domains: readonly string[]): string {
  if (domains.length === 0) throw new Error('chooseDomain: no domains');
  for (const value of typeof from === 'string' ? [from] : from) {
    const d = fromDomain(value);
    const m = d === null ? null : matchDomain(d, domains);
    if (m !== null) return m;
  }
  return domains[0]!;
}

// ---- field names and the -h header list ----------------------------------------------------

/**
 * The field name of a header line as the C filter matches it against -h: the text before the
 * first ":", without trailing SP/HTAB, lower-cased (ASCII); null for a line without ":" (not a
 * field) or a continuation line.
 */
export function fieldName(line: string): string | null {
  const c = line.charCodeAt(0);
  if (c === 0x20 || c === 0x09) return null;
  const colon = line.indexOf(':');
  if (colon < 0) return null;
  let end = colon;
  while (end > 0 && (line.charCodeAt(end - 1) === 0x20 || line.charCodeAt(end - 1) === 0x09)) end--;
  return lowerAscii(line.slice(0, end));
}

/**
 * How a listed header is signed. `sign`: every occurrence, bottom-up, none if absent (the C
 * filter). `always` (rspamd's "(o)"): every occurrence plus one more, so a header added later
 * breaks the signature, and listed once even when absent. `present` (rspamd's "(x)"): like
 * always when the header occurs, not listed when absent.
 */
export type Oversign = 'sign' | 'always' | 'present';

export interface HeaderSpec {
  name: string; // lower case
  mode: Oversign;
}

/** RFC 6376 §5.4.1's recommended list, in filter-dkimsign's order (its default for -h). */
export const DEFAULT_SIGNED_HEADERS: readonly string[] = [
  'from', 'reply-to', 'subject', 'date', 'to', 'cc', 'resent-date', 'resent-from', 'resent-to',
  'resent-cc', 'in-reply-to', 'references', 'list-id', 'list-help', 'list-unsubscribe',
  'list-subscribe', 'list-post', 'list-owner', 'list-archive',
];

/**
 * Our default oversigning (RFC 6376 §5.4.2, §8.15), in rspamd's notation:
 * - "(o)" always for From, To, Cc, Subject, Reply-To: the fields a reader sees and acts on;
 *   adding a Reply-To or a Cc to a signed message must break it even when it had none.
 * - "(x)" only when present for Date, Message-ID, MIME-Version, Content-Type, In-Reply-To,
 *   References: smtpd itself adds Date: and Message-ID: *after* the filters when they are
 *   missing (submission and local listeners), and MTAs and list managers add MIME headers and
 *   threading headers to mail that lacks them; "(o)" would make those legitimate additions
 *   break our own signature.
 */
export const DEFAULT_OVERSIGN: readonly HeaderSpec[] = [
  { name: 'from', mode: 'always' },
  { name: 'to', mode: 'always' },
  { name: 'cc', mode: 'always' },
  { name: 'subject', mode: 'always' },
  { name: 'reply-to', mode: 'always' },
  { name: 'date', mode: 'present' },
  { name: 'message-id', mode: 'present' },
  { name: 'mime-version', mode: 'present' },
  { name: 'content-type', mode: 'present' },
  { name: 'in-reply-to', mode: 'present' },
  { name: 'references', mode: 'present' },
];

const MODE_RANK: Record<Oversign, number> = { sign: 0, present: 1, always: 2 };

function addSpec(list: HeaderSpec[], spec: HeaderSpec): void {
  const old = list.find((h) => h.name === spec.name);
  if (old === undefined) list.push({ ...spec });
  else if (MODE_RANK[spec.mode] > MODE_RANK[old.mode]) old.mode = spec.mode;
}

/**
 * Parse -h: colon-separated field names, characters 33–126 only, no empty name, lower-cased,
 * `from` required (filter-dkimsign's rules). Our extension: a name may be prefixed by "(o)" or
 * "(x)" (rspamd's oversigning modes). A repeated name is signed once (as the C filter), with
 * the stronger mode. Throws an Error with a one-line message.
 */
export function parseHeaderList(s: string): HeaderSpec[] {
  if (s === '') throw new Error('-h: header can\'t be empty');
  const list: HeaderSpec[] = [];
  for (const raw of s.split(':')) {
    if (raw === '') throw new Error('-h: header can\'t be empty');
    for (let i = 0; i < raw.length; i++) {
      const c = raw.charCodeAt(i);
      if (c < 33 || c > 126) throw new Error('-h: invalid character');
    }
    let name = lowerAscii(raw);
    let mode: Oversign = 'sign';
    if (name.startsWith('(o)')) mode = 'always';
    else if (name.startsWith('(x)')) mode = 'present';
    if (mode !== 'sign') name = name.slice(3);
    if (name === '') throw new Error('-h: header can\'t be empty');
    addSpec(list, { name, mode });
  }
  if (!list.some((h) => h.name === 'from')) throw new Error('From header must be included');
  return list;
}

/** The default -h list, each name signed as the C filter does (no oversigning). */
export function defaultHeaderList(): HeaderSpec[] {
  return DEFAULT_SIGNED_HEADERS.map((name) => ({ name, mode: 'sign' as const }));
}

/** `list` with oversigning added: names already listed get the stronger mode, others are added. */
export function withOversigning(
  list: readonly HeaderSpec[],
  oversign: readonly HeaderSpec[] = DEFAULT_OVERSIGN,
): HeaderSpec[] {
  const out = list.map((h) => ({ ...h }));
  for (const h of oversign) addSpec(out, h);
  return out;
}

/** The -h text for a list (round-trips through parseHeaderList). */
export function formatHeaderList(list: readonly HeaderSpec[]): string {
  return list
    .map((h) => (h.mode === 'always' ? '(o)' : h.mode === 'present' ? '(x)' : '') + h.name)
    .join(':');
}
