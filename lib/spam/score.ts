// Score = Bayes contribution + rule weights; action by thresholds (rspamd's defaults).
//
// The Bayes contribution is a monotone piecewise-linear function of the chi-square logit
// (lib/spam/bayes.ts), shown as one SpamAssassin-style band symbol (BAYES_00 ... BAYES_999)
// carrying that value. Until the store has learned 200 spam and 200 ham, Bayes does not
// vote: the rules-only weight set applies and the symbol BAYES_NOT_READY carries its
// constant, so the score is always exactly the sum of the symbols shown.

import { analyze, type Analysis } from './analyze.js';
import { BAYES_DEFAULTS, bayesReady, classifyCounts, type BayesParams } from './bayes.js';
import { messageDigest } from './digest.js';
import { sessionFromReceived, type TrustOptions } from './received.js';
import { hasGtube, RULES, runRules, type Rule } from './rules.js';
import { tokenize } from './tokenize.js';
import type { ScanResult, SessionFacts, SpamAction, SpamClass, SymbolHit } from './types.js';
import { DEFAULT_WEIGHTS, type Weights } from './weights.js';
import type { BayesStore, LearnOutcome, Lookup } from '../store/types.js';

export interface Thresholds {
  /** 451 on first sight (needs a store); null disables. rspamd: 4. */
  greylist: number | null;
  /** Add the spam headers (and junk). rspamd: 6. This is the "required" score. */
  addHeader: number;
  /** Rewrite the Subject; null (default) disables. */
  rewriteSubject: number | null;
  /** 550. rspamd: 15; null disables. */
  reject: number | null;
}

export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = Object.freeze({ greylist: 4, addHeader: 6, rewriteSubject: null, reject: 15 });

export const DEFAULT_MAX_BYTES = 1 << 20;

export const GTUBE_SCORE = 1000;

export interface ScoreOptions {
  thresholds?: Partial<Thresholds>;
  weights?: Weights;
  bayes?: Partial<BayesParams>;
  /** Scan at most this many bytes of the message (default 1 MiB). */
  maxBytes?: number;
  rules?: Rule[];
}

/** What one message yields before the store is asked. */
export interface Prepared {
  analysis: Analysis;
  tokens: number[];
  hits: string[];
  gtube: boolean;
  now: number;
}

export function prepare(message: Buffer, session: SessionFacts | undefined, opt: ScoreOptions = {}): Prepared {
  const max = opt.maxBytes ?? DEFAULT_MAX_BYTES;
  const buf = message.length > max ? message.subarray(0, max) : message;
  const analysis = analyze(buf);
  const now = session?.time ?? Date.now();
  const tokens = tokenize(analysis, session).hashes;
  const hits = runRules({ a: analysis, session, now }, opt.rules ?? RULES);
  return { analysis, tokens, hits, gtube: hasGtube(buf, analysis), now };
}

const BANDS: [number, string, string][] = [
  [0.01, 'BAYES_00', '0 to 1%'],
  [0.05, 'BAYES_05', '1 to 5%'],
  [0.2, 'BAYES_20', '5 to 20%'],
  [0.4, 'BAYES_40', '20 to 40%'],
  [0.6, 'BAYES_50', '40 to 60%'],
  [0.8, 'BAYES_60', '60 to 80%'],
  [0.95, 'BAYES_80', '80 to 95%'],
  [0.99, 'BAYES_95', '95 to 99%'],
  [0.999, 'BAYES_99', '99 to 99.9%'],
  [Infinity, 'BAYES_999', '99.9 to 100%'],
];

export function bayesBand(p: number): { name: string; description: string } {
  for (const [lim, name, d] of BANDS) if (p < lim) return { name, description: `Bayes spam probability is ${d}` };
  return { name: 'BAYES_999', description: 'Bayes spam probability is 99.9 to 100%' };
}

