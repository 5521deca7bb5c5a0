// Weight fitting: L2-regularised logistic regression with per-weight bounds, solved by
// projected gradient descent (Adam steps). Used by bench/spam.ts to fit the rule weights
// and the Bayes curve on the training split only; the result is lib/spam/weights.ts.
//
// Features are dense rows (rule hits are 0/1, Bayes ramps in [-1, 1]); bounds keep rule
// weights >= 0 (a rule can only add spam points) and the Bayes ramps >= 0 (the curve
// is monotone: more Bayes evidence never lowers the score). Upper bounds encode the
// calibration principles (see fitWeights): an unsure Bayes does not decide alone, no
// single rule decides alone, bulk-style rules are context rather than evidence.

import { BayesDb } from '../store/memory.js';
import { BAYES_DEFAULTS, classifyCounts, type BayesParams } from './bayes.js';
import { RULES } from './rules.js';
import type { Weights } from './weights.js';

export interface FitOptions {
  /** L2 penalty per feature (same length as a row); default 1e-3. */
  l2?: number[];
  lower?: number[];
  upper?: number[];
  /** Fit an intercept (not penalised; bounded by interceptLower/Upper, default unbounded). */
  intercept?: boolean;
  interceptLower?: number;
  interceptUpper?: number;
  /** A fixed term added to every example's log-odds (an intercept that is not fitted). */
  offset?: number;
  /** Weight of each positive / negative example (class balancing). */
  posWeight?: number;
  negWeight?: number;
  iterations?: number;
  rate?: number;
  /** Features whose summed contribution is capped per example: a row's term from them is
   *  min(Σ w_j x_j, max) (the bulk-style rules, BULK_TOTAL_MAX). */
  cappedGroup?: { members: boolean[]; max: number };
  /** Linear floors: intercept + Σ weights[members] ≥ min after every step (Euclidean
   *  projection onto the half-space along the members, whose upper bounds must be ∞). */
  sumFloors?: { members: number[]; min: number }[];
}

