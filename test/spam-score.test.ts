// Scoring: GTUBE, actions and thresholds, Bayes gating, rules on session facts, tokens.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { actionFor, bayesBand, bayesContribution, DEFAULT_THRESHOLDS, learnItem, prepare, scorePrepared, SpamScanner } from '../lib/spam/score.js';
import { DEFAULT_WEIGHTS, type Weights } from '../lib/spam/weights.js';
import { runRules, RULES } from '../lib/spam/rules.js';
import { analyze } from '../lib/spam/analyze.js';
import { hash53, hash53Join, tokenize } from '../lib/spam/tokenize.js';
import { parseReceived, sessionFromReceived } from '../lib/spam/received.js';
import { MemoryStore } from '../lib/store/memory.js';

const fx = (n: string) => fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/spam', n));

const W: Weights = {
  bayes: { knots: [-10, 0, 10], values: [-2, 5, 12] },
  rules: { RDNS_NONE: 1.5, HELO_BARE_IP: 2, MISSING_DATE: 0.5 },
  untrained: { base: -1, rules: { RDNS_NONE: 3 } },
  provenance: 'test',
};

t.test('GTUBE is rejected, as SpamAssassin and rspamd do', async (t) => {
  const s = new SpamScanner(null);
  const r = await s.scan(fx('gtube.eml'));
  t.equal(r.action, 'reject');
  t.ok(r.score >= 1000);
  t.ok(r.symbols.some((x) => x.name === 'GTUBE' && x.score === 1000));
  // Inside a base64 part too.
  const b64 = Buffer.from(
    `Subject: x\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n${Buffer.from('XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X').toString('base64')}\n`,
  );
  t.equal((await s.scan(b64)).action, 'reject');
});

t.test('actions follow rspamd\'s default thresholds', async (t) => {
  const th = { ...DEFAULT_THRESHOLDS };
  t.same([th.greylist, th.addHeader, th.rewriteSubject, th.reject], [4, 6, null, 15]);
  t.equal(actionFor(3.9, th), 'no action');
  t.equal(actionFor(4, th), 'greylist');
  t.equal(actionFor(6, th), 'add header');
  t.equal(actionFor(14.9, th), 'add header');
  t.equal(actionFor(15, th), 'reject');
  t.equal(actionFor(8, { ...th, rewriteSubject: 8 }), 'rewrite subject');
  t.equal(actionFor(5, { ...th, greylist: null }), 'no action');
  t.equal(actionFor(99, { ...th, reject: null }), 'add header');
});

t.test('Bayes is silent before 200/200; the score is the sum of the symbols', async (t) => {
  const m = Buffer.from('From: a@example.com\nSubject: hi\nMessage-ID: <x@example.com>\n\nhello\n');
  const session = { ip: '192.0.2.1', rdns: null, helo: '192.0.2.1' };
  const p = prepare(m, session);
  t.ok(p.hits.includes('RDNS_NONE') && p.hits.includes('HELO_BARE_IP') && p.hits.includes('MISSING_DATE'));
  // Untrained: rules-only weights and BAYES_NOT_READY carrying the constant.
  const lookup0 = { nspam: 150, nham: 3000, spam: new Uint32Array(p.tokens.length), ham: new Uint32Array(p.tokens.length) };
  const r0 = scorePrepared(p, lookup0, { weights: W });
  t.equal(r0.bayes, null);
  t.match(r0.symbols.find((s) => s.name === 'BAYES_NOT_READY')!.description, /not enough training \(150 spam, 3000 ham learned; 200\/200 needed\)/);
  t.same(r0.symbols.map((s) => [s.name, s.score]), [['BAYES_NOT_READY', -1], ['RDNS_NONE', 3]]);
  t.equal(r0.score, 2);
  // No store at all.
  const rn = scorePrepared(p, null, { weights: W });
  t.match(rn.symbols[0]!.description, /no store/);
  // Trained: the Bayes band symbol carries the curve's value, rules their weights.
  const spamC = new Uint32Array(p.tokens.length).fill(50);
  const r1 = scorePrepared(p, { nspam: 300, nham: 300, spam: spamC, ham: new Uint32Array(p.tokens.length) }, { weights: W });
  t.ok(r1.bayes && r1.bayes.probability > 0.99);
  t.equal(r1.symbols[0]!.name, 'BAYES_999');
  t.equal(r1.symbols[0]!.score, 12);
  const sum = r1.symbols.reduce((a, s) => a + s.score, 0);
  t.equal(r1.score, Math.round(sum * 100) / 100);
  t.equal(r1.score, 12 + 1.5 + 2 + 0.5);
  t.equal(r1.action, 'reject');
  t.equal(r1.required, 6);
});

