// The second generation of rules (lib/spam/rules.ts): each hits its sign and stays quiet on
// the look-alike a legitimate sender writes. Synthetic messages; our own wording.
import t from 'tap';
import { analyze } from '../lib/spam/analyze.js';
import { RULES, runRules } from '../lib/spam/rules.js';
import { rulePoints, scorePrepared, prepare } from '../lib/spam/score.js';
import { DEFAULT_WEIGHTS } from '../lib/spam/weights.js';
import { BULK_TOTAL_MAX, REQUIRED, UNSURE_MAX } from '../lib/spam/fit.js';

const when = Date.parse('2002-09-01T10:00:00Z');
const base = 'To: b@example.org\nDate: Sun, 1 Sep 2002 10:00:00 +0000\nMessage-ID: <1.2@example.com>\n';
const run = (msg: string, session?: object) => runRules({ a: analyze(Buffer.from(msg)), session: session as never, now: when });
const hit = (rule: string, msg: string, session?: object) => run(msg, session).includes(rule);
const body = (b: string, subject = 'hello') => `From: a@example.com\n${base}Subject: ${subject}\n\n${b}\n`;

t.test('forged mail clients', async (t) => {
  const oe = 'X-Mailer: Microsoft Outlook Express 6.00.2600.0000\n';
  const goodMid = 'Message-ID: <000a01c25134$4c3a1e60$0200a8c0@pc>\n';
  const msg = (fields: string) => `From: a@example.com\nTo: b@example.org\nDate: Sun, 1 Sep 2002 10:00:00 +0000\n${fields}Subject: hi\n\nx\n`;
  t.notOk(hit('FORGED_MUA_OUTLOOK', msg(oe + goodMid + 'X-MimeOLE: Produced By Microsoft MimeOLE V6.00.2600.0000\n')), 'a real Outlook Express');
  t.ok(hit('FORGED_MUA_OUTLOOK', msg(oe + goodMid)), 'no X-MimeOLE');
  t.ok(hit('FORGED_MUA_OUTLOOK', msg(oe + 'Message-ID: <abc.def@spam.example>\nX-MimeOLE: Produced By Microsoft MimeOLE V6.00.2600.0000\n')), 'a Message-ID Outlook never writes');
  t.ok(hit('MSMAIL_NO_MIMEOLE', msg('X-MSMail-Priority: High\nMessage-ID: <1@x>\n')));
  t.notOk(hit('MSMAIL_NO_MIMEOLE', msg('X-MSMail-Priority: Normal\nX-Mailer: SquirrelMail (version 1.2.7)\nMessage-ID: <1@x>\n')), 'SquirrelMail writes it alone');
  t.ok(hit('XMAILER_BULK', msg('X-Mailer: Send-Safe Mailer\nMessage-ID: <1@x>\n')));
  t.notOk(hit('XMAILER_BULK', msg('X-Mailer: Mutt/1.4i\nMessage-ID: <1@x>\n')));
});

t.test('date and Received chain', async (t) => {
  const d = (v: string) => `From: a@example.com\nTo: b@example.org\nMessage-ID: <1@x>\nDate: ${v}\nSubject: hi\n\nx\n`;
  t.notOk(hit('DATE_MALFORMED', d('Sun, 1 Sep 2002 10:00:00 +0000 (UTC)')));
  t.notOk(hit('DATE_MALFORMED', d('1 Sep 2002 10:00 -0700')));
  t.ok(hit('DATE_MALFORMED', d('Sun, 1 Sep 02 10:00:00 +0000')), 'two-digit year');
  t.ok(hit('DATE_MALFORMED', d('Sun, 1 Sep 2002 10:00:00 GMT+1')));
  t.ok(hit('DATE_AHEAD', d('Sun, 1 Sep 2002 16:00:00 +0000')), 'six hours ahead');
  t.notOk(hit('DATE_AHEAD', d('Sun, 1 Sep 2002 11:00:00 +0000')), 'one hour ahead: a clock, not a zone');
  const rcvd = (r: string) => `Received: ${r}\nFrom: a@example.com\n${base}Subject: hi\n\nx\n`;
  t.ok(hit('RCVD_HELO_IP_MISMATCH', rcvd('from 203.0.113.5 (host.example.net [198.51.100.9]) by mx.example.org with SMTP id 1')));
  t.notOk(hit('RCVD_HELO_IP_MISMATCH', rcvd('from 192.168.1.2 (host.example.net [198.51.100.9]) by mx.example.org with SMTP id 1')), 'a NATed private address');
  t.ok(hit('RCVD_FAKE_HELO', rcvd('from yahoo.com (dsl-9.example.net [198.51.100.9]) by mx.example.org with SMTP id 1')));
  t.notOk(hit('RCVD_FAKE_HELO', rcvd('from web12.mail.yahoo.com (web12.mail.yahoo.com [216.136.1.2]) by mx.example.org with SMTP id 1')));
});

