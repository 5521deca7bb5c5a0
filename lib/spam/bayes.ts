// Robinson/Fisher chi-square Bayes, as in SpamAssassin (Mail/SpamAssassin/Bayes/CombineChi.pm,
// Plugin/Bayes.pm) and bogofilter:
//   p(w)  = (s_w / N_spam) / (s_w / N_spam + h_w / N_ham)         per-token spam ratio
//   f(w)  = (S·x + n·p(w)) / (S + n),  n = s_w + h_w              Robinson's smoothing
//   only tokens with |f(w) − 0.5| ≥ min strength vote, the 150 strongest;
//   H = C⁻¹(−2 ln Π f(w), 2N),  S = C⁻¹(−2 ln Π (1 − f(w)), 2N)   Fisher's combining
//   I = (1 + H − S) / 2.
// The chi-square tail is computed in log space, so the engine also gets log C⁻¹ values that
// keep ordering messages when I itself rounds to exactly 0 or 1 (useful for ranking/AUC).

export interface BayesParams {
  /** Robinson's s: strength of the background belief. SpamAssassin: 0.030. */
  s: number;
  /** Robinson's x: probability assumed for an unseen token. SpamAssassin: 0.538. */
  x: number;
  /** Tokens with |f(w) − 0.5| below this do not vote. SpamAssassin: 0.346. */
  minStrength: number;
  /** At most this many tokens vote. SpamAssassin: 150. */
  maxTokens: number;
  /** Bayes stays silent until this many spam and ham messages are learned (SA: 200). */
  minSpam: number;
  minHam: number;
  /** Start the products with the class priors N_spam/N and N_ham/N (SpamAssassin bug 3118). */
  priors: boolean;
}

export const BAYES_DEFAULTS: Readonly<BayesParams> = Object.freeze({
  s: 0.03,
  x: 0.538,
  minStrength: 0.346,
  maxTokens: 150,
  minSpam: 200,
  minHam: 200,
  priors: true,
});

/** Robinson's f(w) for a token seen `sc` times in spam and `hc` in ham. */
export function tokenProbability(sc: number, hc: number, nspam: number, nham: number, p: BayesParams = BAYES_DEFAULTS): number {
  const n = sc + hc;
  if (n === 0 || nspam === 0 || nham === 0) return p.x;
  const rs = sc / nspam;
  const rh = hc / nham;
  const pw = rs / (rs + rh);
  return (p.s * p.x + n * pw) / (p.s + n);
}

function logAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  return a > b ? a + Math.log1p(Math.exp(b - a)) : b + Math.log1p(Math.exp(a - b));
}

/**
 * Both tails of the chi-square distribution with 2·halfv degrees of freedom at x2, as
 * logarithms: Q = P(X ≥ x2) = e^(−m) Σ_{i<halfv} m^i/i!  and  P = 1 − Q, m = x2/2.
 * Each tail is summed directly where it is small, so neither loses precision near 0.
 */
export function logChi2Tails(x2: number, halfv: number): { logQ: number; logP: number } {
  const m = x2 / 2;
  if (!(m > 0)) return { logQ: 0, logP: -Infinity };
  const lnm = Math.log(m);
  // Upper tail Q: the first halfv Poisson(m) terms.
  let logTerm = -m;
  let logQ = -m;
  for (let i = 1; i < halfv; i++) {
    logTerm += lnm - Math.log(i);
    logQ = logAdd(logQ, logTerm);
  }
  if (logQ > 0) logQ = 0;
  if (logQ < -0.6931471805599453) return { logQ, logP: Math.log1p(-Math.exp(logQ)) };
  // Q ≥ 0.5: sum P = Σ_{i≥halfv} directly (the terms fall quickly past m).
  logTerm += lnm - Math.log(halfv); // term i = halfv
  let logP = logTerm;
  for (let i = halfv + 1; i < halfv + 100000; i++) {
    logTerm += lnm - Math.log(i);
    const before = logP;
    logP = logAdd(logP, logTerm);
    if (i > m && logTerm < before - 40) break;
  }
  if (logP > 0) logP = 0;
  return { logQ: Math.min(logQ, Math.log1p(-Math.exp(logP))), logP };
}

/** ln of the chi-square survival function Q(x2 | 2·halfv degrees of freedom). */
export function logChi2Q(x2: number, halfv: number): number {
  return logChi2Tails(x2, halfv).logQ;
}

export function chi2Q(x2: number, halfv: number): number {
  return Math.exp(logChi2Q(x2, halfv));
}

export interface Combined {
  /** I = (1 + H − S)/2 ∈ [0, 1]. */
  probability: number;
  /** ln(I / (1 − I)) computed from the tails in log space: finite and still ordering
   *  messages when I itself rounds to exactly 0 or 1. */
  logit: number;
  tokens: number;
}

/** Fisher's chi-square combining of token probabilities (already selected). */
export function combine(probs: ArrayLike<number>, nspam = 0, nham = 0, priors = false): Combined {
  const n = probs.length;
  if (n === 0) return { probability: 0.5, logit: 0, tokens: 0 };
  let lnS = 0; // ln Π (1 − f)
  let lnH = 0; // ln Π f
  if (priors && nspam + nham > 0) {
    lnS = Math.log(nspam / (nspam + nham));
    lnH = Math.log(nham / (nspam + nham));
  }
  for (let i = 0; i < n; i++) {
    const f = probs[i]!;
    lnS += Math.log(1 - f);
    lnH += Math.log(f);
  }
  // SpamAssassin's naming: S = 1 − Q(−2 ln Π(1 − f)) is near 1 for spam (the product is
  // improbably small), H = 1 − Q(−2 ln Π f) near 1 for ham.
  const ts = logChi2Tails(-2 * lnS, n);
  const th = logChi2Tails(-2 * lnH, n);
  // I = (1 + H − S)/2 = (Q_H + P_S)/2 and 1 − I = (P_H + Q_S)/2.
  const logI = logAdd(th.logQ, ts.logP);
  const log1mI = logAdd(th.logP, ts.logQ);
  const probability = Math.min(1, Math.max(0, (Math.exp(th.logQ) + Math.exp(ts.logP)) / 2));
  return { probability, logit: logI - log1mI, tokens: n };
}

/**
 * Select the significant tokens and combine them.
 * `spam[i]`, `ham[i]`: counts of the message's i-th token.
 */
export function classifyCounts(spam: ArrayLike<number>, ham: ArrayLike<number>, nspam: number, nham: number, p: BayesParams = BAYES_DEFAULTS): Combined {
  const cand: number[] = [];
  for (let i = 0; i < spam.length; i++) {
    const sc = spam[i]!, hc = ham[i]!;
    if (sc + hc === 0) continue;
    const f = tokenProbability(sc, hc, nspam, nham, p);
    if (Math.abs(f - 0.5) >= p.minStrength) cand.push(f);
  }
  if (cand.length > p.maxTokens) {
    cand.sort((a, b) => Math.abs(b - 0.5) - Math.abs(a - 0.5));
    cand.length = p.maxTokens;
  }
  return combine(cand, nspam, nham, p.priors);
}

/** Bayes has learned enough to vote. */
export function bayesReady(nspam: number, nham: number, p: BayesParams = BAYES_DEFAULTS): boolean {
  return nspam >= p.minSpam && nham >= p.minHam;
}

/** A continuous, ranking-preserving evidence value: the logit of the combined
 *  probability, positive for spam, finite even when the probability saturates. */
export function bayesEvidence(c: Combined): number {
  return c.logit;
}