t.test('Bayes curve and bands', async (t) => {
  t.equal(bayesContribution(-100, W), -2);
  t.equal(bayesContribution(-5, W), 1.5);
  t.equal(bayesContribution(0, W), 5);
  t.equal(bayesContribution(100, W), 12);
  t.equal(bayesBand(0.005).name, 'BAYES_00');
  t.equal(bayesBand(0.5).name, 'BAYES_50');
  t.equal(bayesBand(0.97).name, 'BAYES_95');
  t.equal(bayesBand(0.9995).name, 'BAYES_999');
  // The shipped curve is monotone (fitted with non-negative steps).
  const v = DEFAULT_WEIGHTS.bayes.values;
  for (let i = 1; i < v.length; i++) t.ok(v[i]! >= v[i - 1]!, `monotone at knot ${i}`);
  for (const w of Object.values(DEFAULT_WEIGHTS.rules)) t.ok(w > 0, 'rule weights are positive');
});

t.test('session-fact rules', async (t) => {
  const a = analyze(Buffer.from('From: a@example.com\nTo: b@example.org\nDate: Mon, 6 Jan 2003 10:00:00 +0000\nMessage-ID: <a@b>\nSubject: x\n\nbody\n'));
  const hits = (session: object) => runRules({ a, session: session as never, now: Date.parse('2003-01-06T10:00:00Z') });
  t.same(hits({ ip: '192.0.2.1', rdns: null }), ['RDNS_NONE']);
  t.same(hits({ ip: '192.0.2.1', rdns: 'host.example.net', fcrdns: 'fail' }), ['FCRDNS_FAIL']);
  t.same(hits({ ip: '192.0.2.1', rdns: 'dsl-1-2.pool.example.net', fcrdns: 'pass', rdnsDynamic: true }), ['RDNS_DYNAMIC']);
  t.same(hits({ ip: '192.0.2.1', rdns: 'mx.example.net', fcrdns: 'pass', helo: '192.0.2.1' }), ['HELO_BARE_IP']);
  t.same(hits({ ip: '192.0.2.1', rdns: 'mx.example.net', fcrdns: 'pass', helo: '[192.0.2.9]' }), ['HELO_IP_MISMATCH']);
  t.same(hits({ ip: '192.0.2.1', rdns: 'mx.example.net', fcrdns: 'pass', helo: 'mycomputer' }), ['HELO_NOT_FQDN']);
  t.same(hits({ ip: '192.0.2.1', rdns: 'mx.example.net', fcrdns: 'pass', helo: 'mx.ours.example', localNames: ['MX.ours.example'] }), ['HELO_CLAIMS_US']);
  t.same(hits({ ip: '192.0.2.1', rdns: 'mx.example.net', fcrdns: 'pass', helo: 'localhost' }), ['HELO_NOT_FQDN', 'HELO_LOCALHOST']);
  // Authenticated submission: no session rules.
  t.same(hits({ ip: '192.0.2.1', rdns: null, helo: '1.2.3.4', authenticated: true }), []);
  t.same(hits({ ip: '192.0.2.1', rdns: 'mx.example.net', fcrdns: 'pass', helo: 'mx.example.net' }), []);
});

t.test('header and body rules', async (t) => {
  const a = analyze(
    Buffer.from(
      'From: "support@bank.example" <x12345@other.example>\nReply-To: a@elsewhere.example\nTo: undisclosed-recipients:;\nSubject: Re: FREE MONEY FOR YOU NOW!!\n' +
        'Date: Mon, 6 Jan 2003 10:00:00 -1600\nMessage-ID: 12345\nX-Mailer: Jf8dK2lQ9zR\nX-Priority: 1\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=q\n\n' +
        '--q\nContent-Type: text/html\n\n<a href="http://198.51.100.7/x">http://www.bank.example/</a> <a href="http://bit.ly/abc">x</a> <a href="http://www.bank.example@evil.example/">y</a>\n' +
        '--q\nContent-Type: application/octet-stream; name="invoice.pdf.exe"\nContent-Transfer-Encoding: base64\n\nTVo=\n--q--\n',
    ),
  );
  const hits = runRules({ a, session: undefined, now: Date.parse('2003-01-06T10:00:00Z') });
  for (const r of ['FROM_REPLYTO_DIFF', 'FROM_NAME_ADDR_DIFF', 'FROM_LOCAL_DIGITS', 'TO_UNDISCLOSED', 'SUBJ_SHOUT', 'SUBJ_EXCLAIM', 'SUBJ_FAKE_REPLY', 'DATE_BAD_TZ', 'MID_MALFORMED', 'XMAILER_RANDOM', 'PRIORITY_HIGH', 'MIME_HTML_ONLY', 'URI_IP', 'URI_TEXT_MISMATCH', 'URI_SHORTENER', 'URI_USERINFO', 'ATTACH_EXECUTABLE']) {
    t.ok(hits.includes(r), r);
  }
  const clean = analyze(fx('koi8r.eml'));
  t.same(runRules({ a: clean, session: undefined, now: Date.parse('2003-01-06T08:00:00Z') }), []);
  t.equal(RULES.length, new Set(RULES.map((r) => r.name)).size, 'rule names are unique');
});

