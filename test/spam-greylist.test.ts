// Greylist keys and the greylist flow through the store interface.
import t from 'tap';
import { clientNetwork, greylistKey, GREYLIST_DEFAULTS } from '../lib/spam/greylist.js';
import { messageDigest } from '../lib/spam/digest.js';
import { MemoryStore } from '../lib/store/memory.js';

const m = Buffer.from('From: a@example.com\nMessage-ID: <g1@example.com>\nSubject: hi\n\nhello there\n');

t.test('networks', async (t) => {
  t.equal(clientNetwork('192.0.2.77'), '192.0.2.0/24');
  t.equal(clientNetwork('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  t.equal(clientNetwork('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(clientNetwork('::1'), '0:0:0:0::/64');
});

t.test('keys', async (t) => {
  const d = messageDigest(m);
  const k = greylistKey({ digest: d, mailFrom: 'A@Example.com', rcptTo: ['y@x.org', 'X@x.org'] });
  t.match(k, /^[0-9a-f]{64}$/);
  t.equal(greylistKey({ digest: d, mailFrom: 'a@example.com', rcptTo: ['x@x.org', 'y@x.org'] }), k, 'case and recipient order do not matter');
  t.not(greylistKey({ digest: d, mailFrom: 'a@example.com', rcptTo: ['x@x.org'] }), k);
  // A retry of the same message from another address of the sender's pool has the same key.
  const retry = Buffer.concat([Buffer.from('Received: from pool-2 (pool-2.example.com [198.51.100.9]) by mx; Mon, 6 Jan 2003 10:05:00 +0000\n'), m]);
  t.equal(greylistKey({ digest: messageDigest(retry), mailFrom: 'a@example.com', rcptTo: ['x@x.org', 'y@x.org'] }), k);
  const t1 = greylistKey({ ip: '192.0.2.1', mailFrom: 'a@example.com', rcptTo: ['x@x.org'] }, 'triplet');
  t.equal(greylistKey({ ip: '192.0.2.200', mailFrom: 'a@example.com', rcptTo: ['x@x.org'] }, 'triplet'), t1, 'same /24');
  t.not(greylistKey({ ip: '192.0.3.1', mailFrom: 'a@example.com', rcptTo: ['x@x.org'] }, 'triplet'), t1);
  t.throws(() => greylistKey({ mailFrom: 'a' }));
  t.throws(() => greylistKey({ mailFrom: 'a' }, 'triplet'));
});

t.test('first sight 451, retry after the delay passes, window expiry', async (t) => {
  t.same(GREYLIST_DEFAULTS, { minDelay: 300, window: 86400 });
  const s = new MemoryStore();
  const k = greylistKey({ digest: messageDigest(m), mailFrom: 'a@example.com', rcptTo: ['x@x.org'] });
  t.same(await s.greylist(k, 10_000, GREYLIST_DEFAULTS), { pass: false, firstSeen: 10_000, retryIn: 300 });
  t.same(await s.greylist(k, 10_060, GREYLIST_DEFAULTS), { pass: false, firstSeen: 10_000, retryIn: 240 });
  t.same(await s.greylist(k, 10_300, GREYLIST_DEFAULTS), { pass: true, firstSeen: 10_000, retryIn: 0 });
  t.same(await s.greylist(k, 20_000, GREYLIST_DEFAULTS), { pass: true, firstSeen: 10_000, retryIn: 0 });
  t.same(await s.greylist(k, 10_000 + 86_401, GREYLIST_DEFAULTS), { pass: false, firstSeen: 96_401, retryIn: 300 });
});