/** Piecewise-linear interpolation of the Bayes curve, clamped at both ends. */
export function bayesContribution(logit: number, w: Weights): number {
  const k = w.bayes.knots, v = w.bayes.values;
  if (logit <= k[0]!) return v[0]!;
  for (let i = 1; i < k.length; i++) {
    if (logit <= k[i]!) {
      const t = (logit - k[i - 1]!) / (k[i]! - k[i - 1]!);
      return v[i - 1]! + t * (v[i]! - v[i - 1]!);
    }
  }
  return v[v.length - 1]!;
}

function round(x: number, d = 3): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

export function actionFor(score: number, t: Thresholds): SpamAction {
  if (t.reject !== null && score >= t.reject) return 'reject';
  if (t.rewriteSubject !== null && score >= t.rewriteSubject) return 'rewrite subject';
  if (score >= t.addHeader) return 'add header';
  if (t.greylist !== null && score >= t.greylist) return 'greylist';
  return 'no action';
}

const RULE_DESC = new Map(RULES.map((r) => [r.name, r.description]));

/**
 * Points of the rules that hit, given a weight set. Rules without a weight are left out.
 * Bulk-style rules (formatting and addressing newsletters share) carry at most bulk.max
 * points together; past that their points are scaled down proportionally, so each symbol
 * still shows what it added and the score stays the sum of the symbols.
 */
export function rulePoints(hits: string[], ruleWeights: Record<string, number>, bulk?: Weights['bulk']): { name: string; score: number; scaled: boolean }[] {
  let scale = 1;
  const members = bulk ? new Set(bulk.rules) : null;
  if (members) {
    let total = 0;
    for (const h of hits) if (members.has(h)) total += ruleWeights[h] ?? 0;
    if (total > bulk!.max) scale = bulk!.max / total;
  }
  const out: { name: string; score: number; scaled: boolean }[] = [];
  for (const h of hits) {
    const s = ruleWeights[h];
    if (!s) continue; // rules that did not earn a weight are not shown
    const scaled = scale < 1 && members!.has(h);
    out.push({ name: h, score: scaled ? s * scale : s, scaled });
  }
  return out;
}

/** Turn prepared facts and (optionally) store counts into the verdict. */
export function scorePrepared(p: Prepared, lookup: Lookup | null, opt: ScoreOptions = {}): ScanResult {
  const w = opt.weights ?? DEFAULT_WEIGHTS;
  const th: Thresholds = { ...DEFAULT_THRESHOLDS, ...opt.thresholds };
  const bp: BayesParams = { ...BAYES_DEFAULTS, ...opt.bayes };
  const symbols: SymbolHit[] = [];
  let bayes: ScanResult['bayes'] = null;
  let ruleWeights: Record<string, number>;
  if (lookup && bayesReady(lookup.nspam, lookup.nham, bp)) {
    const c = classifyCounts(lookup.spam, lookup.ham, lookup.nspam, lookup.nham, bp);
    bayes = { probability: c.probability, tokens: c.tokens };
    const band = bayesBand(c.probability);
    symbols.push({ name: band.name, score: round(bayesContribution(c.logit, w)), description: band.description });
    ruleWeights = w.rules;
  } else {
    const why = lookup
      ? `Bayes not used: not enough training (${lookup.nspam} spam, ${lookup.nham} ham learned; ${bp.minSpam}/${bp.minHam} needed)`
      : 'Bayes not used: no store';
    symbols.push({ name: 'BAYES_NOT_READY', score: round(w.untrained.base), description: why });
    ruleWeights = w.untrained.rules;
  }
  for (const r of rulePoints(p.hits, ruleWeights, w.bulk)) {
    symbols.push({
      name: r.name,
      score: round(r.score),
      description: (RULE_DESC.get(r.name) ?? r.name) + (r.scaled ? ` (bulk-style points scaled to their ${w.bulk!.max}-point cap)` : ''),
    });
  }
  if (p.gtube) symbols.push({ name: 'GTUBE', score: GTUBE_SCORE, description: 'Generic Test for Unsolicited Bulk Email' });
  let score = 0;
  for (const s of symbols) score += s.score;
  score = round(score, 2);
  let action = actionFor(score, th);
  if (p.gtube) action = 'reject';
  return { score, required: th.addHeader, action, symbols, bayes };
}

