// The Robinson/Fisher chi-square combiner against hand-computed values and against a
// direct transcription of SpamAssassin's CombineChi.pm (products and chi2q in linear space).
import t from 'tap';
import { BAYES_DEFAULTS, bayesReady, chi2Q, classifyCounts, combine, logChi2Tails, tokenProbability } from '../lib/spam/bayes.js';

/** SpamAssassin's combine(), transcribed (linear space, frexp-free since inputs are short). */
function saCombine(ns: number, nn: number, probs: number[]): number {
  const chi2q = (x2: number, halfv: number) => {
    const m = x2 / 2;
    let sum = Math.exp(-m), term = sum;
    for (let i = 1; i < halfv; i++) {
      term *= m / i;
      sum += term;
    }
    return sum < 1 ? sum : 1;
  };
  let S = ns / (ns + nn), H = nn / (ns + nn);
  for (const p of probs) {
    S *= 1 - p;
    H *= p;
  }
  const s = 1 - chi2q(-2 * Math.log(S), probs.length);
  const h = 1 - chi2q(-2 * Math.log(H), probs.length);
  return (s - h + 1) / 2;
}

t.test('documented defaults are SpamAssassin 4.0.1 CombineChi/Bayes constants', async (t) => {
  t.equal(BAYES_DEFAULTS.s, 0.03);
  t.equal(BAYES_DEFAULTS.x, 0.538);
  t.equal(BAYES_DEFAULTS.minStrength, 0.346);
  t.equal(BAYES_DEFAULTS.maxTokens, 150);
  t.equal(BAYES_DEFAULTS.minSpam, 200);
  t.equal(BAYES_DEFAULTS.minHam, 200);
});

t.test("Robinson's f(w)", async (t) => {
  // Seen once in spam, never in ham: (s·x + n·p)/(s + n) with p = 1, n = 1.
  t.ok(Math.abs(tokenProbability(1, 0, 10, 10) - (0.03 * 0.538 + 1) / 1.03) < 1e-12);
  // Unseen: x.
  t.equal(tokenProbability(0, 0, 10, 10), 0.538);
  // Ratio form: 5 of 100 spam, 5 of 500 ham → p = 0.05/(0.05+0.01) = 5/6.
  const p = 5 / 6;
  t.ok(Math.abs(tokenProbability(5, 5, 100, 500) - (0.03 * 0.538 + 10 * p) / 10.03) < 1e-12);
  // No class learned yet: x.
  t.equal(tokenProbability(3, 0, 0, 10), 0.538);
});

t.test('chi-square tails', async (t) => {
  t.ok(Math.abs(chi2Q(2, 1) - Math.exp(-1)) < 1e-12);
  t.ok(Math.abs(chi2Q(4, 2) - 3 * Math.exp(-2)) < 1e-12);
  t.equal(chi2Q(0, 5), 1);
  // Both tails stay accurate and sum to 1 where they are not tiny.
  for (const [x2, v] of [[10, 5], [100, 10], [300, 150], [50, 150]] as const) {
    const r = logChi2Tails(x2, v);
    t.ok(Math.abs(Math.exp(r.logQ) + Math.exp(r.logP) - 1) < 1e-9, `tails sum to 1 at ${x2},${v}`);
  }
  // Far tails are finite logs instead of 0.
  const far = logChi2Tails(3000, 150);
  t.ok(far.logQ < -700 && Number.isFinite(far.logQ));
  const near = logChi2Tails(0.01, 150);
  t.ok(near.logP < -700 && Number.isFinite(near.logP));
});

t.test('combine matches SpamAssassin on known probabilities', async (t) => {
  const cases: number[][] = [
    [0.99, 0.99, 0.99],
    [0.01, 0.02, 0.05],
    [0.99, 0.01],
    [0.9, 0.8, 0.2, 0.95, 0.97],
    [0.15, 0.1, 0.85, 0.3],
  ];
  let seed = 7;
  const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  for (let k = 0; k < 20; k++) cases.push(Array.from({ length: 1 + Math.floor(rnd() * 40) }, () => (rnd() < 0.5 ? rnd() * 0.15 : 0.85 + rnd() * 0.149)));
  for (const probs of cases) {
    for (const [ns, nn] of [[200, 200], [500, 2500]] as const) {
      const ours = combine(probs, ns, nn, true).probability;
      const sa = saCombine(ns, nn, probs);
      t.ok(Math.abs(ours - sa) < 1e-9, `${probs.length} tokens (${ns}/${nn}): ${ours} vs ${sa}`);
    }
  }
  // Symmetry without priors: one strong spam and one equally strong ham token → 0.5.
  t.ok(Math.abs(combine([0.99, 0.01]).probability - 0.5) < 1e-12);
  t.equal(combine([]).probability, 0.5);
  t.ok(combine([0.99, 0.99, 0.99]).probability > 0.99);
  t.ok(combine([0.01, 0.01, 0.01]).probability < 0.01);
});

t.test('logit keeps ordering where the probability saturates', async (t) => {
  const a = combine(new Array(100).fill(0.99));
  const b = combine(new Array(150).fill(0.99));
  t.equal(a.probability, 1);
  t.equal(b.probability, 1);
  t.ok(b.logit > a.logit && Number.isFinite(b.logit));
  const h = combine(new Array(150).fill(0.01));
  t.ok(h.probability < 1e-12);
  t.ok(h.logit < -a.logit / 2 && Number.isFinite(h.logit));
  // Sign agrees with the probability.
  const mid = combine([0.9, 0.2, 0.95]);
  t.equal(Math.sign(mid.logit), Math.sign(mid.probability - 0.5));
});

t.test('token selection: minimum strength and the 150 strongest', async (t) => {
  // 200 spam tokens seen 10/0, 50 weak tokens 5/5 (f ≈ 0.5, ignored), unknown tokens.
  const spam = [...new Array(200).fill(10), ...new Array(50).fill(5), 0, 0];
  const ham = [...new Array(200).fill(0), ...new Array(50).fill(5), 0, 0];
  const c = classifyCounts(spam, ham, 300, 300);
  t.equal(c.tokens, 150);
  t.ok(c.probability > 0.999);
  const weak = classifyCounts([5, 5], [5, 5], 300, 300);
  t.equal(weak.tokens, 0);
  t.equal(weak.probability, 0.5);
});

t.test('no vote before 200 spam and 200 ham', async (t) => {
  t.notOk(bayesReady(199, 5000));
  t.notOk(bayesReady(5000, 199));
  t.ok(bayesReady(200, 200));
});
