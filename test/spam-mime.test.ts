// MIME parsing, charsets (incl. 8-bit legacy charsets), encoded words, HTML to text.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeHeader, decodeQP, parseMessage, parseParams, headerFields } from '../lib/spam/mime.js';
import { decodeBytes } from '../lib/spam/charset.js';
import { htmlToText } from '../lib/spam/html.js';
import { analyze } from '../lib/spam/analyze.js';

const fx = (n: string) => fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/spam', n));

t.test('header block: folding, mbox From line, CRLF', async (t) => {
  const m = parseMessage(Buffer.from('From a@b  Mon Jan  6 10:00:00 2003\r\nSubject: one\r\n two\r\nX-A: 1\r\n\r\nbody\r\n'));
  t.ok(m.mboxFrom);
  t.same(m.headers.map((h) => [h.lname, h.raw]), [['subject', 'one two'], ['x-a', '1']]);
  t.equal(m.leaves[0]!.text, 'body\r\n');
  // No empty line between header and body.
  const n = parseMessage('Subject: x\nthis is body text\n');
  t.equal(n.headers.length, 1);
  t.ok(n.anomalies.has('no-header-end'));
  t.match(n.leaves[0]!.text, /this is body text/);
  t.same(headerFields('From x\nA: 1\n\nB: 2\n').map((h) => h.name), ['A']);
});

t.test('RFC 2047 encoded words', async (t) => {
  t.equal(decodeHeader('=?UTF-8?B?Q2Fmw6k=?='), 'Café');
  t.equal(decodeHeader('=?iso-8859-1?Q?caf=E9_cr=E8me?='), 'café crème');
  // Whitespace between adjacent encoded words disappears (RFC 2047 §6.2), not between text.
  t.equal(decodeHeader('=?utf-8?Q?a?= =?utf-8?Q?b?= c =?utf-8?Q?d?='), 'ab c d');
  t.equal(decodeHeader('=?koi8-r?B?' + Buffer.from([0xf0, 0xd2, 0xc9, 0xd7, 0xc5, 0xd4]).toString('base64') + '?='), 'Привет');
  t.equal(decodeHeader('=?big5?Q?=A7=DA?='), '我');
  // Language suffix (RFC 2231 §5) and an unknown charset do not throw.
  t.equal(decodeHeader('=?us-ascii*en?Q?hello?='), 'hello');
  const an = new Set<never>();
  t.type(decodeHeader('=?x-nonsense?Q?abc?=', an as never), 'string');
  // Raw 8-bit header bytes: UTF-8 if valid, else windows-1252.
  t.equal(decodeHeader(Buffer.from('été', 'utf8').toString('latin1')), 'été');
  t.equal(decodeHeader('\xe9t\xe9'), 'été');
});

t.test('parameters (RFC 2045, RFC 2231)', async (t) => {
  const p = parseParams('text/plain; charset="ISO-8859-1"; format=flowed');
  t.equal(p.value, 'text/plain');
  t.same(p.params, { charset: 'ISO-8859-1', format: 'flowed' });
  const q = parseParams("attachment; filename*0*=utf-8''caf%C3%A9; filename*1=.txt");
  t.equal(q.params['filename'], 'café.txt');
  t.equal(parseParams('multipart/mixed; boundary="a;b"').params['boundary'], 'a;b');
});

t.test('quoted-printable and charsets', async (t) => {
  const r = decodeQP('caf=E9 =\r\ncr=E8me=\nx');
  t.equal(r.bytes.toString('latin1'), 'café crèmex');
  t.notOk(r.longLine);
  t.ok(decodeQP('x'.repeat(100)).longLine);
  t.equal(decodeBytes(Buffer.from([0xe9]), 'iso-8859-1').text, 'é');
  t.equal(decodeBytes(Buffer.from([0xc1, 0xc2]), 'koi8-r').text, 'аб');
  t.equal(decodeBytes(Buffer.from([0x82, 0xa0]), 'shift_jis').text, 'あ');
  t.equal(decodeBytes(Buffer.from([0xc4, 0xe3]), 'gb2312').text, '你');
  t.equal(decodeBytes(Buffer.from([0xb0, 0xa1]), 'ks_c_5601-1987').text, '가');
  // Lies and omissions.
  t.same(decodeBytes(Buffer.from('é', 'utf8'), undefined), { text: 'é', used: 'utf-8', oddity: 'undeclared-8bit' });
  t.same(decodeBytes(Buffer.from([0x93, 0x94]), 'us-ascii'), { text: '“”', used: 'windows-1252', oddity: 'ascii-8bit' });
  t.same(decodeBytes(Buffer.from([0xe9]), 'utf-8'), { text: 'é', used: 'windows-1252', oddity: 'invalid-utf8' });
  t.equal(decodeBytes(Buffer.from([0xe9]), 'x-bogus').oddity, 'unknown-charset');
  t.equal(decodeBytes(Buffer.from('+AGEAYgBj-'), 'utf-7').text.length > 0, true);
});

