import { createHash } from 'node:crypto';
import t from 'tap';
import {
  BodyHash,
  formatCanonicalization,
  parseCanonicalization,
  relaxedBodyLine,
  relaxedHeader,
  simpleHeader,
} from '../lib/dkim/canon.js';

const sha = (s: string): string => createHash('sha256').update(s, 'latin1').digest('base64');

function bodyHash(alg: 'simple' | 'relaxed', lines: string[]): string {
  const b = new BodyHash(alg);
  for (const l of lines) b.line(l);
  return b.digest();
}

t.test('parseCanonicalization: -c forms', async (t) => {
  t.same(parseCanonicalization('simple'), { header: 'simple', body: 'simple' });
  t.same(parseCanonicalization('relaxed'), { header: 'relaxed', body: 'simple' }, 'header part alone: body simple');
  t.same(parseCanonicalization('relaxed/relaxed'), { header: 'relaxed', body: 'relaxed' });
  t.same(parseCanonicalization('simple/relaxed'), { header: 'simple', body: 'relaxed' });
  t.same(parseCanonicalization('relaxed/simple'), { header: 'relaxed', body: 'simple' });
  for (const bad of ['', 'Simple', 'relaxed/', 'relaxed/x', 'simple/simple/simple', 'nowsp', ' simple']) {
    t.throws(() => parseCanonicalization(bad), /Invalid canonicalization/, JSON.stringify(bad));
  }
  t.equal(formatCanonicalization(parseCanonicalization('relaxed')), 'relaxed/simple');
});

t.test('RFC 6376 §3.4.5 example', async (t) => {
  // A: X <SP>
  // B <SP>: <SP> Y <HTAB><CRLF>
  //                 <HTAB> Z <SP><SP><CRLF>
  const a = ['A: X '];
  const b = ['B : Y\t', '\tZ  '];
  t.equal(relaxedHeader(a), 'a:X');
  t.equal(relaxedHeader(b), 'b:Y Z');
  t.equal(simpleHeader(a), 'A: X ');
  t.equal(simpleHeader(b), 'B : Y\t\r\n\tZ  ');
  const body = [' C ', 'D \t E', '', ''];
  t.equal(bodyHash('relaxed', body), sha(' C\r\nD E\r\n'));
  t.equal(bodyHash('simple', body), sha(' C \r\nD \t E\r\n'));
});

t.test('relaxedHeader details', async (t) => {
  t.equal(relaxedHeader(['Subject:']), 'subject:');
  t.equal(relaxedHeader(['Subject:   ', '\t\t']), 'subject:');
  t.equal(relaxedHeader(['Subject:', '  foo', ' bar ']), 'subject:foo bar');
  t.equal(relaxedHeader(['SUBJECT\t : \tA  b\t c ']), 'subject:A b c');
  t.equal(relaxedHeader(['X-Caf\xe9:  \xe9t\xe9 ']), 'x-caf\xe9:\xe9t\xe9', 'only ASCII is lower-cased');
  t.equal(relaxedHeader(['Subject: a\rb']), 'subject:a\rb', 'a bare CR is not WSP (RFC 6376; the C filter differs)');
  t.equal(relaxedHeader(['To: a:b:c']), 'to:a:b:c');
});

t.test('relaxedBodyLine', async (t) => {
  t.equal(relaxedBodyLine('plain'), 'plain');
  t.equal(relaxedBodyLine('a  b\t\tc \t '), 'a b c');
  t.equal(relaxedBodyLine(' \t '), '');
  t.equal(relaxedBodyLine('\tlead'), ' lead');
  t.equal(relaxedBodyLine('mid\rCR '), 'mid\rCR', 'CR is kept');
});

t.test('BodyHash: empty bodies and trailing empty lines', async (t) => {
  const crlf = sha('\r\n');
  const empty = sha('');
  t.equal(bodyHash('simple', []), crlf, 'simple: no body is one CRLF');
  t.equal(bodyHash('simple', ['', '', '']), crlf, 'simple: only empty lines');
  t.equal(bodyHash('relaxed', []), empty, 'relaxed: no body is empty');
  t.equal(bodyHash('relaxed', ['', ' ', '\t ']), empty, 'relaxed: only blank lines');
  t.equal(bodyHash('simple', [' ']), sha(' \r\n'), 'simple: a blank line is not empty');
  t.equal(bodyHash('simple', ['a', '', 'b', '', '']), sha('a\r\n\r\nb\r\n'));
  t.equal(bodyHash('relaxed', ['a', ' ', 'b', ' ', '\t']), sha('a\r\n\r\nb\r\n'));
  t.equal(bodyHash('simple', ['.', '..x']), sha('.\r\n..x\r\n'), 'lines are hashed un-stuffed as given');
});

t.test('BodyHash: 8-bit bytes and large lines across the buffer', async (t) => {
  t.equal(bodyHash('simple', ['caf\xe9 \xff']), createHash('sha256').update(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xff, 13, 10])).digest('base64'));
  const big = 'x'.repeat(100000);
  const lines = ['a'.repeat(65530), big, 'b', '', 'c'.repeat(65536)];
  t.equal(bodyHash('simple', lines), sha(`${lines[0]}\r\n${big}\r\nb\r\n\r\n${lines[4]}\r\n`));
  const b = new BodyHash('simple');
  for (const l of lines) b.line(l);
  t.equal(b.length, 65532 + 100002 + 3 + 2 + 65538);
});

t.test('BodyHash: many lines equal one big hash', async (t) => {
  const lines: string[] = [];
  let s = '';
  for (let i = 0; i < 20000; i++) {
    const l = `line ${i} ${'y'.repeat(i % 97)}`;
    lines.push(l);
    s += `${l}\r\n`;
  }
  t.equal(bodyHash('simple', lines), sha(s));
});