t.test('rules on forged senders, spam formulae and self-declared advertising', async (t) => {
  const when = Date.parse('2002-09-01T10:00:00Z');
  const run = (msg: string, session?: object) => runRules({ a: analyze(Buffer.from(msg)), session: session as never, now: when });
  const base = 'To: b@example.org\nDate: Sun, 1 Sep 2002 10:00:00 +0000\n';
  const viaHotmail = 'Received: from hotmail.com (f12.law8.hotmail.com [64.4.12.1]) by mx.example.org with SMTP id 1\n';
  const direct = 'Received: from pc (dsl-1.example.net [198.51.100.9]) by mx.example.org with SMTP id 2\n';
  // From a big provider, never through it.
  t.ok(run(`${direct}From: a@hotmail.com\nMessage-ID: <1@pc.example.net>\n${base}Subject: hi\n\nx\n`).includes('FREEMAIL_FORGED'));
  t.ok(run(`${direct}From: a@example.com\nMessage-ID: <1@yahoo.com>\n${base}Subject: hi\n\nx\n`).includes('FREEMAIL_FORGED'), 'Message-ID claims it');
  t.notOk(run(`${viaHotmail}From: a@hotmail.com\nMessage-ID: <1@hotmail.com>\n${base}Subject: hi\n\nx\n`).includes('FREEMAIL_FORGED'), 'came through it');
  t.notOk(run(`From: a@hotmail.com\n${base}Subject: hi\n\nx\n`, { ip: '64.4.12.1', rdns: 'f12.law8.hotmail.com', fcrdns: 'pass' }).includes('FREEMAIL_FORGED'), 'the session is the provider');
  t.notOk(run(`${direct}From: a@hotmail.com\nList-Id: <talk.lists.example>\n${base}Subject: hi\n\nx\n`).includes('FREEMAIL_FORGED'), 'a list relays a web post');
  t.notOk(run(`From: a@gmail.com\n${base}Subject: hi\n\nx\n`, { ip: '192.0.2.1', rdns: 'pc.example.org', authenticated: true }).includes('FREEMAIL_FORGED'), 'our own user');
  // Replies to a throwaway mailbox.
  t.ok(run(`From: sales@shop.example\nReply-To: deals2002@yahoo.com\n${base}Subject: hi\n\nx\n`).includes('FREEMAIL_REPLYTO'));
  t.notOk(run(`From: a@yahoo.com\nReply-To: a@yahoo.com\n${base}Subject: hi\n\nx\n`).includes('FREEMAIL_REPLYTO'));
  // HELO claims a provider.
  const helo = (h: string, rdns: string | null) => run(`From: a@example.com\n${base}Subject: hi\n\nx\n`, { ip: '198.51.100.9', rdns, fcrdns: 'pass', helo: h });
  t.ok(helo('hotmail.com', 'dsl-1.example.net').includes('HELO_FORGED_PROVIDER'));
  t.ok(helo('mail.yahoo.com', null).includes('HELO_FORGED_PROVIDER'));
  t.notOk(helo('web12.mail.yahoo.com', 'web12.mail.yahoo.com').includes('HELO_FORGED_PROVIDER'));
  t.notOk(helo('mx.example.com', 'mx.example.com').includes('HELO_FORGED_PROVIDER'));
  // Subjects.
  const subj = (s: string) => run(`From: a@example.com\n${base}Subject: ${s}\n\nx\n`);
  t.ok(subj('ADV: Lowest rates').includes('SUBJ_ADV'));
  t.ok(subj('[ILUG] Adv: cheap toner').includes('SUBJ_ADV'));
  t.notOk(subj('Advice on kernels').includes('SUBJ_ADV'));
  t.ok(subj('Refinance now').includes('SUBJ_SPAM_TOPIC'));
  t.ok(subj('Work from home and make money').includes('SUBJ_SPAM_TOPIC'));
  t.notOk(subj('Re: kernel panic on boot').includes('SUBJ_SPAM_TOPIC'));
  // Body formulae.
  const body = (b: string) => run(`From: a@example.com\n${base}Subject: hello\n\n${b}\n`);
  t.ok(body('This message is sent in compliance of the new e-mail bill: SECTION 301. Per Section 301, Paragraph (a)(2)(C) of S. 1618').includes('SPAM_DISCLAIMER'));
  t.ok(body('This is not spam. You signed up.').includes('SPAM_DISCLAIMER'));
  t.notOk(body('Is this spam or not? I cannot tell.').includes('SPAM_DISCLAIMER'));
  t.ok(
    body('I am the son of the late general. We seek a foreign partner for the transfer of the funds, USD 25 million, in strictest confidence; you keep 20% of the total sum.').includes('ADVANCE_FEE'),
  );
  t.notOk(body('The bank moved 25 million dollars in the transfer of the funds.').includes('ADVANCE_FEE'), 'two formulae are not enough');
  // None of them on the plain fixtures.
  t.same(runRules({ a: analyze(fx('latin1-alt.eml')), session: undefined, now: when }).filter((r) => ['FREEMAIL_FORGED', 'FREEMAIL_REPLYTO', 'SUBJ_ADV', 'SUBJ_SPAM_TOPIC', 'SPAM_DISCLAIMER', 'ADVANCE_FEE'].includes(r)), []);
});

