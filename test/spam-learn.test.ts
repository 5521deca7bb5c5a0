// Learning semantics: idempotent per message digest, moves between classes, forget; the
// digest's normalisation; the same semantics through the file store.
import t, { type Test } from 'tap';
type Tap = Test;
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { messageDigest } from '../lib/spam/digest.js';
import { learnItem, SpamScanner } from '../lib/spam/score.js';
import { MemoryStore } from '../lib/store/memory.js';
import { FileStore } from '../lib/store/file.js';
import type { Store } from '../lib/store/types.js';

const msg = (n: number, body = `cheap watches offer number ${n}\n`) =>
  Buffer.from(`From: s${n}@example.com\nTo: u@example.org\nSubject: offer ${n}\nDate: Mon, 6 Jan 2003 10:00:00 +0000\nMessage-ID: <m${n}@example.com>\n\n${body}`);

t.test('digest: normalisation keeps one identity per message', async (t) => {
  const base = msg(1);
  const d = messageDigest(base);
  t.match(d, /^[0-9a-f]{64}$/);
  // CRLF, an mbox From line, delivery headers, trailing blanks and lines: same message.
  t.equal(messageDigest(Buffer.from(base.toString('latin1').replace(/\n/g, '\r\n'))), d);
  t.equal(messageDigest(Buffer.concat([Buffer.from('From s1@example.com  Mon Jan  6 10:00:00 2003\n'), base])), d);
  t.equal(messageDigest(Buffer.concat([Buffer.from('Received: from x (x [1.2.3.4]) by mx; Mon, 6 Jan 2003 10:00:01 +0000\nX-Spam-Status: Yes\nX-UID: 4\n'), base])), d);
  t.equal(messageDigest(Buffer.concat([base, Buffer.from('   \n\n\n')])), d);
  t.equal(messageDigest(Buffer.from(base.toString('latin1').replace('Subject: offer 1', 'Subject: ***SPAM*** offer 1'))), d);
  // A different body, or the same body with another Message-ID, is another message.
  t.not(messageDigest(msg(1, 'other\n')), d);
  t.not(messageDigest(Buffer.from(base.toString('latin1').replace('<m1@', '<m9@'))), d);
  // Spam reusing one Message-ID with different bodies stays distinct.
  t.not(messageDigest(Buffer.from(msg(1).toString('latin1').replace('number 1', 'number 2'))), d);
});

async function semantics(t: Tap, store: Store): Promise<void> {
  const s = new SpamScanner(store);
  const m = msg(1);
  const tokens = learnItem(m).tokens;
  t.equal(await s.learn(m, 'spam'), 'learned');
  t.equal(await s.learn(m, 'spam'), 'already', 'learning twice counts once');
  t.same(await store.stats(), { nspam: 1, nham: 0, tokens: tokens.length, messages: 1, lastLearn: (await store.stats()).lastLearn });
  let l = await store.lookup(tokens);
  t.ok(Array.from(l.spam).every((c) => c === 1) && Array.from(l.ham).every((c) => c === 0));
  t.equal(await s.learn(m, 'ham'), 'moved', 'learning ham after spam moves it');
  l = await store.lookup(tokens);
  t.ok(Array.from(l.spam).every((c) => c === 0) && Array.from(l.ham).every((c) => c === 1));
  t.same([l.nspam, l.nham], [0, 1]);
  t.equal(await store.learnedAs(messageDigest(m)), 'ham');
  t.equal(await s.learn(m, null), 'forgotten');
  t.equal(await s.learn(m, null), 'not-learned');
  l = await store.lookup(tokens);
  t.same([l.nspam, l.nham], [0, 0]);
  t.ok(Array.from(l.spam).every((c) => c === 0) && Array.from(l.ham).every((c) => c === 0));
  t.equal((await store.stats()).tokens, 0, 'forget removes tokens whose counts reach 0');
  // Shared tokens: two messages, forget one, the other's counts stay.
  await s.learn(msg(2), 'spam');
  await s.learn(msg(3), 'spam');
  await s.learn(msg(3), null);
  const t2 = learnItem(msg(2)).tokens;
  l = await store.lookup(t2);
  t.ok(Array.from(l.spam).every((c) => c === 1), 'counts of the remaining message intact');
  // Per-user statistics are separate.
  t.equal(await s.learn(msg(4), 'spam', 'alice@example.org'), 'learned');
  t.same([(await store.stats('alice@example.org')).nspam, (await store.stats()).nspam], [1, 1]);
  t.equal(await s.learn(msg(4), 'spam', 'alice@example.org'), 'already');
  t.equal(await s.learn(msg(4), 'spam'), 'learned', 'global set does not see the user\'s digest');
}

t.test('memory store', async (t) => semantics(t, new MemoryStore()));

t.test('file store', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spamlearn-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = new FileStore(path.join(dir, 'sub', 'bayes.db'));
  await semantics(t, store);
  // Everything survived on disk: a fresh instance sees it.
  const again = new FileStore(path.join(dir, 'sub', 'bayes.db'));
  t.same(await again.stats(), await store.stats());
  t.same(await again.stats('alice@example.org'), await store.stats('alice@example.org'));
  t.same((await again.users()), ['alice@example.org']);
});

t.test('batch learn', async (t) => {
  const store = new MemoryStore();
  const items = [1, 2, 3, 2].map((n) => learnItem(msg(n)));
  t.same(await store.learn('spam', items), ['learned', 'learned', 'learned', 'already']);
  t.same(await store.learn('ham', items.slice(0, 1)), ['moved']);
  t.same([(await store.stats()).nspam, (await store.stats()).nham], [2, 1]);
});
