// Verdict headers in both dialects, folding limits, and removal of forged X-Spam* fields
// with smtpd's first-line "X-Spam: Yes" kept.
import t, { type Test } from 'tap';
type Tap = Test;
import { foldField, renderHeaders, renderRspamd, renderSpamAssassin, rewriteSubject, spamFieldsToRemove,
  smtpdJunked, stripSpamFieldLines } from '../lib/spam/headers.js';
import type { ScanResult } from '../lib/spam/types.js';

const result = (score: number, names: string[], action: ScanResult['action'] = score >= 15 ? 'reject' : score >= 6 ? 'add header' : score >= 4 ? 'greylist' : 'no action'): ScanResult => ({
  score,
  required: 6,
  action,
  symbols: names.map((n, i) => ({ name: n, score: i === 0 ? score - (names.length - 1) * 0.5 : 0.5, description: n })),
  bayes: null,
});

function checkLines(t: Tap, lines: string[]): void {
  for (const [i, l] of lines.entries()) {
    t.ok(Buffer.byteLength(l) < 998, 'line under 998 bytes');
    t.notOk(/[\r\n]/.test(l), 'no line ends inside');
    if (i > 0 && !/^X-Spam[-A-Za-z]*: /.test(l)) t.ok(l.startsWith('\t'), 'continuation starts with TAB');
  }
}

t.test('SpamAssassin dialect', async (t) => {
  const r = result(7.2, ['BAYES_99', 'RDNS_NONE', 'HTML_FONT_HUGE']);
  // 81 characters on one line: folded after a comma, the rest on a TAB line.
  t.same(renderSpamAssassin(r), ['X-Spam-Flag: YES', 'X-Spam-Level: *******', 'X-Spam-Status: Yes, score=7.2 required=6.0 tests=BAYES_99,HTML_FONT_HUGE,', '\tRDNS_NONE']);
  const ham = result(-1.5, ['BAYES_00']);
  t.same(renderSpamAssassin(ham), ['X-Spam-Status: No, score=-1.5 required=6.0 tests=BAYES_00']);
  t.same(renderSpamAssassin({ ...ham, symbols: [] }), ['X-Spam-Status: No, score=-1.5 required=6.0 tests=none']);
  // Stars stop at 50 like SpamAssassin's.
  t.equal(renderSpamAssassin(result(1000, ['GTUBE']))[1], 'X-Spam-Level: ' + '*'.repeat(50));
});

t.test('filter-rspamd dialect', async (t) => {
  const r = result(7.2, ['BAYES_99', 'RDNS_NONE']);
  const lines = renderRspamd(r, { reject: 15 });
  t.equal(lines[0], 'X-Spam: yes');
  t.equal(lines[1], 'X-Spam-Score: 7.2 / 15.0');
  t.match(lines.slice(2).join('\n'), /^X-Spam-Status: Yes, score=7\.200 required=15\.000\n\ttests=\[BAYES_99=6\.700, RDNS_NONE=0\.500\]$/);
  t.same(renderRspamd(result(2, ['BAYES_00'])), [], 'nothing for ham');
  const both = renderHeaders(r, 'both', { reject: 15 });
  t.same(both.slice(0, 3), ['X-Spam: yes', 'X-Spam-Score: 7.2 / 15.0', 'X-Spam-Flag: YES']);
  t.equal(rewriteSubject('Hello'), '***SPAM*** Hello');
});

t.test('folding: many and long symbols', async (t) => {
  const names = Array.from({ length: 120 }, (_, i) => `SOME_RATHER_LONG_RULE_NAME_${i}`);
  names.push('X'.repeat(500)); // absurd name: cut to 64 chars
  names.push('bad name;with\r\nstuff');
  const r = result(50, names);
  for (const lines of [renderSpamAssassin(r), renderRspamd(r), renderHeaders(r, 'both')]) {
    checkLines(t, lines);
    t.ok(lines.every((l) => l.length <= 78 || l.length < 100), 'lines stay near 78 columns');
  }
  const sa = renderSpamAssassin(r);
  const status = sa.slice(sa.findIndex((l) => l.startsWith('X-Spam-Status:')));
  const unfolded = status.join('').replace(/\t/g, '');
  t.match(unfolded, /tests=BAD_NAME_WITH__STUFF,SOME_RATHER_LONG_RULE_NAME_0,/);
  t.ok(unfolded.includes('X'.repeat(64) + ',') || unfolded.endsWith('X'.repeat(64)));
  t.notOk(unfolded.includes('X'.repeat(65)));
  // Every symbol survives folding exactly once.
  const listed = unfolded.replace(/^.*tests=/, '').split(',');
  t.equal(listed.length, names.length);
  t.same(foldField('X-A', ['a', 'b']), ['X-A: a b']);
});

