// The token tables: TokenTable (learning: exact 53-bit keys, learn times) and CountTable (the
// scanning filter's counts by 32-bit fingerprint). A CountTable loaded from a store file answers
// exactly what the TokenTable does for learned tokens, and its false-match rate on tokens it
// does not hold is the one table.ts states (2^-32 per entry compared).
import t from 'tap';
import { CountTable, COUNT_LOAD, TokenTable } from '../lib/store/table.js';
import { decodeCounts, decodeDb, encodeDb } from '../lib/store/file.js';
import { BayesDb } from '../lib/store/memory.js';
import { hash53 } from '../lib/spam/tokenize.js';

/** Deterministic pseudo-random 53-bit keys as the tokenizer makes them. */
const key = (i: number, seed = 0) => hash53('token ' + i, seed);

t.test('a CountTable answers what the TokenTable holds', async (t) => {
  const db = new BayesDb();
  const n = 50_000;
  for (let i = 0; i < n; i++) db.table.insertNew(key(i), (i * 7) % 13, (i * 5) % 11 + (i % 13 ? 0 : 1), 1000 + i);
  db.nspam = 300;
  db.nham = 400;
  const buf = Buffer.concat(encodeDb(db));
  const c = decodeCounts(buf);
  t.equal(c.table.size, db.table.size);
  t.same([c.nspam, c.nham, c.messages], [300, 400, 0]);
  t.ok(c.table.capacity >= n / 0.8 && c.table.capacity <= Math.ceil(n / COUNT_LOAD), `load ${(n / c.table.capacity).toFixed(2)}`);
  t.equal(c.table.byteLength, c.table.capacity * 12, '12 bytes a slot');
  // learned tokens, unknown ones and the key 0 (normalised to 1 as TokenTable does)
  const probe = [...Array.from({ length: n }, (_, i) => key(i)), ...Array.from({ length: 20_000 }, (_, i) => key(i, 1)), 0, 1];
  const want = db.lookup(probe);
  const s = new Uint32Array(probe.length), h = new Uint32Array(probe.length);
  c.table.lookup(probe, s, h);
  t.same(Array.from(s), Array.from(want.spam));
  t.same(Array.from(h), Array.from(want.ham));
  // decodeDb reads the same file back whole
  const back = decodeDb(buf);
  t.same(back.lookup(probe), want);
});

t.test('false matches of unknown tokens: about 2^-32 per entry compared', async (t) => {
  // 2^20 tokens at load 0.7, then 2 million tokens that are not in it: each compares ~5
  // entries, so ~10 million comparisons expect 0.002 false matches. More than 2 would mean
  // the fingerprint bits are not independent of the slot.
  const n = 1 << 20;
  const table = new CountTable(n);
  for (let i = 0; i < n; i++) table.insert(key(i), 1, 1);
  const m = 2_000_000, batch = 100_000;
  const probe = new Array<number>(batch), s = new Uint32Array(batch), h = new Uint32Array(batch);
  let false_ = 0;
  for (let b = 0; b < m; b += batch) {
    for (let i = 0; i < batch; i++) probe[i] = key(b + i, 7);
    table.lookup(probe, s, h);
    for (let i = 0; i < batch; i++) if (s[i] !== 0) false_++;
  }
  t.ok(false_ <= 2, `${false_} false matches among ${m} unknown tokens`);
});

t.test('reload policy: the array is kept while the load stays in [0.5, 0.8]', async (t) => {
  const a = new CountTable(100_000);
  t.ok(a.fits(100_000) && a.fits(114_000) && a.fits(72_000));
  t.notOk(a.fits(115_000), 'over 0.8: a new, larger table');
  t.notOk(a.fits(70_000), 'under 0.5: a new, smaller table');
  a.insert(key(1), 3, 4);
  a.clear();
  t.equal(a.size, 0);
  const s = new Uint32Array(1), h = new Uint32Array(1);
  a.lookup([key(1)], s, h);
  t.same([s[0], h[0]], [0, 0]);
  t.ok(new CountTable(0).fits(500), 'the smallest table takes small sets');
});

t.test('TokenTable: insert, add, remove keep every key reachable', async (t) => {
  const tt = new TokenTable(16);
  for (let i = 0; i < 5000; i++) tt.add(key(i), 1, 0, 1);
  for (let i = 0; i < 5000; i += 3) tt.add(key(i), -1, 0, 2);
  let ok = true;
  for (let i = 0; i < 5000; i++) if ((tt.find(key(i)) >= 0) !== (i % 3 !== 0)) ok = false;
  t.ok(ok);
});
