// filter-spamscore's policy in-process (test/lib/driver.ts drives the real runtime, hold mode
// and spool included) with memory stores: flags, actions at each threshold, both header
// dialects, forged X-Spam* fields, smtpd's own junk mark, greylisting on a clock, the Subject
// rewrite, -maxBytes, the error policy, authenticated and local sessions, per-user
// statistics, autolearn, session facts, several messages per session, protocol versions.

import t from 'tap';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Autolearner, sessionFacts, StoreRef, rewriteSubjectField, thresholdWarnings, unwritableDir, type Outcome } from '../filters/spamscore/filter.js';
import { UsageError } from '../lib/flags.js';
import type { SessionInfo } from '../lib/filter.js';
import { autolearnClass, learnItem } from '../lib/spam/score.js';
import { MemoryStore, StoreError, type Store } from '../lib/store/index.js';
import { config, driver, fields, GTUBE, hamText, silent, source, spamText, trainedStore, transact } from './fixtures/spamscore/common.js';
import { registrations } from '../lib/runtime.js';
import { spamscoreFilter } from '../filters/spamscore/filter.js';

const trained = await trainedStore();
const spam = spamText(9001);
const ham = hamText(9001);
/** Bayes spam with >= 3 points from the rules (autolearn's bar). */
const strongSpam =
  'From: promo7001@deals.example\nTo: u@example.org\nSubject: CHEAP REPLICA WATCHES NOW!!\nMessage-ID: <p7001@deals.example>\n' +
  'Date: Mon, 6 Jan 2025 10:00:00 +0000\nMIME-Version: 1.0\nContent-Type: text/html; charset=us-ascii\n\n' +
  '<html><body><font size="7">buy cheap replica watches now, limited offer \xe9</font>\n' +
  '<div style="display:none">click here for the best replica deals and cheap prices hidden</div>\n' +
  '<p>click here for the best replica deals and cheap prices</p><form action="http://deals.example/buy"><input name="q"></form>\n' +
  '<script>var x = 1;</script></body></html>\n';
const gtube = `From: tester@sender.example\nTo: alice@test.example\nSubject: GTUBE\nDate: Mon, 6 Jan 2025 10:00:00 +0000\nMessage-ID: <gtube@sender.example>\n\nThis is the GTUBE.\n\n${GTUBE}\n`;

t.test('flags: defaults and errors', async (t) => {
  const c = config();
  t.equal(c.store, '/var/lib/opensmtpd-filters/spamscore.db');
  t.equal(c.dialect, 'both');
  t.same(c.thresholds, { greylist: 4, addHeader: 6, reject: 15, rewriteSubject: null });
  t.equal(c.maxBytes, 1 << 20);
  t.equal(c.onError, 'proceed');
  t.same(c.greylist, { minDelay: 300, window: 86400, key: 'message' });
  t.equal(c.perUser, false);
  t.equal(c.autolearn, false);
  t.equal(c.scoreAuth, false);
  t.equal(c.subjectTemplate, '***SPAM*** %s');
  const o = config(['-store', 'redis://127.0.0.1:6379/2', '-headers', 'sa', '-greylistAt', 'off', '-junkAt', '5.5', '-rejectAt=off', '-subjectAt', '8', '-maxBytes', '65536', '-onError', 'tempfail', '-greylistDelay', '60', '-greylistKey', 'triplet', '-user', 'Alice@Test.Example', '-autolearn', '-scoreAuth']);
  t.equal(o.dialect, 'spamassassin');
  t.same(o.thresholds, { greylist: null, addHeader: 5.5, reject: null, rewriteSubject: 8 });
  t.equal(o.maxBytes, 65536);
  t.equal(o.onError, 'tempfail');
  t.same(o.greylist, { minDelay: 60, window: 86400, key: 'triplet' });
  t.equal(o.user, 'alice@test.example');
  t.ok(o.autolearn && o.scoreAuth);
  for (const bad of [['-headers', 'xml'], ['-junkAt', 'off'], ['-greylistAt', 'soon'], ['-maxBytes', '10'], ['-onError', 'pass'], ['-greylistKey', 'ip'], ['-perUser', '-user', 'a'], ['-store', ''], ['-store', 'spamscore.db'], ['-store', './x/spamscore.db'], ['-subject', 'a\nb'], ['-nope']]) {
    t.throws(() => config(bad), UsageError, bad.join(' '));
  }
  t.equal(config(['-store', 'memory:']).store, 'memory:');
  t.equal(config(['-store', 'unix:///run/redis.sock?db=2']).store, 'unix:///run/redis.sock?db=2');
  t.same(thresholdWarnings(config().thresholds), []);
  t.equal(unwritableDir(join(tmpdir(), 'not-yet', 'there')), undefined, 'a missing directory under a writable one can be made');
  t.match(unwritableDir('/proc/1/nope'), /^[A-Z]+ on \/proc\/1$/, 'under /proc: not, and where');
  t.match(thresholdWarnings(config(['-greylistAt', '7']).thresholds), [/nothing is greylisted/]);
  t.match(thresholdWarnings(config(['-rejectAt', '5']).thresholds), [/nothing is junked/]);
  t.match(thresholdWarnings(config(['-subjectAt', '5']).thresholds), [/marked as spam \(and junked\) too/]);
});

