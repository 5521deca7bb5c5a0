// Verdict header fields, in SpamAssassin's and filter-rspamd's dialects, and the rule for
// removing incoming X-Spam* fields so a sender cannot forge our verdict.
//
// Header lines are returned without line ends; a folded field continues on lines that
// start with a TAB (RFC 5322 §2.2.3). Lines are kept under 78 characters where the content
// allows and never reach 998 (RFC 5322 §2.1.1); symbol names are sanitised to [A-Z0-9_]
// and at most 64 characters, so no single unbreakable piece is long.

import type { ScanResult } from './types.js';

export type Dialect = 'spamassassin' | 'rspamd';

const FOLD_AT = 78;
const MAX_NAME = 64;

function symName(n: string): string {
  return n.toUpperCase().replace(/[^A-Z0-9_]/g, '_').slice(0, MAX_NAME) || 'UNNAMED';
}

/** True when the verdict counts as spam for the headers (score reached "required"). */
export function isSpamVerdict(r: ScanResult): boolean {
  return r.action === 'add header' || r.action === 'rewrite subject' || r.action === 'reject' || r.score >= r.required;
}

/**
 * Fold "Name: piece piece ..." greedily: `pieces` are joined with `sep`; a line break may be
 * placed between two pieces (the separator's trailing space, if any, is dropped there).
 */
export function foldField(name: string, pieces: string[], sep = ' '): string[] {
  const lines: string[] = [];
  let cur = name + ':';
  let first = true;
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    const joiner = first ? ' ' : sep;
    if (!first && cur.length + joiner.length + p.length > FOLD_AT) {
      lines.push(cur + joiner.trimEnd());
      cur = '\t' + p;
    } else cur += joiner + p;
    first = false;
  }
  lines.push(cur);
  return lines;
}

function fmt(x: number, d: number): string {
  return (Math.round(x * 10 ** d) / 10 ** d).toFixed(d);
}

export interface RenderOptions {
  /** Reject threshold, shown as filter-rspamd's "required" (rspamd's required_score). */
  reject?: number | null;
}

/** SpamAssassin: X-Spam-Flag (spam only), X-Spam-Level (stars, if any), X-Spam-Status. */
export function renderSpamAssassin(r: ScanResult): string[] {
  const spam = isSpamVerdict(r);
  const out: string[] = [];
  if (spam) out.push('X-Spam-Flag: YES');
  const stars = Math.min(50, Math.max(0, Math.floor(r.score)));
  if (stars > 0) out.push('X-Spam-Level: ' + '*'.repeat(stars));
  const names = r.symbols.filter((s) => s.score !== 0).map((s) => symName(s.name)).sort();
  // "tests=" rides on the first name; names are separated by commas, a fold may follow any comma.
  const tests = names.length ? names.map((n, i) => (i === 0 ? 'tests=' + n : n)) : ['tests=none'];
  const head = [spam ? 'Yes,' : 'No,', `score=${fmt(r.score, 1)}`, `required=${fmt(r.required, 1)}`];
  // Build with two separators: spaces between head pieces, commas inside tests.
  const pieces: string[] = [...head];
  const lines = foldField('X-Spam-Status', pieces);
  let cur = lines.pop()!;
  for (let i = 0; i < tests.length; i++) {
    const p = tests[i]! + (i < tests.length - 1 ? ',' : '');
    const joiner = i === 0 ? ' ' : '';
    if (cur.length + joiner.length + p.length > FOLD_AT && cur.trim().length > 0) {
      lines.push(cur);
      cur = '\t' + p;
    } else cur += joiner + p;
  }
  lines.push(cur);
  out.push(...lines);
  return out;
}

/** filter-rspamd: X-Spam: yes, X-Spam-Score: s / r, X-Spam-Status with [SYM=score, ...]. */
export function renderRspamd(r: ScanResult, opt: RenderOptions = {}): string[] {
  if (!isSpamVerdict(r)) return [];
  const req = opt.reject ?? r.required;
  const out = ['X-Spam: yes', `X-Spam-Score: ${fmt(r.score, 1)} / ${fmt(req, 1)}`];
  const syms = [...r.symbols].sort((a, b) => a.name.localeCompare(b.name)).map((s) => `${symName(s.name)}=${fmt(s.score, 3)}`);
  const pieces = ['Yes,', `score=${fmt(r.score, 3)}`, `required=${fmt(req, 3)}`];
  const lines = foldField('X-Spam-Status', pieces);
  let cur = lines.pop()!;
  const list = syms.length ? syms : [];
  lines.push(cur);
  cur = '\ttests=[';
  for (let i = 0; i < list.length; i++) {
    const p = list[i]! + (i < list.length - 1 ? ',' : '');
    const joiner = i === 0 ? '' : ' ';
    if (cur.length + joiner.length + p.length + 1 > FOLD_AT && cur.trim() !== 'tests=[') {
      lines.push(cur);
      cur = '\t' + p;
    } else cur += joiner + p;
  }
  lines.push(cur + ']');
  out.push(...lines);
  return out;
}