t.test('Received parsing recovers the session facts', async (t) => {
  const smtpd = parseReceived('from mail.example.net (mail.example.net [192.0.2.10])\n\tby mx.example.org (OpenSMTPD) with ESMTPS id 1a2b3c4d; Mon, 6 Jan 2003 10:00:00 +0000');
  t.same([smtpd.helo, smtpd.rdns, smtpd.ip, smtpd.authenticated], ['mail.example.net', 'mail.example.net', '192.0.2.10', false]);
  t.equal(parseReceived('from x (<unknown> [192.0.2.11]) by mx with SMTP id 1').rdns, undefined);
  t.equal(parseReceived('from h6 (h6.example.net IPv6:2001:db8::5) by mx with ESMTP id 1').ip, '2001:db8::5');
  t.ok(parseReceived('from pc (pc.example.net [192.0.2.12]) by mx with ESMTPSA id 1').authenticated);
  t.same(parseReceived('from [192.0.2.13] (helo=pc) by mx with esmtp (Exim)').helo, 'pc');
  t.ok(parseReceived('from spoofer (host.example.net [192.0.2.14] (may be forged)) by mx').forged);
  const headers = analyze(Buffer.from('Received: from lmtp by box with LMTP id 1\nReceived: from localhost (localhost [127.0.0.1]) by mx\nReceived: from ws (unknown [198.51.100.9]) by mx.example.org with SMTP id 2; Mon, 6 Jan 2003 10:00:00 +0000\n\nx\n')).headers;
  t.same(sessionFromReceived(headers), { ip: '198.51.100.9', rdns: null, fcrdns: 'fail', helo: 'ws', time: Date.parse('2003-01-06T10:00:00Z') });
});

t.test('tokens: prefixes, decoding, ignored fields', async (t) => {
  const a = analyze(fx('cjk.eml'));
  const tk = tokenize(a, { ip: '192.0.2.1', rdns: 'mail.example.cn', helo: 'mail.example.cn' }, { keepStrings: true }).strings!;
  t.ok(tk.includes('免费') && tk.includes('发票'), 'CJK runs become character pairs');
  t.ok(tk.includes('s:我贏') && tk.includes('s:café'), 'subject words, decoded, prefixed');
  t.ok(tk.includes('from:d:example.cn') && tk.includes('from:n:sales'));
  t.ok(tk.includes('cl:ip:192.0.2') && tk.includes('cl:rdns:example.cn'));
  t.notOk(tk.some((x) => x.startsWith('to:') || x.includes('user@example.org')), 'recipient not tokenized');
  const l = analyze(fx('latin1-alt.eml'));
  const tl = tokenize(l, undefined, { keepStrings: true }).strings!;
  t.ok(tl.includes('café') && tl.includes('crème') && tl.includes('café crème'), 'words and word pairs from decoded 8-bit text');
  t.ok(tl.includes('u:d:example.com') && tl.includes('u:p:example.com/menu'));
  t.notOk(tl.some((x) => x.startsWith('html:') || x.startsWith('tag:')), 'no markup tokens');
  const k = tokenize(analyze(fx('koi8r.eml')), undefined, { keepStrings: true }).strings!;
  t.ok(k.includes('дешёвые') && k.includes('s:привет'));
  // Learning and scanning see the same client tokens: learnItem recovers them from Received.
  const withRcvd = Buffer.concat([Buffer.from('Received: from mail.example.cn (mail.example.cn [192.0.2.1]) by mx.example.org with ESMTP id 1\n'), fx('cjk.eml')]);
  const learned = new Set(learnItem(withRcvd).tokens);
  const scanned = tokenize(analyze(withRcvd), { ip: '192.0.2.1', rdns: 'mail.example.cn', helo: 'mail.example.cn' }).hashes;
  t.ok(scanned.every((h) => learned.has(h)));
});