t.test('senders, recipients and subjects', async (t) => {
  t.ok(hit('FROM_MIXED_NUMS', `From: kq7bx3xz@example.com\n${base}Subject: hi\n\nx\n`));
  t.notOk(hit('FROM_MIXED_NUMS', `From: john.smith2002@example.com\n${base}Subject: hi\n\nx\n`));
  t.ok(hit('TO_EQ_FROM', 'From: a@example.com\nTo: a@example.com\nDate: Sun, 1 Sep 2002 10:00:00 +0000\nSubject: hi\n\nx\n'));
  t.notOk(hit('TO_EQ_FROM', 'From: a@example.com\nTo: a@example.com\nList-Id: <l.example.com>\nDate: Sun, 1 Sep 2002 10:00:00 +0000\nSubject: hi\n\nx\n'), 'a list copy to its poster');
  t.ok(hit('SUBJ_HAS_RECIPIENT', `From: a@example.com\nTo: jsmith@example.org\nDate: Sun, 1 Sep 2002 10:00:00 +0000\nSubject: jsmith, look at this\n\nx\n`));
  t.ok(hit('SUBJ_URGENT_PROPOSAL', body('x', 'URGENT ASSISTANCE')));
  t.ok(hit('SUBJ_URGENT_PROPOSAL', body('x', 'Business Proposal')));
  t.notOk(hit('SUBJ_URGENT_PROPOSAL', body('x', 'Re: proposal for the 2.4 release schedule')));
  t.ok(hit('SUBJ_MONEY', body('x', 'Save 50% off all toner')));
  t.notOk(hit('SUBJ_MONEY', body('x', 'Re: patch for the cache code')));
  t.ok(hit('SUBJ_ADV', body('x', '未承諾広告※ お得な情報')));
});

t.test('vocabulary families: two different phrases, not one', async (t) => {
  t.ok(hit('BODY_FINANCIAL', body('Rates are at historic lows. Lower your monthly payments with debt consolidation today.')));
  t.notOk(hit('BODY_FINANCIAL', body('Our mortgage rates are discussed in the minutes of the board meeting.')), 'one phrase');
  t.ok(hit('BODY_MONEY_MAKING', body('Work from home and earn $5,000 per week. Be your own boss!')));
  t.notOk(hit('BODY_MONEY_MAKING', body('I work from home on Fridays.')));
  t.ok(hit('BODY_DRUGS', body('Buy viagra from our online pharmacy, no prescription needed.')));
  t.ok(hit('BODY_STOCK', body('Investor alert: OTCBB symbol: ABCD is undervalued, a strong buy.')));
  t.ok(hit('BODY_MARKETING_LISTS', body('Get 10 million fresh email addresses and our bulk email software.')));
  t.ok(hit('BODY_PRIZE', body('Congratulations! You have been selected to receive a free vacation.')));
  t.ok(hit('BODY_GUARANTEE', body('100% guaranteed, with a money-back guarantee and absolutely free shipping.')));
  t.ok(hit('BODY_URGENCY', body('Act now! This offer expires Friday, order today.')));
  t.ok(hit('BODY_ONE_TIME', body('This is a one-time mailing; you will not receive further messages from us.')));
  t.ok(hit('BODY_REMOVE_INSTRUCTIONS', body('To be removed from our list, reply with REMOVE in the subject line.')));
  t.ok(hit('BODY_ADDRESS_OBTAINED', body('Your email address was obtained from a purchased list.')));
  t.ok(hit('BODY_LAW_CLAIM', body('This mailing complies with H.R. 3113 and all state requirements.')));
  t.ok(hit('BODY_DEAR_GENERIC', body('Dear Homeowner,\n\nwe write to you')));
  t.notOk(hit('BODY_DEAR_GENERIC', body('Dear Alice,\n\nthe build broke.')));
  t.ok(hit('BODY_CLICK_CAPS', body('CLICK HERE to see')));
  t.notOk(hit('BODY_CLICK_CAPS', body('click here to see the logs')));
  t.ok(hit('BODY_SHOUTING', body('THIS IS THE BEST OFFER EVER MADE\nYOU WILL NEVER SEE IT AGAIN ANYWHERE\nORDER BEFORE IT IS GONE FOR GOOD NOW')));
  t.ok(hit('BODY_EXCLAIM', body('Amazing!!! Really')));
  t.ok(hit('BODY_RANDOM_TOKEN', body('hello there\n\nxay2095811y7k\n')));
  t.notOk(hit('BODY_RANDOM_TOKEN', body('commit 3f2a9c1d0e\nsee you')), 'a hexadecimal id');
});