export function renderHeaders(r: ScanResult, dialect: Dialect | 'both' = 'spamassassin', opt: RenderOptions = {}): string[] {
  if (dialect === 'spamassassin') return renderSpamAssassin(r);
  if (dialect === 'rspamd') return renderRspamd(r, opt);
  // Both: filter-rspamd's X-Spam/X-Spam-Score plus SpamAssassin's Flag/Level/Status.
  return [...renderRspamd(r, opt).filter((l) => l.startsWith('X-Spam: ') || l.startsWith('X-Spam-Score: ')), ...renderSpamAssassin(r)];
}

/** Subject rewrite (rspamd's default template "***SPAM*** %s"). */
export function rewriteSubject(subject: string, template = '***SPAM*** %s'): string {
  return template.replace('%s', subject);
}

// ---------------------------------------------------------------------------------------
// Removing forged verdicts.

/** Any field whose name starts with "X-Spam" (X-Spam, X-Spam-Flag, X-Spam-Status,
 *  X-Spam-Level, X-Spam-Score, X-Spamd-Result, X-Spam-Report, ...), case-insensitive. */
export function isSpamFieldName(name: string): boolean {
  return /^x-spam/i.test(name.trim());
}

export interface FieldRef {
  name: string;
  /** Unfolded value, for the smtpd exception check. */
  value: string;
}

/**
 * Which of the message's header fields to remove before adding ours: every X-Spam* field the
 * sender wrote. smtpd writes its own Received field before anything the client sends, and its
 * junk mark "X-Spam: Yes" before that Received field when an earlier filter junked the
 * session (smtp_session.c, smtp_message_begin); the filters before us in a chain add their
 * fields above it as well (filter-senderscore's X-SenderScore, filter-rdns's
 * Authentication-Results: so smtpd's mark is not always the very first field). A sender cannot
 * put a field above smtpd's Received field. So X-Spam* fields above the first Received field
 * are smtpd's or the chain's and are kept; from the first Received field on, every X-Spam*
 * field is the sender's and is removed. A message with no Received field at all did not come
 * through smtpd: only a first field "X-Spam: Yes" is trusted there.
 *
 * Returns the indexes to remove, ascending.
 */
export function spamFieldsToRemove(fields: FieldRef[]): number[] {
  const received = fields.findIndex((f) => f.name.trim().toLowerCase() === 'received');
  const trusted = received >= 0 ? received : fields.length > 0 && isSmtpdJunkMark(fields[0]!) ? 1 : 0;
  const out: number[] = [];
  for (let i = trusted; i < fields.length; i++) if (isSpamFieldName(fields[i]!.name)) out.push(i);
  return out;
}

/** Whether smtpd junked the message: its "X-Spam: Yes" among the fields it trusts (above). */
export function smtpdJunked(fields: FieldRef[]): boolean {
  const removed = new Set(spamFieldsToRemove(fields));
  return fields.some((f, i) => !removed.has(i) && isSmtpdJunkMark(f));
}

/** smtpd's own mark: exactly "X-Spam: Yes". */
export function isSmtpdJunkMark(f: FieldRef): boolean {
  return f.name === 'X-Spam' && f.value.trim() === 'Yes';
}

/**
 * The same rule over raw header lines (no line ends, up to but excluding the empty line),
 * as a filter sees data-lines: fields are grouped with their continuation lines and the
 * removed fields' lines are dropped. Returns the kept lines.
 */
export function stripSpamFieldLines(lines: string[]): { kept: string[]; removed: number; smtpdJunk: boolean } {
  const fields: { start: number; end: number; ref: FieldRef }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if ((l.startsWith(' ') || l.startsWith('\t')) && fields.length) {
      const f = fields[fields.length - 1]!;
      f.end = i + 1;
      f.ref.value += l;
      continue;
    }
    const c = l.indexOf(':');
    fields.push({ start: i, end: i + 1, ref: { name: c < 0 ? l : l.slice(0, c), value: c < 0 ? '' : l.slice(c + 1) } });
  }
  const drop = new Set(spamFieldsToRemove(fields.map((f) => f.ref)));
  const kept: string[] = [];
  fields.forEach((f, i) => {
    if (!drop.has(i)) for (let k = f.start; k < f.end; k++) kept.push(lines[k]!);
  });
  return { kept, removed: drop.size, smtpdJunk: smtpdJunked(fields.map((f) => f.ref)) };
}