export interface FitResult {
  weights: number[];
  intercept: number;
  loss: number;
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

export function fitLogistic(X: number[][], y: (0 | 1)[], opt: FitOptions = {}): FitResult {
  const n = X.length;
  const d = n ? X[0]!.length : 0;
  const l2 = opt.l2 ?? new Array<number>(d).fill(1e-3);
  const lo = opt.lower ?? new Array<number>(d).fill(-Infinity);
  const hi = opt.upper ?? new Array<number>(d).fill(Infinity);
  const useB = opt.intercept ?? true;
  const npos = y.reduce<number>((s, v) => s + v, 0);
  const nneg = n - npos;
  // Balanced by default: each class weighs half of the total.
  const pw = opt.posWeight ?? (npos ? n / (2 * npos) : 1);
  const nw = opt.negWeight ?? (nneg ? n / (2 * nneg) : 1);
  const w = new Array<number>(d).fill(0);
  for (let j = 0; j < d; j++) w[j] = Math.min(hi[j]!, Math.max(lo[j]!, 0));
  let b = useB ? Math.min(opt.interceptUpper ?? Infinity, Math.max(opt.interceptLower ?? -Infinity, 0)) : 0;
  const off = opt.offset ?? 0;
  // Adam.
  const iters = opt.iterations ?? 3000;
  const rate = opt.rate ?? 0.05;
  const m = new Array<number>(d + 1).fill(0);
  const v = new Array<number>(d + 1).fill(0);
  const beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  const g = new Array<number>(d + 1).fill(0);
  let loss = 0;
  // Sparse view of X for speed (rule hits are mostly 0).
  const rowsIdx: Int32Array[] = [];
  const rowsVal: Float64Array[] = [];
  for (const row of X) {
    const idx: number[] = [], val: number[] = [];
    for (let j = 0; j < d; j++) if (row[j] !== 0) { idx.push(j); val.push(row[j]!); }
    rowsIdx.push(Int32Array.from(idx));
    rowsVal.push(Float64Array.from(val));
  }
  const wsum = npos * pw + nneg * nw;
  const inGroup = opt.cappedGroup?.members ?? new Array<boolean>(d).fill(false);
  const groupMax = opt.cappedGroup?.max ?? Infinity;
  for (let it = 1; it <= iters; it++) {
    g.fill(0);
    loss = 0;
    for (let i = 0; i < n; i++) {
      const idx = rowsIdx[i]!, val = rowsVal[i]!;
      let z = b + off;
      let gsum = 0;
      for (let k = 0; k < idx.length; k++) {
        const j = idx[k]!;
        if (inGroup[j]) gsum += w[j]! * val[k]!;
        else z += w[j]! * val[k]!;
      }
      // Past the cap the group's term is flat: its members get no gradient from this row.
      const capped = gsum > groupMax;
      z += capped ? groupMax : gsum;
      const p = sigmoid(z);
      const yi = y[i]!;
      const sw = yi ? pw : nw;
      loss += -sw * (yi ? Math.log(Math.max(p, 1e-300)) : Math.log(Math.max(1 - p, 1e-300)));
      const r = sw * (p - yi);
      for (let k = 0; k < idx.length; k++) if (!(capped && inGroup[idx[k]!])) g[idx[k]!]! += r * val[k]!;
      g[d]! += r;
    }
    for (let j = 0; j <= d; j++) g[j] = g[j]! / wsum;
    loss /= wsum;
    for (let j = 0; j < d; j++) {
      g[j]! += 2 * l2[j]! * w[j]!;
      loss += l2[j]! * w[j]! * w[j]!;
    }
    for (let j = 0; j <= d; j++) {
      if (j === d && !useB) continue;
      m[j] = beta1 * m[j]! + (1 - beta1) * g[j]!;
      v[j] = beta2 * v[j]! + (1 - beta2) * g[j]! * g[j]!;
      const mh = m[j]! / (1 - Math.pow(beta1, it));
      const vh = v[j]! / (1 - Math.pow(beta2, it));
      const step = (rate * mh) / (Math.sqrt(vh) + eps);
      if (j === d) b = Math.min(opt.interceptUpper ?? Infinity, Math.max(opt.interceptLower ?? -Infinity, b - step));
      else w[j] = Math.min(hi[j]!, Math.max(lo[j]!, w[j]! - step));
    }
    for (const f of opt.sumFloors ?? []) {
      let sum = useB ? b : 0;
      for (const j of f.members) sum += w[j]!;
      if (sum < f.min && f.members.length) for (const j of f.members) w[j] = w[j]! + (f.min - sum) / f.members.length;
    }
  }
  return { weights: w, intercept: b, loss };
}

/** Area under the ROC curve (ties count half). */
export function rocAuc(pos: number[], neg: number[]): number {
  const all: [number, number][] = [];
  for (const s of pos) all.push([s, 1]);
  for (const s of neg) all.push([s, 0]);
  all.sort((a, b) => a[0] - b[0]);
  let sumPos = 0;
  let i = 0;
  while (i < all.length) {
    let j = i;
    while (j < all.length && all[j]![0] === all[i]![0]) j++;
    const r = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (all[k]![1]) sumPos += r;
    i = j;
  }
  if (!pos.length || !neg.length) return NaN;
  return (sumPos - (pos.length * (pos.length + 1)) / 2) / (pos.length * neg.length);
}

// ---------------------------------------------------------------------------------------
// Fitting the engine's weights (lib/spam/weights.ts) from labelled, prepared messages.


export interface Example {
  tokens: number[];
  hits: string[];
  spam: boolean;
  /** Stratum for the folds (e.g. corpus group); defaults to the label. */
  group?: string;
  /** Arrival time (ms), for out-of-time (forward-chained) fitting. */
  time?: number;
}

/**
 * The chi-square's "unsure" band: combined probability I between 0.20 and 0.90, i.e.
 * logit between ln(0.25) and ln(9). These are SpamBayes's default ham_cutoff and
 * spam_cutoff, the cut-offs of the people who introduced chi-square combining (Robinson,
 * Peters): inside them the classifier says it does not know — either few tokens voted,
 * or strong ham and strong spam evidence cancelled out (both tails near 1, I ≈ 0.5).
 * Within the band the sign and size of the logit (often ±1e-30) are numerical detail.
 */
export const UNSURE_BAND: Readonly<{ low: number; high: number }> = Object.freeze({ low: Math.log(0.2 / 0.8), high: Math.log(0.9 / 0.1) });

/**
 * Most points the Bayes curve may give anywhere up to the top of the unsure band:
 * "Bayes that does not know must not decide alone". 2 is a third of the required score
 * and half of the greylist threshold: an unsure Bayes alone takes no action; with one
 * bulk-style rule (≤ BULK_RULE_MAX) still none; to be junked an unsure message needs at
 * least 4 points of rules, i.e. two or more independent signs (RULE_MAX). SpamAssassin's
 * Bayes scores are in the same proportion (BAYES_50 0.8, BAYES_60 1.5, BAYES_80 2.0 of
 * required 5); rspamd's Bayes adds next to nothing near 0.5.
 */
export const UNSURE_MAX = 2;

/** Most points one rule may carry: with an unsure Bayes (≤ UNSURE_MAX) no single rule
 *  reaches the required score (2 + 3 < 6), and without Bayes one rule alone does not
 *  even greylist (3 < 4). */
export const RULE_MAX = 3;

/** Most points a bulk-style rule may carry (Rule.bulk: formatting or addressing that
 *  legitimate newsletters share). */
export const BULK_RULE_MAX = 1;

/**
 * Most points all bulk-style rules together may carry in one message. Formatting is
 * context, not evidence: however many newsletter habits a message has, with an unsure
 * Bayes they must stay below the required score (UNSURE_MAX + BULK_TOTAL_MAX < REQUIRED),
 * so at least one sign of deception, forgery or spam's own vocabulary is needed to junk
 * it. Without this a newsletter Bayes does not know, hitting five of the twenty-odd
 * bulk-style rules, would be junked on formatting alone. The largest such value: 3.
 */
export const BULK_TOTAL_MAX = 3;

/**
 * Where Bayes is sure: combined probability I ≥ 0.999, logit ≥ ln(999) — SpamAssassin's
 * BAYES_999 band. The mirror of the unsure band: there Bayes must not decide alone, here
 * it must be able to. The curve is bounded below there by SURE_MIN.
 */
export const SURE_LOGIT = Math.log(0.999 / 0.001);

/**
 * L2 penalties of the fit (per weight, on the class-balanced mean log-loss). Chosen on the
 * training split only, by the one-standard-error rule over forward-chained holdouts
 * (`node dist/bench/spam.js --dev --cuts 0.5,0.6,0.7,0.8,0.9 --fit '{"l2Rules":…,"l2Bayes":…}'`,
 * grid l2Rules 2e-3 … 2e-5 × l2Bayes 1e-4 … 1e-2): the least-regularised pair had the
 * lowest balanced log-loss (0.0450 ± 0.0103); the most regularised rule penalty within
 * one standard error of it is 1e-4 (0.0523, with l2Bayes 1e-3, the best at that
 * l2Rules). Calibration against mail the split does not hold (newsletters, ham Bayes is
 * unsure about) is not left to the penalty: it is in the bounds above.
 */
export const L2_RULES = 1e-4;
export const L2_BAYES = 1e-3;

/** Knots of the Bayes curve on the chi-square logit axis (one at the top of the unsure band). */
export const BAYES_KNOTS = [-300, -100, -30, -10, -3, -1, -0.1, -0.01, 0, 0.01, 0.1, 1, UNSURE_BAND.high, 3, SURE_LOGIT, 10, 30, 100, 300];

/** The score at which "add header" starts; the fitted decision boundary (log-odds 0 under
 *  balanced class weights) is placed there. */
export const REQUIRED = 6;

/**
 * Least points of the Bayes curve from SURE_LOGIT up: the required score. A site's own
 * training is its strongest evidence — a user moves a campaign's first messages to Junk,
 * Dovecot teaches the store, and the next ones must land in Junk on that alone, whether or
 * not a rule fires. Fitted freely on this split the curve never got there (5.65 at logit
 * 300, look 11): its training spam nearly always hit rules as well, so nothing taught the
 * fit what Bayes alone is worth.
 */
export const SURE_MIN = REQUIRED;

export interface WeightFitOptions {
  /** Forward-chaining blocks for the held-out Bayes logits (default 10). */
  folds?: number;
  seed?: number;
  /** Rules considered (others get no weight). */
  rules?: string[];
  /** L2 penalty of rule weights and of the Bayes curve steps. */
  l2Rules?: number;
  l2Bayes?: number;
  /** A rule needs this many hits among the training spam to be fitted at all. */
  minHits?: number;
  /** Fitted rule weights below this are dropped (they do not measurably help). */
  minWeight?: number;
  bayes?: BayesParams;
  iterations?: number;
  /** Cost of flagging a ham relative to missing a spam. The "add header" threshold is put
   *  at posterior odds = costRatio under balanced classes (log-odds ln(costRatio)).
   *  Default 5: the ratio of the targets' error budgets (5% missed spam, 1% flagged ham). */
  costRatio?: number;
  /** Most points of the Bayes curve up to the top of the unsure band (default UNSURE_MAX;
   *  Infinity: unconstrained, as fitted before). */
  unsureMax?: number;
  /** Least points of the curve from SURE_LOGIT up (default SURE_MIN; -Infinity: no floor). */
  sureMin?: number;
  /** Most points of any one rule (default RULE_MAX). */
  ruleMax?: number;
  /** Per-rule caps below ruleMax (default: BULK_RULE_MAX for the bulk-style rules of RULES). */
  ruleCaps?: Record<string, number>;
  /** Rules whose summed points are capped at bulkTotalMax (default: the bulk-style rules). */
  bulkRules?: string[];
  /** Most points of all bulkRules together in one message (default BULK_TOTAL_MAX;
   *  Infinity: no group cap). */
  bulkTotalMax?: number;
}

/** Deterministic stratified k-fold assignment. */
export function stratifiedFolds(strata: string[], k: number, seed = 1): number[] {
  let x = seed >>> 0 || 1;
  const rnd = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
  const by = new Map<string, number[]>();
  strata.forEach((s, i) => {
    let a = by.get(s);
    if (!a) by.set(s, (a = []));
    a.push(i);
  });
  const fold = new Array<number>(strata.length).fill(0);
  let offset = 0;
  for (const key of [...by.keys()].sort()) {
    const a = by.get(key)!;
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    // Continue the round-robin across strata so fold sizes stay balanced.
    a.forEach((idx, i) => (fold[idx] = (i + offset) % k));
    offset = (offset + a.length) % k;
  }
  return fold;
}

export function trainDb(examples: Example[]): BayesDb {
  const db = new BayesDb(1 << 20);
  examples.forEach((e, i) => db.learn(e.spam ? 'spam' : 'ham', { digest: i.toString(16).padStart(64, '0'), tokens: e.tokens }, 1));
  return db;
}

export function bayesLogit(db: BayesDb, tokens: number[], p: BayesParams = BAYES_DEFAULTS): { logit: number; probability: number } {
  const l = db.lookup(tokens);
  const c = classifyCounts(l.spam, l.ham, l.nspam, l.nham, p);
  return { logit: c.logit, probability: c.probability };
}

/** Out-of-fold Bayes logits: each example scored by a model that never saw it. */
export function outOfFoldLogits(examples: Example[], k = 5, seed = 1, p: BayesParams = BAYES_DEFAULTS): number[] {
  const fold = stratifiedFolds(examples.map((e) => e.group ?? String(e.spam)), k, seed);
  const out = new Array<number>(examples.length).fill(0);
  for (let f = 0; f < k; f++) {
    const db = trainDb(examples.filter((_, i) => fold[i] !== f));
    examples.forEach((e, i) => {
      if (fold[i] === f) out[i] = bayesLogit(db, e.tokens, p).logit;
    });
  }
  return out;
}

/**
 * Out-of-time Bayes logits (forward chaining): examples sorted by arrival time are cut into
 * k blocks; block b is scored by a model learned from blocks 0..b−1 only. Block 0 gets
 * NaN. Deployed, Bayes always scores mail newer than anything it learned, and new spam
 * lands in the chi-square's "unsure" middle far more often than shuffled cross-validation
 * suggests; fitting the curve and the rule weights on these logits teaches the fit what
 * the rules must decide when Bayes is unsure.
 */
export function forwardLogits(examples: Example[], k = 10, p: BayesParams = BAYES_DEFAULTS): number[] {
  const order = examples.map((_, i) => i).sort((a, b) => (examples[a]!.time ?? 0) - (examples[b]!.time ?? 0) || a - b);
  const out = new Array<number>(examples.length).fill(NaN);
  const n = order.length;
  for (let b = 1; b < k; b++) {
    const lo = Math.floor((n * b) / k), hi = Math.floor((n * (b + 1)) / k);
    const db = trainDb(order.slice(0, lo).map((i) => examples[i]!));
    for (let j = lo; j < hi; j++) out[order[j]!] = bayesLogit(db, examples[order[j]!]!.tokens, p).logit;
  }
  return out;
}

/** Ramp features of a logit: r_j = clamp((L − k_{j−1}) / (k_j − k_{j−1}), 0, 1). */
export function bayesRamps(logit: number, knots = BAYES_KNOTS): number[] {
  const r: number[] = [];
  for (let j = 1; j < knots.length; j++) r.push(Math.min(1, Math.max(0, (logit - knots[j - 1]!) / (knots[j]! - knots[j - 1]!))));
  return r;
}

/**
 * The same ramps anchored at a knot: segments below the anchor enter as r_j − 1 (≤ 0),
 * segments above as r_j (≥ 0), so every feature is 0 at the anchor and the curve's value
 * there is the intercept alone. Bounding the intercept bounds the curve at the anchor;
 * with non-negative steps (monotone) it bounds it everywhere below the anchor too.
 */
export function anchoredRamps(logit: number, anchor: number, knots = BAYES_KNOTS): number[] {
  const r = bayesRamps(logit, knots);
  for (let j = 1; j < knots.length; j++) if (knots[j]! <= anchor) r[j - 1] = r[j - 1]! - 1;
  return r;
}

export interface FittedWeights {
  weights: Weights;
  /** Log-odds mapped to the required score. */
  theta: number;
  /** Rules considered, with their fitted weight before dropping small ones. */
  raw: Record<string, number>;
  /** Training hits per rule: [spam, ham]. */
  hits: Record<string, [number, number]>;
}

/**
 * Fit the Bayes curve and rule weights by logistic regression on held-out Bayes logits and
 * rule hits (training data only), plus a rules-only set for an untrained Bayes.
 * Scores are log-odds (nats) under balanced classes, shifted so that log-odds
 * ln(costRatio) lands on REQUIRED (6): "add header" means the odds of spam are at least
 * costRatio:1. Rule weights below minWeight are dropped.
 *
 * Calibration principles, imposed as bounds rather than learned (a training split decides
 * nothing about mail it does not contain — here: no ham that Bayes is unsure about, no
 * newsletters):
 *  - the curve is monotone and gives at most UNSURE_MAX (2) points for any logit up to
 *    the top of the unsure band (UNSURE_BAND, I ≤ 0.90): Bayes that does not know must
 *    not decide alone. Unconstrained, the training split (where every unsure message is
 *    spam) taught "unsure = spam": 7.8 points at logit 0;
 *  - from SURE_LOGIT (I ≥ 0.999) up the curve gives at least SURE_MIN (the required
 *    score): Bayes that is sure decides, whether or not a rule fires;
 *  - no rule carries more than RULE_MAX (3) points, bulk-style rules no more than
 *    BULK_RULE_MAX (1); weights stay ≥ 0.
 */
export function fitWeights(examples: Example[], ruleNames: string[], opt: WeightFitOptions = {}, heldOutLogits?: number[][]): FittedWeights {
  // Two views of held-out Bayes evidence, both from training data only: shuffled k-fold
  // (Bayes scoring mail like what it learned) and forward chaining (Bayes scoring newer mail
  // than it learned, with the drift that brings). The fit sees every example once per view.
  const views = heldOutLogits ?? [outOfFoldLogits(examples, 5, opt.seed ?? 1, opt.bayes), forwardLogits(examples, opt.folds ?? 10, opt.bayes)];
  const minHits = opt.minHits ?? 3;
  const hits: Record<string, [number, number]> = {};
  for (const r of ruleNames) hits[r] = [0, 0];
  for (const e of examples) for (const h of e.hits) if (hits[h]) hits[h]![e.spam ? 0 : 1]++;
  const rules = ruleNames.filter((r) => hits[r]![0] >= minHits);
  const y = examples.map((e) => (e.spam ? 1 : 0) as 0 | 1);
  const ruleRow = (e: Example) => rules.map((r) => (e.hits.includes(r) ? 1 : 0));
  const nRamps = BAYES_KNOTS.length - 1;
  // Threshold: log-odds ln(costRatio) is mapped to REQUIRED (6); score = log-odds − theta + REQUIRED.
  const theta = Math.log(opt.costRatio ?? 5);
  // The curve is parametrised around the top of the unsure band (anchoredRamps): its value
  // there is the intercept, bounded so that it gives at most unsureMax points; monotone
  // steps carry that bound down to every logit below.
  const anchor = UNSURE_BAND.high;
  const unsureMax = opt.unsureMax ?? UNSURE_MAX;
  // Rule caps: every rule at most ruleMax, bulk-style rules at most their own cap.
  const ruleMax = opt.ruleMax ?? RULE_MAX;
  const caps = opt.ruleCaps ?? Object.fromEntries(RULES.filter((r) => r.bulk).map((r) => [r.name, BULK_RULE_MAX]));
  const ruleUpper = rules.map((r) => Math.min(ruleMax, caps[r] ?? Infinity));
  // All bulk-style rules of a message together: at most bulkTotalMax points.
  const bulkSet = new Set(opt.bulkRules ?? RULES.filter((r) => r.bulk).map((r) => r.name));
  const bulkTotalMax = opt.bulkTotalMax ?? BULK_TOTAL_MAX;
  const bulkMembers = rules.map((r) => bulkSet.has(r));
  // The combined fit uses every (example, view) with a held-out logit (forward block 0 has none).
  const X: number[][] = [];
  const yUse: (0 | 1)[] = [];
  for (const logits of views) {
    examples.forEach((e, i) => {
      if (!Number.isFinite(logits[i]!)) return;
      X.push([...anchoredRamps(logits[i]!, anchor), ...ruleRow(e)]);
      yUse.push(y[i]!);
    });
  }
  const d = nRamps + rules.length;
  const l2 = [...new Array<number>(nRamps).fill(opt.l2Bayes ?? L2_BAYES), ...new Array<number>(rules.length).fill(opt.l2Rules ?? L2_RULES)];
  const lower = new Array<number>(d).fill(0);
  const upper = [...new Array<number>(nRamps).fill(Infinity), ...ruleUpper];
  const iterations = opt.iterations ?? 3000;
  // Sure Bayes decides: the curve's value at SURE_LOGIT (intercept + the steps between the
  // anchor and it) is at least sureMin; monotone steps carry it to every higher logit.
  const sureMin = opt.sureMin ?? SURE_MIN;
  const sureSteps: number[] = [];
  for (let j = 0; j < nRamps; j++) if (BAYES_KNOTS[j + 1]! > anchor && BAYES_KNOTS[j + 1]! <= SURE_LOGIT) sureSteps.push(j);
  const fit = fitLogistic(X, yUse, {
    l2,
    lower,
    upper,
    iterations,
    interceptUpper: unsureMax + theta - REQUIRED,
    ...(Number.isFinite(sureMin) ? { sumFloors: [{ members: sureSteps, min: sureMin + theta - REQUIRED }] } : {}),
    cappedGroup: { members: [...new Array<boolean>(nRamps).fill(false), ...bulkMembers], max: bulkTotalMax },
  });
  const minW = opt.minWeight ?? 0.05;
  const raw: Record<string, number> = {};
  const ruleW: Record<string, number> = {};
  rules.forEach((r, j) => {
    const w = fit.weights[nRamps + j]!;
    raw[r] = w;
    if (w >= minW) ruleW[r] = Math.round(w * 1000) / 1000;
  });
  const values = BAYES_KNOTS.map((k) => {
    const f = anchoredRamps(k, anchor);
    let v = fit.intercept - theta + REQUIRED;
    for (let j = 0; j < nRamps; j++) v += fit.weights[j]! * f[j]!;
    return v;
  });
  // Rules-only set (Bayes not trained yet). Conservative by construction: the intercept is
  // not fitted but fixed so that a message without rule hits scores exactly 0 (no evidence,
  // no points, no greylisting of everything on a fresh install); the rule weights are fitted
  // under that constraint and must add up to the threshold by themselves.
  const Xr = examples.map(ruleRow);
  const fr = fitLogistic(Xr, y, {
    l2: new Array<number>(rules.length).fill(opt.l2Rules ?? L2_RULES),
    lower: new Array<number>(rules.length).fill(0),
    upper: ruleUpper,
    iterations,
    intercept: false,
    offset: theta - REQUIRED,
    cappedGroup: { members: bulkMembers, max: bulkTotalMax },
  });
  const untrained: Record<string, number> = {};
  rules.forEach((r, j) => {
    if (fr.weights[j]! >= minW) untrained[r] = Math.round(fr.weights[j]! * 1000) / 1000;
  });
  return {
    theta,
    weights: {
      bayes: { knots: [...BAYES_KNOTS], values: values.map((v) => Math.round(v * 1000) / 1000) },
      rules: ruleW,
      untrained: { base: 0, rules: untrained },
      ...(Number.isFinite(bulkTotalMax) && bulkSet.size ? { bulk: { rules: rules.filter((r) => bulkSet.has(r) && (r in ruleW || r in untrained)), max: bulkTotalMax } } : {}),
      provenance: '',
    },
    raw,
    hits,
  };
}