export interface ScannerOptions extends ScoreOptions {
  /** Per-user statistics key (a recipient, or --user). */
  user?: string;
  /** For learning: how to recover client facts from stored copies (learnItem). */
  trust?: TrustOptions | false;
}

/** The engine: scan and learn messages against a store (or none: rules only). */
export class SpamScanner {
  constructor(
    readonly store: BayesStore | null,
    readonly opt: ScannerOptions = {},
  ) {}

  async scan(message: Buffer, session?: SessionFacts, user = this.opt.user): Promise<ScanResult> {
    const p = prepare(message, session, this.opt);
    const lookup = this.store ? await this.store.lookup(p.tokens, user) : null;
    return scorePrepared(p, lookup, this.opt);
  }

  /** Learn (spam/ham) or forget (null) one message. */
  async learn(message: Buffer, cls: SpamClass | null, user = this.opt.user, time?: number): Promise<LearnOutcome> {
    if (!this.store) throw new Error('learning needs a store');
    const [r] = await this.store.learn(cls, [learnItem(message, this.opt)], user, time);
    return r!;
  }
}

export interface LearnItemOptions {
  maxBytes?: number;
  /** How to recover the client facts from the stored copy (see lib/spam/received.ts);
   *  false: learn without them. */
  trust?: TrustOptions | false;
  /** Session facts known for this message (overrides trust). */
  session?: SessionFacts;
}

/**
 * Tokens and digest of a message for learning. The learned copy comes back from a mailbox
 * where smtpd's view of the client is gone; the same client facts are recovered from the
 * Received field our smtpd wrote (the topmost one from a public, non-trusted address), so
 * the client tokens learned match those scanned.
 */
export function learnItem(message: Buffer, opt: LearnItemOptions = {}): { digest: string; tokens: number[] } {
  const max = opt.maxBytes ?? DEFAULT_MAX_BYTES;
  const buf = message.length > max ? message.subarray(0, max) : message;
  const a = analyze(buf);
  const session = opt.session ?? (opt.trust === false ? undefined : sessionFromReceived(a.headers, opt.trust || {}));
  return { digest: messageDigest(message), tokens: tokenize(a, session).hashes };
}

// ---------------------------------------------------------------------------------------
// Autolearn (off by default in the filter). Only on strong agreement of independent
// evidence, with a balance guard, so the filter does not teach itself its own mistakes
// (mailcow/mailcow-dockerized#1537) nor drift to one class (Mailu/Mailu#2448).

export interface AutolearnOptions {
  /** Learn spam at or above this score (default 12, SpamAssassin's bayes_auto_learn_threshold_spam). */
  spamScore?: number;
  /** ... and only if the rules (not Bayes) gave at least this many points (default 3). */
  spamRulePoints?: number;
  /** Learn ham at or below this score (default -1) with no rule hit at all. */
  hamScore?: number;
  /** Do not learn a class that already has more than ratio × the other class + slack. */
  maxRatio?: number;
  slack?: number;
}

export function autolearnClass(r: ScanResult, learned: { nspam: number; nham: number }, opt: AutolearnOptions = {}): SpamClass | null {
  if (r.symbols.some((s) => s.name === 'GTUBE')) return null; // a test message, not spam
  const rulePoints = r.symbols.filter((s) => !s.name.startsWith('BAYES_')).reduce((a, s) => a + s.score, 0);
  const ratio = opt.maxRatio ?? 4;
  const slack = opt.slack ?? 50;
  if (r.score >= (opt.spamScore ?? 12) && rulePoints >= (opt.spamRulePoints ?? 3)) {
    return learned.nspam > ratio * learned.nham + slack ? null : 'spam';
  }
  if (r.score <= (opt.hamScore ?? -1) && rulePoints === 0) {
    return learned.nham > ratio * learned.nspam + slack ? null : 'ham';
  }
  return null;
}