t.test('registrations: data-line and commit, the reports the session facts need', async (t) => {
  const regs = registrations([spamscoreFilter(config(), { store: source(trained), log: silent })]);
  for (const r of ['link-connect', 'link-greeting', 'link-identify', 'link-auth', 'tx-begin', 'tx-mail', 'tx-rcpt', 'tx-reset', 'tx-rollback', 'link-disconnect']) t.ok(regs.includes(`register|report|smtp-in|${r}`), r);
  t.ok(regs.includes('register|filter|smtp-in|data-line'));
  t.ok(regs.includes('register|filter|smtp-in|commit'));
  t.notOk(regs.some((r) => /filter\|smtp-in\|(connect|helo|ehlo|mail-from|rcpt-to|data)$/.test(r)), 'no other phase: no delay anywhere else');
});

t.test('actions at the default thresholds, both dialects (the default)', async (t) => {
  const seen: Outcome[] = [];
  const d = await driver(config(), { store: source(trained), onOutcome: (o) => seen.push(o) });
  const [s, h, g] = await transact(d, [spam, ham, gtube]);
  // spam: the headers of both dialects, first; the message follows untouched
  t.equal(s!.commit, 'proceed', 'junk is a header, never a junk answer at commit');
  t.equal(seen[0]!.result!.action, 'add header');
  const score = seen[0]!.result!.score;
  t.ok(score >= 6 && score < 15, `score ${score} in the junk band`);
  t.equal(s!.lines[0], 'X-Spam: yes', 'filter-rspamd\'s mark first (smtpd maildir junk reads it)');
  t.same(fields(s!.lines, 'X-Spam-Score'), [`${score.toFixed(1)} / 15.0`]);
  t.same(fields(s!.lines, 'X-Spam-Flag'), ['YES'], 'SpamAssassin\'s flag, upper case as SpamAssassin writes it');
  t.match(fields(s!.lines, 'X-Spam-Status')[0], new RegExp(`^Yes, score=${score.toFixed(1)} required=6\\.0 tests=.*BAYES_99`));
  t.equal(fields(s!.lines, 'X-Spam-Level')[0], '*'.repeat(Math.floor(score)));
  t.ok(s!.lines.every((l) => Buffer.byteLength(l, 'latin1') <= 78 || !/^X-Spam|^\t/.test(l)), 'folded at 78 columns');
  t.same(s!.lines.slice(s!.lines.indexOf('From: promo9001@deals.example')), spam.trimEnd().split('\n'), 'the message follows unchanged');
  // ham: SpamAssassin's "No" line, no spam mark
  t.equal(h!.commit, 'proceed');
  t.same(fields(h!.lines, 'X-Spam'), [], 'no X-Spam: yes');
  t.same(fields(h!.lines, 'X-Spam-Flag'), []);
  t.same(fields(h!.lines, 'X-Spam-Score'), [], 'filter-rspamd writes nothing for ham');
  t.match(fields(h!.lines, 'X-Spam-Status')[0], /^No, score=-?\d+\.\d required=6\.0 tests=BAYES_00/);
  t.same(h!.lines.slice(1), ham.trimEnd().split('\n'));
  // GTUBE: 550 at commit, as SpamAssassin and rspamd
  t.equal(g!.commit, 'reject|550 5.7.1 Spam message rejected (GTUBE test string)');
});

