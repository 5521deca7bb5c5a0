// bench/spam.ts's operating points: the thresholds a site would need for each pair of targets.
import t from 'tap';
import { operatingPoints } from '../bench/spam.js';

const msg = (group: string, score: number) => ({ m: { group, spam: group.startsWith('spam') }, score });

t.test('operating points walk every distinct score, ties flagged together', async (t) => {
  // 20 spam at 1..20, 20 easy ham at -1, 20 hard ham at 0..19 (one each).
  const scored = [
    ...Array.from({ length: 20 }, (_, i) => msg('spam-2', i + 1)),
    ...Array.from({ length: 20 }, () => msg('easy-ham-2', -1)),
    ...Array.from({ length: 20 }, (_, i) => msg('hard-ham-1', i)),
  ];
  const o = operatingPoints(scored);
  // hard_ham FPR <= 0.05 allows one hard ham (score 19) flagged: threshold 19, spam 19 and 20.
  t.same(o.hardFpr05, { threshold: 19, recall: 0.1, hamFpr: 0, hardFpr: 0.05 });
  // Recall >= 0.95 needs 19 of 20 spam: threshold 2, hard ham 2..19 flagged (18 of 20).
  t.same(o.recall95, { threshold: 2, recall: 0.95, hamFpr: 0, hardFpr: 0.9 });
});

t.test('a ranking that separates the classes meets both at one threshold; ties are not split', async (t) => {
  const scored = [
    ...Array.from({ length: 10 }, () => msg('spam-2', 5)),
    ...Array.from({ length: 10 }, () => msg('hard-ham-1', 5)),
    ...Array.from({ length: 10 }, () => msg('easy-ham-2', 0)),
  ];
  const o = operatingPoints(scored);
  t.same(o.hardFpr05, { threshold: Infinity, recall: 0, hamFpr: 0, hardFpr: 0 }, 'a tie cannot be cut: nothing flagged');
  t.same(o.recall95, { threshold: 5, recall: 1, hamFpr: 0, hardFpr: 1 });
  const clean = [...Array.from({ length: 10 }, () => msg('spam-2', 9)), ...Array.from({ length: 10 }, () => msg('hard-ham-1', 1))];
  const c = operatingPoints(clean);
  t.equal(c.hardFpr05.recall, 1);
  t.equal(c.recall95.hardFpr, 0);
});