t.test('removing forged X-Spam* fields, keeping what smtpd and the chain wrote above smtpd\'s Received field', async (t) => {
  const f = (name: string, value: string) => ({ name, value });
  // smtpd junked the session: its "X-Spam: Yes" is field 0, before its Received field.
  const junked = [f('X-Spam', ' Yes'), f('Received', ' from x by mx'), f('X-Spam-Status', ' No, score=-5'), f('x-spam-flag', ' NO'), f('Subject', ' hi'), f('X-Spamd-Result', ' default: False'), f('X-Spam', ' Yes')];
  t.same(spamFieldsToRemove(junked), [2, 3, 5, 6], 'smtpd\'s mark kept, every other X-Spam* removed (including a second X-Spam: Yes)');
  // Not junked: smtpd's Received is first, so any X-Spam field came from the sender.
  const notJunked = [f('Received', ' from x by mx'), f('X-Spam', ' Yes'), f('X-Spam-Score', ' -10 / 15'), f('From', ' a@b')];
  t.same(spamFieldsToRemove(notJunked), [1, 2]);
  // Above smtpd's Received field only smtpd and the filters before us in the chain write:
  // trusted, whatever they say; the sender's fields start at the Received field.
  t.same(spamFieldsToRemove([f('X-Spam', ' no'), f('Received', ' x'), f('X-Spam', ' no')]), [2]);
  t.same(spamFieldsToRemove([f('X-Spam-Flag', ' YES'), f('Received', ' x')]), []);
  // Filters before us prepend their fields above smtpd's mark (X-SenderScore, Authentication-Results).
  const chained = [f('X-SenderScore', ' 50'), f('Authentication-Results', ' mx; iprev=pass'), f('X-Spam', ' Yes'), f('Received', ' from x by mx'), f('X-Spam', ' Yes'), f('X-Spam-Status', ' No')];
  t.same(spamFieldsToRemove(chained), [4, 5], 'the mark below two chain fields is smtpd\'s; the copies below Received are the sender\'s');
  t.ok(smtpdJunked(chained), 'junked by smtpd');
  t.notOk(smtpdJunked([f('Received', ' x'), f('X-Spam', ' Yes')]), 'a sender\'s X-Spam: Yes is not smtpd\'s mark');
  // Without any Received field (not through smtpd): only a first "X-Spam: Yes" is trusted.
  t.same(spamFieldsToRemove([f('X-Spam', ' Yes'), f('X-Spam', ' Yes')]), [1]);
  t.same(spamFieldsToRemove([f('x-spam', ' Yes'), f('Subject', ' x')]), [0]);
  t.same(spamFieldsToRemove([f('Subject', ' X-Spam: Yes')]), []);
});

t.test('the same rule over raw header lines with continuations', async (t) => {
  const lines = [
    'X-Spam: Yes',
    'Received: from mail.example.net (mail.example.net [192.0.2.10])',
    '\tby mx.example.org (OpenSMTPD) with ESMTP id 1a2b3c4d',
    'X-Spam-Status: No, score=-99.0 required=6.0 tests=FORGED',
    '\tMORE_FORGED,EVEN_MORE',
    'Subject: hello',
    'X-Spam-Flag: NO',
  ];
  const r = stripSpamFieldLines(lines);
  t.same(r.kept, ['X-Spam: Yes', lines[1], lines[2], 'Subject: hello']);
  t.equal(r.removed, 2);
  t.equal(r.smtpdJunk, true);
  const r2 = stripSpamFieldLines(lines.slice(1));
  t.same(r2.kept, [lines[1], lines[2], 'Subject: hello']);
  t.equal(r2.smtpdJunk, false);
});