t.test('links and HTML', async (t) => {
  const html = (h: string, ct = 'text/html; charset=us-ascii') => `From: a@example.com\n${base}Subject: hi\nMIME-Version: 1.0\nContent-Type: ${ct}\n\n${h}\n`;
  t.ok(hit('URI_SUSPECT_TLD', body('see http://deals.example.biz/offer')));
  t.notOk(hit('URI_SUSPECT_TLD', body('see http://www.example.org/docs')));
  t.ok(hit('URI_OBFUSCATED', body('http://example.com/%63%6c%69%63%6b')));
  t.ok(hit('URI_WEIRD_PORT', body('http://example.com:8765/x')));
  t.notOk(hit('URI_WEIRD_PORT', body('http://example.com:8080/x')));
  t.ok(hit('URI_REMOVE_LINK', body('mailto:remove@example.com')));
  t.ok(hit('URI_EMAIL_IN_URL', body('http://example.com/track?u=bob@example.org')));
  t.ok(hit('HTML_NO_HTML_TAG', html('<p>Buy <b>now</b></p>')));
  t.notOk(hit('HTML_NO_HTML_TAG', html('<html><body><p>Minutes</p></body></html>')));
  t.ok(hit('HTML_TITLE_DEFAULT', html('<html><head><title>Untitled Document</title></head><body>x</body></html>')));
  t.ok(hit('MIME_HTML_NO_CHARSET', html('<html><body>x</body></html>', 'text/html')));
  t.notOk(hit('MIME_HTML_NO_CHARSET', html('<html><body>x</body></html>')));
  const alt = `From: a@example.com\n${base}Subject: hi\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/html; charset=utf-8\n\n<html><body>x</body></html>\n--b--\n`;
  t.ok(hit('MIME_HTML_ONLY_ALT', alt));
});

t.test('a plain personal message hits none of them', async (t) => {
  const msg = 'Received: from mail.example.net (mail.example.net [192.0.2.10]) by mx.example.org with ESMTP id 1\n' +
    'From: Alice <alice@example.net>\nTo: bob@example.org\nDate: Sun, 1 Sep 2002 09:55:00 +0000\nMessage-ID: <20020901095500.GA1@example.net>\n' +
    'In-Reply-To: <20020901094000.GB2@example.org>\nUser-Agent: Mutt/1.4i\nSubject: Re: the build\n\nBob,\n\nthe build broke again after your change to the cache; see http://build.example.net/log/123\n\nAlice\n';
  t.same(run(msg, { ip: '192.0.2.10', rdns: 'mail.example.net', fcrdns: 'pass', helo: 'mail.example.net' }), []);
});

t.test('bulk-style rules carry at most BULK_TOTAL_MAX points together', async (t) => {
  const bulk = RULES.filter((r) => r.bulk).map((r) => r.name);
  t.ok(DEFAULT_WEIGHTS.bulk, 'the shipped weights carry the group cap');
  t.equal(DEFAULT_WEIGHTS.bulk!.max, BULK_TOTAL_MAX);
  t.ok(UNSURE_MAX + BULK_TOTAL_MAX < REQUIRED, 'an unsure Bayes and formatting alone do not junk');
  const pts = rulePoints(bulk, Object.fromEntries(bulk.map((r) => [r, 1])), { rules: bulk, max: BULK_TOTAL_MAX });
  t.equal(Math.round(pts.reduce((a, p) => a + p.score, 0) * 1e9) / 1e9, BULK_TOTAL_MAX);
  t.ok(pts.every((p) => p.scaled));
  // Other rules are not scaled.
  const mixed = rulePoints([...bulk, 'ADVANCE_FEE'], { ...Object.fromEntries(bulk.map((r) => [r, 1])), ADVANCE_FEE: 2.5 }, { rules: bulk, max: BULK_TOTAL_MAX });
  t.equal(mixed.find((p) => p.name === 'ADVANCE_FEE')!.score, 2.5);
  // End to end: a newsletter with many formatting habits, Bayes silent (rules-only set).
  const news = prepare(
    Buffer.from(
      `From: Shop <news@shop.example>\nTo: undisclosed-recipients:;\nDate: Sun, 1 Sep 2002 10:00:00 +0000\nMessage-ID: <1@shop.example>\nX-Priority: 1\nSubject: BIG SUMMER SALE NOW ON!!!\nMIME-Version: 1.0\nContent-Type: text/html\n\n<p><font size=7>CLICK HERE</font> Amazing!!! <form action="http://shop.example/f"></form></p>\n`,
    ),
    { time: when },
  );
  const r = scorePrepared(news, null);
  const bulkPts = r.symbols.filter((s) => bulk.includes(s.name)).reduce((a, s) => a + s.score, 0);
  t.ok(bulkPts <= BULK_TOTAL_MAX + 0.01, `bulk-style points ${bulkPts.toFixed(2)} ≤ ${BULK_TOTAL_MAX}`);
});