t.test('SpamAssassin and rspamd dialects alone', async (t) => {
  const sa = await driver(config(['-headers', 'spamassassin']), { store: source(trained) });
  const [s1, h1] = await transact(sa, [spam, ham]);
  t.same(fields(s1!.lines, 'X-Spam-Flag'), ['YES']);
  t.same(fields(s1!.lines, 'X-Spam'), [], 'no X-Spam in the SpamAssassin dialect');
  t.match(fields(h1!.lines, 'X-Spam-Status')[0], /^No, /);
  const rs = await driver(config(['-headers', 'rspamd']), { store: source(trained) });
  const [s2, h2] = await transact(rs, [spam, ham]);
  t.same(fields(s2!.lines, 'X-Spam'), ['yes']);
  t.match(fields(s2!.lines, 'X-Spam-Score')[0], /^\d+\.\d \/ 15\.0$/);
  t.match(fields(s2!.lines, 'X-Spam-Status')[0], /^Yes, score=\d+\.\d{3} required=15\.000\s*tests=\[BAYES_999=\d+\.\d{3}, /);
  t.same(fields(s2!.lines, 'X-Spam-Flag'), []);
  t.same(h2!.lines, ham.trimEnd().split('\n'), 'ham: nothing added, as filter-rspamd');
});

t.test('incoming X-Spam* fields are removed; smtpd\'s own first-line mark is kept, not doubled', async (t) => {
  const d = await driver(config(), { store: source(trained) });
  const forged = `X-Spam-Status: No, score=-5.0 required=5.0\n\ttests=ALL_TRUSTED\nX-Spam-Flag: NO\nx-spam: no\nX-Spamd-Result: default: False [0.00 / 15.00]\n${spam}`;
  const [f] = await transact(d, forged);
  t.equal(fields(f!.lines, 'X-Spam-Status').length, 1, 'one X-Spam-Status: ours');
  t.match(fields(f!.lines, 'X-Spam-Status')[0], /^Yes, /);
  t.same(fields(f!.lines, 'X-Spam-Flag'), ['YES']);
  t.same(fields(f!.lines, 'X-Spam'), ['yes']);
  t.same(fields(f!.lines, 'X-Spamd-Result'), []);
  t.notOk(f!.lines.includes('\ttests=ALL_TRUSTED'), 'continuation lines go with their field');
  // A ham that claims to be spam is not junked by its own header.
  const [h] = await transact(d, `X-Spam: yes\nX-Spam-Flag: YES\n${ham}`);
  t.same(fields(h!.lines, 'X-Spam'), []);
  t.same(fields(h!.lines, 'X-Spam-Flag'), []);
  // smtpd's mark (an earlier filter junked the session) is the very first line: kept.
  const [m] = await transact(d, `X-Spam: Yes\nReceived: from x (x [198.51.100.7]) by mx.test.example\nX-Spam: Yes\n${spam}`);
  t.same(fields(m!.lines, 'X-Spam'), ['Yes'], 'smtpd\'s mark kept, the client\'s copy removed, ours not added twice');
  t.same(fields(m!.lines, 'X-Spam-Flag'), ['YES']);
  const [mh] = await transact(d, `X-Spam: Yes\n${ham}`);
  t.same(fields(mh!.lines, 'X-Spam'), ['Yes'], 'kept on ham too: it is smtpd\'s verdict, not ours');
});

t.test('reject threshold, Subject rewrite, thresholds off', async (t) => {
  const r = await driver(config(['-rejectAt', '6']), { store: source(trained) });
  const [a, b] = await transact(r, [spam, ham]);
  t.equal(a!.commit, 'reject|550 5.7.1 Spam message rejected');
  t.equal(b!.commit, 'proceed');
  const off = await driver(config(['-rejectAt', 'off', '-junkAt', '-100', '-greylistAt', 'off']), { store: source(trained) });
  const [g, h] = await transact(off, [gtube, ham]);
  t.equal(g!.commit, 'reject|550 5.7.1 Spam message rejected (GTUBE test string)', 'GTUBE with -rejectAt off');
  t.same(fields(h!.lines, 'X-Spam'), ['yes'], '-junkAt -100: everything is junk');
  const subj = await driver(config(['-subjectAt', '6']), { store: source(trained) });
  const folded = spam.replace(/^Subject: .*$/m, 'Subject: CHEAP WATCHES!!\n\tfolded part');
  const [s1, s2, s3] = await transact(subj, [spam, folded, spam.replace(/^Subject: .*\n/m, '').replace('Message-ID: <p9001', 'Message-ID: <nosubj')]);
  t.same(fields(s1!.lines, 'Subject'), ['***SPAM*** CHEAP WATCHES 9001!!']);
  t.ok(s2!.lines.includes('Subject: ***SPAM*** CHEAP WATCHES!!') && s2!.lines.includes('\tfolded part'), 'folding kept');
  t.same(fields(s3!.lines, 'Subject'), ['***SPAM***'], 'a message without Subject gets one');
  const [hs] = await transact(subj, ham);
  t.same(fields(hs!.lines, 'Subject'), ['minutes of meeting 9001'], 'ham untouched');
  t.same(rewriteSubjectField('Subject', ['Subject: hi'], '[SPAM] %s (score)'), ['Subject: [SPAM] hi (score)']);
  t.same(rewriteSubjectField('SUBJECT', ['SUBJECT:', '\tx'], '[SPAM] %s'), ['SUBJECT: [SPAM] ', '\tx']);
  t.same(rewriteSubjectField('Subject', ['Subject: hi'], 'SPAM'), ['Subject: SPAM'], 'no %s: replaced');
});

t.test('greylisting: 451 on first sight, passed on a retry after the delay, with the store\'s clock', async (t) => {
  let now = 1_750_000_000_000;
  const store = await trainedStore();
  // Everything in the greylist band: -greylistAt below any score, -junkAt above.
  const c = config(['-greylistAt', '-100', '-junkAt', '100', '-rejectAt', 'off']);
  const d = await driver(c, { store: source(store), now: () => now });
  const first = await transact(d, ham, { rcpts: ['alice@test.example'] });
  t.equal(first[0]!.commit, 'reject|451 4.7.1 Greylisted, please try again later');
  now += 60_000;
  t.equal((await transact(d, ham, { rcpts: ['alice@test.example'] }))[0]!.commit, 'reject|451 4.7.1 Greylisted, please try again later', 'too early');
  now += 250_000;
  const passed = await transact(d, ham, { src: '203.0.113.99:2525', rcpts: ['alice@test.example'] });
  t.equal(passed[0]!.commit, 'proceed', 'retry after 310 s from another address of the pool: passed (message key)');
  t.match(fields(passed[0]!.lines, 'X-Spam-Status')[0], /^No, /, 'with its score');
  t.equal((await transact(d, ham, { rcpts: ['bob@test.example'] }))[0]!.commit, 'reject|451 4.7.1 Greylisted, please try again later', 'other recipients: another key');
  t.equal((await transact(d, hamText(77), { rcpts: ['alice@test.example'] }))[0]!.commit, 'reject|451 4.7.1 Greylisted, please try again later', 'another message');
  // triplet: the client /24, not the message
  const tri = await driver(config(['-greylistAt', '-100', '-junkAt', '100', '-greylistKey', 'triplet', '-greylistDelay', '0']), { store: source(new MemoryStore()), now: () => now });
  t.equal((await transact(tri, ham, { src: '192.0.2.1:1000' }))[0]!.commit, 'reject|451 4.7.1 Greylisted, please try again later');
  t.equal((await transact(tri, hamText(5), { src: '192.0.2.200:1000' }))[0]!.commit, 'proceed', 'same /24, another message: passed with -greylistDelay 0');
  // below the band, and an authenticated client with -scoreAuth, are never greylisted
  const none = await driver(config(['-greylistAt', '-100', '-junkAt', '100', '-scoreAuth']), { store: source(new MemoryStore()), now: () => now });
  t.equal((await transact(none, ham, { auth: 'alice' }))[0]!.commit, 'proceed');
  const low = await driver(config(), { store: source(new MemoryStore()), now: () => now });
  t.equal((await transact(low, ham))[0]!.commit, 'proceed', 'a ham scored below 4 is not greylisted');
});

t.test('-maxBytes: only the beginning is scanned, the whole message passes', async (t) => {
  const seen: Outcome[] = [];
  const d = await driver(config(['-maxBytes', '2048']), { store: source(trained), onOutcome: (o) => seen.push(o) });
  const filler = Array.from({ length: 100 }, (_, i) => `line ${i} of the minutes, nothing to see here`).join('\n');
  const big = ham.trimEnd() + '\n' + filler + '\n' + GTUBE + '\n';
  const [r] = await transact(d, big);
  t.equal(r!.commit, 'proceed', 'GTUBE after the first 2048 bytes is not seen');
  t.same(r!.lines.slice(r!.lines.indexOf('From: colleague9001@work.example')), big.trimEnd().split('\n'), 'every line passed, the unscanned rest included');
  const [g] = await transact(d, gtube + filler + '\n');
  t.equal(g!.commit, 'reject|550 5.7.1 Spam message rejected (GTUBE test string)');
  // a large message spills to disk in the runtime (1 MB) and comes back whole
  const huge = ham.trimEnd() + '\n' + Array.from({ length: 30_000 }, (_, i) => `${i} `.repeat(20)).join('\n') + '\n';
  const [h] = await transact(d, huge);
  t.equal(h!.lines.length, huge.trimEnd().split('\n').length + 1, `${huge.length} bytes through, plus our header`);
});

t.test('the error policy: unscored (default) or 451; X-Spam* removed either way', async (t) => {
  const failing: Store = Object.assign(new MemoryStore(), {
    lookup: async () => {
      throw new StoreError('redis://mx:6379: connection refused', 'ECONN');
    },
  });
  const errs: string[] = [];
  const d = await driver(config(), { store: source(failing), onOutcome: (o) => o.error && errs.push(o.error) });
  const [p] = await transact(d, `X-Spam-Status: No, score=-9\nX-Spam: no\n${spam}`);
  t.equal(p!.commit, 'proceed', 'passed unscored');
  t.same(fields(p!.lines, 'X-Spam-Status'), [], 'no verdict, and not the forged one');
  t.same(fields(p!.lines, 'X-Spam'), []);
  t.match(errs, [/connection refused/]);
  const tf = await driver(config(['-onError', 'tempfail']), { store: source(failing) });
  const [q] = await transact(tf, spam);
  t.equal(q!.commit, 'reject|451 4.3.0 Temporary failure while scanning the message, please try again later');
  const [g] = await transact(await driver(config(['-onError', 'tempfail']), { store: source(failing) }), gtube);
  t.equal(g!.commit, 'reject|451 4.3.0 Temporary failure while scanning the message, please try again later', 'even GTUBE: nothing was scanned');
  // The next message after a failure is scanned normally (no stale verdict).
  let down = true;
  const flaky: Store = Object.assign(await trainedStore(), {});
  const orig = flaky.lookup.bind(flaky);
  flaky.lookup = async (tokens, user) => {
    if (down) throw new StoreError('down', 'ECONN');
    return orig(tokens, user);
  };
  const fd = await driver(config(['-onError', 'tempfail']), { store: source(flaky) });
  const [a] = await transact(fd, ham);
  down = false;
  const [b] = await transact(fd, ham);
  t.match(a!.commit, /^reject\|451/);
  t.equal(b!.commit, 'proceed');
});

t.test('StoreRef: a store that cannot be opened is retried, at most every retryMs', async (t) => {
  let calls = 0;
  let up = false;
  const ref = new StoreRef('redis://127.0.0.1:1/0', silent, 50, async () => {
    calls++;
    if (!up) throw new StoreError('cannot connect', 'ECONN');
    return new MemoryStore();
  });
  await t.rejects(ref.get(), /cannot connect/);
  await t.rejects(ref.get(), /cannot connect/);
  t.equal(calls, 1, 'not retried within retryMs');
  up = true;
  await new Promise((r) => setTimeout(r, 60));
  t.equal((await ref.get()).kind, 'memory');
  await ref.get();
  t.equal(calls, 2, 'opened once, then kept');
});

t.test('authenticated and local sessions pass unscored (X-Spam* still removed) unless -scoreAuth', async (t) => {
  const seen: Outcome[] = [];
  const d = await driver(config(), { store: source(trained), onOutcome: (o) => seen.push(o) });
  const [a] = await transact(d, `X-Spam-Flag: YES\n${gtube}`, { auth: 'alice' });
  t.equal(a!.commit, 'proceed', 'not scored: even GTUBE passes');
  t.same(fields(a!.lines, 'X-Spam-Flag'), [], 'X-Spam* removed');
  t.same(fields(a!.lines, 'X-Spam-Status'), []);
  t.equal(seen[0]!.skipped, 'authenticated');
  const [l] = await transact(d, spam, { src: 'unix:/var/run/smtpd.sock', rdns: 'localhost' });
  t.equal(l!.commit, 'proceed');
  t.same(fields(l!.lines, 'X-Spam'), []);
  t.equal(seen[1]!.skipped, 'local');
  const sc = await driver(config(['-scoreAuth']), { store: source(trained), onOutcome: (o) => seen.push(o) });
  const [g, s] = await transact(sc, [gtube, spam], { auth: 'alice', rdns: '<unknown>', fcrdns: 'fail', helo: '192.0.2.1' });
  t.equal(g!.commit, 'reject|550 5.7.1 Spam message rejected (GTUBE test string)');
  t.same(fields(s!.lines, 'X-Spam'), ['yes'], 'scored');
  const names = seen[seen.length - 1]!.result!.symbols.map((x) => x.name);
  t.notOk(names.some((n) => /^(RDNS|FCRDNS|HELO)_/.test(n)), `no session rule for an authenticated client: ${names}`);
});

t.test('session facts as the engine sees them', async (t) => {
  const base = { id: 's', subsystem: 'smtp-in', local: false, rcpts: ['Alice@Test.Example'] };
  const f = sessionFacts({ ...base, rdns: 'DSL-187-12-34-56.Dyn.Example.NET.', fcrdns: 'pass', src: '187.12.34.56:1', address: '187.12.34.56', family: 4, helo: 'PC-HOME', dest: '192.0.2.25:25', mailFrom: 'x@y' } as SessionInfo, 'mx.test.example', 5);
  t.same(f, {
    time: 5,
    rcptTo: ['Alice@Test.Example'],
    mailFrom: 'x@y',
    ip: '187.12.34.56',
    rdns: 'dsl-187-12-34-56.dyn.example.net',
    rdnsDynamic: true,
    fcrdns: 'pass',
    helo: 'pc-home',
    localNames: ['mx.test.example', '192.0.2.25'],
  });
  t.equal(sessionFacts({ ...base, src: '198.51.100.7:1', address: '198.51.100.7', fcrdns: 'fail' } as SessionInfo, undefined, 0).rdns, null, '<unknown>: no rDNS');
  t.equal(sessionFacts({ ...base, src: '198.51.100.7:1', address: '198.51.100.7', fcrdns: 'error' } as SessionInfo, undefined, 0).rdns, undefined, 'temporary DNS failure: unknown');
  t.equal(sessionFacts({ ...base, rdns: 'mail.example.org', address: '198.51.100.7' } as SessionInfo, undefined, 0).rdnsDynamic, false);
  t.equal(sessionFacts({ ...base, local: true, src: 'unix:/x' } as SessionInfo, undefined, 0).authenticated, true);
  t.equal(sessionFacts({ ...base, authUser: 'alice' } as SessionInfo, undefined, 0).authenticated, true);
  t.same(sessionFacts({ ...base, dest: '[2001:db8::25]:25' } as SessionInfo, undefined, 0).localNames, ['2001:db8::25']);
  // through the runtime: no rDNS, dynamic rDNS, HELO literal that is not the client
  const seen: Outcome[] = [];
  const d = await driver(config(), { store: source(new MemoryStore()), onOutcome: (o) => seen.push(o) });
  await transact(d, ham, { rdns: '<unknown>', fcrdns: 'fail', src: '198.51.100.7:1', helo: '[192.0.2.9]' });
  await transact(d, ham, { rdns: 'dsl-187-12-34-56.dyn.example.net', src: '187.12.34.56:1', helo: 'mx.test.example' });
  const names = seen.map((o) => o.result!.symbols.map((s) => s.name));
  t.ok(names[0]!.includes('RDNS_NONE') && names[0]!.includes('HELO_IP_MISMATCH'), `${names[0]}`);
  t.ok(names[1]!.includes('RDNS_DYNAMIC'), `${names[1]}`);
  t.ok(names.every((n) => n[0] === 'BAYES_NOT_READY'), 'an empty store: rules only');
});

t.test('per-user statistics: the recipient\'s when it can vote, else the site\'s', async (t) => {
  // The site learned nothing; alice learned everything; bob too little.
  const store = await trainedStore(210, new MemoryStore(), 'alice@test.example');
  await store.learn('spam', [learnItem(Buffer.from(spamText(1)), { trust: false })], 'bob@test.example');
  const seen: Outcome[] = [];
  const d = await driver(config(['-perUser']), { store: source(store), onOutcome: (o) => seen.push(o) });
  const [a] = await transact(d, spam, { rcpts: ['Alice@Test.Example'] });
  t.same(fields(a!.lines, 'X-Spam'), ['yes'], 'alice\'s Bayes votes');
  t.equal(seen[0]!.user, 'alice@test.example');
  await transact(d, spam, { rcpts: ['bob@test.example'] });
  t.equal(seen[1]!.user, undefined, 'bob cannot vote yet: the site\'s statistics');
  t.equal(seen[1]!.result!.bayes, null);
  await transact(d, spam, { rcpts: ['alice@test.example', 'bob@test.example'] });
  t.equal(seen[2]!.user, undefined, 'two recipients: one verdict, the site\'s statistics');
  const fixed = await driver(config(['-user', 'ALICE@test.example']), { store: source(store), onOutcome: (o) => seen.push(o) });
  await transact(fixed, spam, { rcpts: ['carol@test.example'] });
  t.equal(seen[3]!.user, 'alice@test.example', '-user: every message');
});

t.test('autolearn: off by default; strong agreement only, batched, balance guard', async (t) => {
  const store = await trainedStore();
  const before = await store.stats();
  const off = await driver(config(['-rejectAt', 'off']), { store: source(store) });
  await transact(off, [spam, ham], { rdns: '<unknown>', fcrdns: 'fail', src: '198.51.100.7:1', helo: '[192.0.2.9]' });
  t.same(await store.stats(), before, 'nothing learned without -autolearn');

  const seen: Outcome[] = [];
  const on = await driver(config(['-autolearn', '-rejectAt', 'off']), { store: source(store), onOutcome: (o) => seen.push(o) });
  // Bayes says spam and the rules add >= 3 points (shouting subject, HTML only with hidden
  // text, huge fonts, a form and a script, 8-bit bytes declared us-ascii): learned as spam.
  await transact(on, strongSpam, { rdns: 'dsl-187-12-34-56.dyn.example.net', src: '187.12.34.56:1', helo: 'pc' });
  const r = seen[0]!.result!;
  const rulePoints = r.symbols.filter((s) => !s.name.startsWith('BAYES')).reduce((a, s) => a + s.score, 0);
  // (if the fitted weights change so that this message no longer reaches the bar, pick another)
  t.equal(autolearnClass(r, before), 'spam', `meets the bar: score ${r.score}, rule points ${rulePoints.toFixed(2)}`);
  // A ham that only Bayes finds clean (and rules have nothing on) at <= -1 is learned as ham.
  await transact(on, [hamText(7001), spamText(7002)]);
  await new Promise((res) => setTimeout(res, 2300));
  const after = await store.stats();
  t.equal(after.nspam, before.nspam + 1, 'the strong spam learned; the weak one (Bayes alone) not');
  const hamScore = seen[1]!.result!.score;
  t.equal(after.nham, before.nham + (autolearnClass(seen[1]!.result!, before) === 'ham' ? 1 : 0), `ham at ${hamScore}: learned only at <= -1 without rules`);
  t.equal(autolearnClass(seen[2]!.result!, before), null, `the plain spam (${seen[2]!.result!.score}, Bayes alone) is not learned`);
  // the guard: a store full of spam learns no more spam
  const lopsided = new MemoryStore();
  await lopsided.learn('spam', Array.from({ length: 300 }, (_, i) => learnItem(Buffer.from(spamText(i)), { trust: false })));
  await lopsided.learn('ham', Array.from({ length: 50 }, (_, i) => learnItem(Buffer.from(hamText(i)), { trust: false })));
  const guarded = await driver(config(['-autolearn', '-rejectAt', 'off']), { store: source(lopsided) });
  await transact(guarded, strongSpam.replace('<p7001@', '<p7003@'), { rdns: 'dsl-187-12-34-56.dyn.example.net', src: '187.12.34.56:1', helo: 'pc' });
  await new Promise((res) => setTimeout(res, 2300));
  t.equal((await lopsided.stats()).nspam, 300, 'more than 4 x 50 + 50 spam: no more spam learned');
  // Autolearner batches: one learn per class and user
  const calls: number[] = [];
  const counting = Object.assign(new MemoryStore(), {});
  const l0 = counting.learn.bind(counting);
  counting.learn = async (cls, items, user, time) => {
    calls.push(items.length);
    return l0(cls, items, user, time);
  };
  const al = new Autolearner(source(counting), silent, 10_000, 3);
  al.add('spam', undefined, learnItem(Buffer.from(spamText(1)), { trust: false }));
  al.add('spam', undefined, learnItem(Buffer.from(spamText(2)), { trust: false }));
  al.add('ham', 'bob', learnItem(Buffer.from(hamText(2)), { trust: false }));
  await al.flush();
  t.same(calls.sort(), [1, 2], 'the third message flushed both groups, one learn each');
  t.equal((await counting.stats('bob')).nham, 1);
});

t.test('several messages per session, a rolled-back message, protocol versions', async (t) => {
  for (const v of ['0.4', '0.5', '0.6', '0.7']) {
    const d = await driver(config(), { store: source(trained) }, v);
    const [a, b, c] = await transact(d, [spam, ham, gtube]);
    t.equal(a!.lines[0], 'X-Spam: yes', `${v}: spam`);
    t.equal(b!.commit, 'proceed', `${v}: ham`);
    t.match(c!.commit, /^reject\|550/, `${v}: GTUBE`);
  }
  // A GTUBE message rolled back mid-DATA leaves no verdict behind for the next one.
  const d = await driver(config(), { store: source(trained) });
  const b = d.b;
  const id = 'aaaaaaaaaaaaaaaa';
  d.send(b.linkConnect(id, 'mail.sender.example', 'pass', '198.51.100.7:1'));
  d.send(b.report(id, 'tx-begin', '11111111'), b.txAddress(id, 'tx-mail', '11111111', 'ok', 'a@b'), b.txAddress(id, 'tx-rcpt', '11111111', 'ok', 'c@d'));
  d.send(...b.data(id, '00000000000000f1', gtube).slice(0, 4));
  d.send(b.report(id, 'tx-rollback', '11111111'), b.report(id, 'tx-reset', '11111111'));
  d.send(b.report(id, 'tx-begin', '22222222'), b.txAddress(id, 'tx-mail', '22222222', 'ok', 'a@b'), b.txAddress(id, 'tx-rcpt', '22222222', 'ok', 'c@d'));
  d.send(...b.data(id, '00000000000000f2', ham));
  await d.settle(5);
  d.send(b.request(id, 'commit', '00000000000000f3'));
  const out = await d.take(5);
  t.ok(out.includes(b.result(id, '00000000000000f3', 'proceed')), 'the ham after the rolled-back GTUBE proceeds');
  t.notOk(out.some((l) => l.includes('|00000000000000f1|')), 'nothing of the rolled-back message is sent');
});
