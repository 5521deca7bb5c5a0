// Messages built to make the spam engine's text scans slow (1 MB each: the filter's default
// scan limit). Each scan must be linear in the input: a quadratic one holds the filter's only
// thread for minutes (an 80 KB "helo=helo=…" Received field took 1.7 s, a 250 KB From field a
// minute, 250 KB of "<a " 27 s before they were rewritten; at 1 MB each takes 8 to 30
// minutes). Not a speed test: each message is scanned in about 0.3 s. A quadratic scan blocks
// this process, so no timer inside it can fire: it shows as the file running past tap's
// per-file timeout (package.json, 600 s), which the tap runner enforces from outside (checked
// against the old code: killed while still in its first such message).
import t from 'tap';
import { prepare } from '../lib/spam/score.js';

const N = 1024 * 1024;
const hdr = 'From: a@example.com\nTo: b@example.org\nDate: Sun, 1 Sep 2002 10:00:00 +0000\nSubject: x\n';
const html = (body: string) => `${hdr}MIME-Version: 1.0\nContent-Type: text/html; charset=us-ascii\n\n${body}\n`;
const rep = (s: string, n = N) => s.repeat(Math.ceil(n / s.length));

const cases: Record<string, string> = {
  'Received with helo=helo=…': `Received: from x (helo=${rep('helo=')})\n${hdr}\nx\n`,
  'Received fields by the thousand': rep('Received: from x (helo=yahoo.com) by y with SMTP id 1\n') + hdr + '\nx\n',
  'From without @': `From: ${rep('a1')}\nTo: b@example.org\n\nx\n`,
  'From display name of addresses': `From: "${rep('a@b ')}" <x@example.com>\nTo: b@example.org\n\nx\n`,
  'From of many <': `From: ${rep('<a ')}\nTo: b@example.org\n\nx\n`,
  'Reply-To of @s': `Reply-To: ${rep('a@')}\n${hdr}\nx\n`,
  'Message-ID of <a@': `Message-ID: ${rep('<a@')}\n${hdr}\nx\n`,
  'To of many addresses': `From: a@example.com\nTo: ${rep('a@b.c, ')}\nSubject: x\n\nx\n`,
  'Subject of words': `From: a@example.com\nSubject: ${rep('urgent ')}!\n\nx\n`,
  'Subject of encoded-word starts': `From: a@example.com\nSubject: ${rep('=?')}\n\nx\n`,
  'X-Mailer of builds': `X-Mailer: Microsoft Outlook ${rep('Build 1.')}\n${hdr}\nx\n`,
  'Date of digits': `Date: Mon, ${rep('1 ')}\nFrom: a@example.com\n\nx\n`,
  'one long field name': `X-${rep('a')}: v\n${hdr}\nx\n`,
  'parameters by the thousand': `From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; ${rep('a=b; ')}boundary=q\n\n--q\n\nx\n--q--\n`,
  'MIME parts by the thousand': `From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=q\n\n${rep('--q\nContent-Type: text/plain\n\nx\n')}--q--\n`,
  'base64 garbage': `From: a@example.com\nContent-Transfer-Encoding: base64\n\n${rep('!@#$')}\n`,
  'quoted-printable of =': `From: a@example.com\nContent-Transfer-Encoding: quoted-printable\n\n${rep('=')}\n`,
  'a link of /a=a': `${hdr}\nhttp://a${rep('/a=a')}\n`,
  'links by the thousand': `${hdr}\n${rep('http://a/a=a/b=b@c ')}\n`,
  'letters without end': `${hdr}\n${rep('a')}1\n`,
  '8-bit bytes without end': `${hdr}\n${rep('\xe9')}\n`,
  'reply reply …': `${hdr}\n${rep('reply ')}\n`,
  'a dollar and digits': `${hdr}\n$${rep('1,')}\n`,
  'in compliance with …': `${hdr}\n${rep('in compliance with ')}\n`,
  'blank lines, then a salutation': `${hdr}\n${rep('\n')}dear friend\n`,
  'shouted lines': `${hdr}\n${rep('ABCDEFGHIJKLMNOPQRSTUVWXYZ '.repeat(40) + '\n')}`,
  'hash-buster lines': `${hdr}\n${rep('a1b2c3d4e5\n')}`,
  'HTML: <a without >': html(rep('<a ')),
  'HTML: <a " without >': html('<a "' + rep('<a ')),
  'HTML: <script without >': html(rep('<script ')),
  'HTML: <! without >': html(rep('<!')),
  'HTML: <!-- without -->': html(rep('<!--')),
  'HTML: <title> by the thousand': html(rep('<title>')),
  'HTML: attributes by the thousand': html('<a ' + rep('href=x ') + '>'),
  'HTML: a long style': html(`<p style="${rep('color:white;')}">x</p>`),
  'HTML: entity starts': html(rep('&&#')),
};

for (const [name, message] of Object.entries(cases)) {
  t.test(name, async (t) => {
    const p = prepare(Buffer.from(message, 'latin1'), undefined);
    t.ok(Array.isArray(p.hits) && Array.isArray(p.tokens), 'scanned');
  });
}