t.test('tokens: the hashes are the hashes of the token strings, once each, in order', async (t) => {
  // tokenize hashes word pairs and prefixed words without building their strings
  // (hash53Join) and dedups in a table reused across messages: same set as hashing strings.
  for (const f of ['cjk.eml', 'latin1-alt.eml', 'koi8r.eml']) {
    const a = analyze(fx(f));
    const kept = tokenize(a, { ip: '192.0.2.1', rdns: 'mail.example.cn', helo: 'x' }, { keepStrings: true });
    const plain = tokenize(a, { ip: '192.0.2.1', rdns: 'mail.example.cn', helo: 'x' });
    t.same(plain.hashes, kept.hashes, f + ': same hashes with and without strings');
    t.same(kept.hashes, kept.strings!.map((s) => hash53(s)), f + ': hash of each string');
    t.equal(new Set(kept.hashes).size, kept.hashes.length, f + ': no duplicates');
  }
  for (const [a, b, c] of [['', '', ''], ['s:', 'café', ''], ['foo', ' ', 'bar'], ['免', '费', '票']] as const) t.equal(hash53Join(a, b, c), hash53(a + b + c));
});

t.test('scan with a trained store', async (t) => {
  const store = new MemoryStore();
  const s = new SpamScanner(store);
  for (let i = 0; i < 200; i++) {
    await s.learn(Buffer.from(`From: s${i}@spam.example\nSubject: cheap pills ${i}\nMessage-ID: <s${i}@spam.example>\n\nbuy cheap pills viagra now ${i}\n`), 'spam');
    await s.learn(Buffer.from(`From: h${i}@work.example\nSubject: meeting notes ${i}\nMessage-ID: <h${i}@work.example>\n\nthe meeting agenda for tomorrow ${i}\n`), 'ham');
  }
  const spam = await s.scan(Buffer.from('From: x@spam.example\nSubject: cheap pills\nMessage-ID: <n1@spam.example>\n\nbuy cheap pills viagra\n'));
  const ham = await s.scan(Buffer.from('From: y@work.example\nSubject: meeting notes\nMessage-ID: <n2@work.example>\n\nthe meeting agenda\n'));
  t.ok(spam.bayes && spam.bayes.probability > 0.99);
  t.ok(ham.bayes && ham.bayes.probability < 0.01);
  t.ok(spam.score > ham.score);
  t.ok(spam.score >= 6 && ham.score < 4, `spam ${spam.score}, ham ${ham.score}`);
});

t.test('autolearn only on strong, independent agreement, with a balance guard', async (t) => {
  const { autolearnClass } = await import('../lib/spam/score.js');
  const r = (score: number, syms: [string, number][]) => ({ score, required: 6, action: 'add header' as const, bayes: null, symbols: syms.map(([name, s]) => ({ name, score: s, description: '' })) });
  const bal = { nspam: 100, nham: 100 };
  t.equal(autolearnClass(r(13, [['BAYES_999', 9], ['SUBJ_SHOUT', 2], ['RDNS_NONE', 2]]), bal), 'spam');
  t.equal(autolearnClass(r(13, [['BAYES_999', 12], ['SUBJ_SHOUT', 1]]), bal), null, 'Bayes alone does not teach itself');
  t.equal(autolearnClass(r(-1.5, [['BAYES_00', -1.5]]), bal), 'ham');
  t.equal(autolearnClass(r(-1.5, [['BAYES_00', -2], ['CHARSET_ODD', 0.5]]), bal), null, 'ham only without any rule hit');
  t.equal(autolearnClass(r(5, [['BAYES_80', 5]]), bal), null);
  t.equal(autolearnClass(r(13, [['BAYES_999', 9], ['SUBJ_SHOUT', 4]]), { nspam: 1000, nham: 100 }), null, 'balance guard');
  t.equal(autolearnClass(r(1000, [['GTUBE', 1000], ['SUBJ_SHOUT', 4]]), bal), null, 'GTUBE is never learned');
});