t.test('KOI8-R 8-bit body, encoded subject, CRLF, mbox line', async (t) => {
  const a = analyze(fx('koi8r.eml'));
  t.ok(a.msg.mboxFrom);
  t.equal(a.subject, 'Привет мир');
  t.match(a.from, /^Иван <ivan@example.ru>$/);
  t.match(a.body, /Дешёвые часы для вас/);
  t.equal(a.texts[0]!.charset, 'koi8-r');
  t.equal(a.msg.anomalies.size, 0);
});

t.test('multipart/alternative with undeclared latin-1 and QP HTML', async (t) => {
  const a = analyze(fx('latin1-alt.eml'));
  t.equal(a.msg.root.type, 'multipart/alternative');
  t.equal(a.texts.length, 2);
  t.match(a.texts[0]!.text, /Café crème et croissants à volonté/);
  t.ok(a.msg.anomalies.has('undeclared-8bit'));
  t.ok(a.msg.anomalies.has('raw-8bit-header'));
  t.equal(a.subject, 'Menu du jour été');
  // HTML rendered: entities decoded, inline tags join words.
  t.match(a.texts[1]!.text, /Café crème & croissants/);
  t.same(a.urls.map((u) => [u.host, u.source, u.text]), [['www.example.com', 'a', 'menu']]);
  t.notMatch(a.body, /preamble|epilogue/);
});

t.test('CJK charsets, base64 body, RFC 2231 attachment name', async (t) => {
  const a = analyze(fx('cjk.eml'));
  t.equal(a.subject, '我贏錢了 café');
  t.match(a.body, /免费发票 优惠/);
  t.same(a.attachments.map((x) => x.filename), ['請求書.exe']);
});

t.test('windows-1252 declared us-ascii', async (t) => {
  const a = analyze(fx('ascii-8bit.eml'));
  t.match(a.body, /He said “only €20” today/);
  t.ok(a.msg.anomalies.has('ascii-8bit'));
});

t.test('broken MIME is tolerated and reported', async (t) => {
  const noBoundary = analyze('Content-Type: multipart/mixed\n\nhello world\n');
  t.ok(noBoundary.msg.anomalies.has('missing-boundary'));
  t.match(noBoundary.body, /hello world/);
  const unclosed = analyze('Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nhi there\n');
  t.ok(unclosed.msg.anomalies.has('unclosed-multipart'));
  t.match(unclosed.body, /hi there/);
  // A nested boundary that shares our prefix is not ours.
  const nested = analyze(
    'Content-Type: multipart/mixed; boundary="----=_P"\n\n------=_P\nContent-Type: multipart/alternative; boundary="----=_P_001"\n\n------=_P_001\nContent-Type: text/plain\n\ninner\n------=_P_001--\n------=_P--\n',
  );
  t.equal(nested.texts.length, 1);
  t.equal(nested.texts[0]!.text, 'inner');
  // Deep nesting stops at the limit without blowing the stack.
  let deep = '';
  for (let i = 0; i < 40; i++) deep += `Content-Type: multipart/mixed; boundary=b${i}\n\n--b${i}\n`;
  const d = analyze(deep + 'Content-Type: text/plain\n\nbottom\n');
  t.ok(d.msg.anomalies.has('too-deep'));
  // Attached message (message/rfc822) is parsed, base64-encoded or not.
  const inner = 'Subject: inner\nContent-Type: text/plain\n\ninner words\n';
  const att = analyze(`Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n${Buffer.from(inner).toString('base64')}\n--z--\n`);
  t.match(att.body, /inner words/);
});

t.test('HTML to text and features', async (t) => {
  const h = htmlToText(
    '<html><head><style>p{color:red}</style><script>var x="hidden"</script></head><body bgcolor="#ffffff">' +
      '<p>Vi<!-- x -->agra &amp; more&nbsp;now &#8364;5 &#x41;</p><div style="display:none">secret words</div>' +
      '<font color="#FFFFFF">white text here</font><font size="7">BIG</font>' +
      '<a href="http://1.2.3.4/x">http://www.bank.example/login</a><img src="http://img.example/a.gif" width=1 height=1></body></html>',
  );
  t.match(h.text, /Viagra & more now €5 A/);
  t.notMatch(h.text, /secret|white text|var x|color:red/);
  t.match(h.hidden, /secret words/);
  t.match(h.hidden, /white text here/);
  t.equal(h.commentSplit, 1);
  t.equal(h.hugeFont, 1);
  t.equal(h.images, 1);
  t.same(h.links.map((l) => l.href), ['http://1.2.3.4/x', 'http://img.example/a.gif']);
  t.equal(h.links[0]!.text, 'http://www.bank.example/login');
});
