import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  PatternFileError,
  classifyRdns,
  loadPatternFile,
  parsePatterns,
  splitRegisteredDomain,
} from '../lib/dynrdns.js';

const fixtures = fileURLToPath(new URL('./fixtures/hostnames/', import.meta.url));

function readTable(file: string): { name: string; ip: string; line: number }[] {
  const rows: { name: string; ip: string; line: number }[] = [];
  readFileSync(join(fixtures, file), 'utf8').split('\n').forEach((text, i) => {
    const line = text.trim();
    if (line === '' || line.startsWith('#')) return;
    const [name, ip, extra] = line.split(/\s+/);
    if (!name || !ip || extra !== undefined) throw new Error(`${file}:${i + 1}: expected "name ip"`);
    rows.push({ name, ip, line: i + 1 });
  });
  return rows;
}

t.test('fixture table: 0 false positives on static names, detection rate on dynamic ones', async (t) => {
  const dynamic = readTable('dynamic.txt');
  const statics = readTable('static.txt');
  t.ok(dynamic.length >= 150 && statics.length >= 150, `${dynamic.length} dynamic + ${statics.length} static names`);

  const falsePositives = statics
    .map((r) => ({ ...r, c: classifyRdns(r.name, r.ip) }))
    .filter((r) => r.c.dynamic);
  for (const fp of falsePositives) {
    t.comment(`FALSE POSITIVE static.txt:${fp.line} ${fp.name} ${fp.ip} ${fp.c.reasons.join(',')}`);
  }
  t.equal(falsePositives.length, 0, 'no static/mail name is called dynamic');

  const misses = dynamic.filter((r) => !classifyRdns(r.name, r.ip).dynamic);
  for (const m of misses) {
    const c = classifyRdns(m.name, m.ip);
    t.comment(`miss dynamic.txt:${m.line} ${m.name} ${m.ip}${c.excusedBy ? ` (excused by ${c.excusedBy})` : ''}`);
  }
  const rate = (dynamic.length - misses.length) / dynamic.length;
  t.comment(`detection: ${dynamic.length - misses.length}/${dynamic.length} = ${(rate * 100).toFixed(1)}%, ` +
    `false positives: ${falsePositives.length}/${statics.length}`);
  t.ok(rate >= 0.9, 'detection rate at least 90%');

  // Without the client IP only the words and IP-shaped runs are left; report, don't assert.
  const noIp = dynamic.filter((r) => classifyRdns(r.name).dynamic).length;
  const noIpFp = statics.filter((r) => classifyRdns(r.name).dynamic).length;
  t.comment(`without the client IP: ${noIp}/${dynamic.length} detected, ${noIpFp} false positives`);
  t.equal(noIpFp, 0, 'no false positives without the IP either');
});

t.test('registered domain split', async (t) => {
  t.same(splitRegisteredDomain('mail.dynatrace.com'), { host: ['mail'], domain: 'dynatrace.com' });
  t.same(splitRegisteredDomain('a.b.example.co.uk'), { host: ['a', 'b'], domain: 'example.co.uk' });
  t.same(splitRegisteredDomain('x.dsl.net.pl'), { host: ['x'], domain: 'dsl.net.pl' });
  t.same(splitRegisteredDomain('example.com'), { host: [], domain: 'example.com' });
  t.same(splitRegisteredDomain('co.uk'), { host: [], domain: 'co.uk' });
  t.same(splitRegisteredDomain('localhost'), { host: [], domain: 'localhost' });
});

t.test('only the host part counts', async (t) => {
  t.notOk(classifyRdns('mail.dynatrace.com', '52.5.12.34').dynamic);
  t.notOk(classifyRdns('mx.dyndns-mail.example').dynamic);
  t.notOk(classifyRdns('gw.dyn.com').dynamic, 'domain dyn.com, host gw');
  t.notOk(classifyRdns('dyn.com').dynamic, 'no host part at all');
  t.notOk(classifyRdns('edge.dsl.net.pl').dynamic, 'dsl.net.pl is the registered domain');
  t.ok(classifyRdns('x1.dsl.provider.pl').dynamic, 'under .pl, dsl is a host label');
});

t.test('words are whole tokens', async (t) => {
  t.notOk(classifyRdns('dynamo.example.com').dynamic, 'dynamo is not dyn');
  t.notOk(classifyRdns('poolside.example.com').dynamic);
  t.notOk(classifyRdns('clientportal.example.com').dynamic);
  t.same(classifyRdns('dyn-4.example.net'), { dynamic: true, reasons: ['word:dyn'] }, 'letters then digits split');
  t.same(classifyRdns('pppoe123.example.net').reasons, ['word:pppoe']);
  t.same(classifyRdns('athedsl-4711.home.otenet.gr').reasons, ['word:athedsl'], 'letters ending in dsl');
  t.notOk(classifyRdns('dslam-vendor.example.com').dynamic);
});

t.test('weak words need numbers', async (t) => {
  t.notOk(classifyRdns('host.example.com').dynamic);
  t.notOk(classifyRdns('node2.cluster.example.com').dynamic);
  t.ok(classifyRdns('host-10-20-30.example.net').dynamic, 'three numbers');
  t.same(classifyRdns('user123456.example.net').reasons, ['weak:user+numbers'], 'one long number');
  t.ok(classifyRdns('cm-12-34.example.net', '198.51.12.34').dynamic, 'two octets of the client IP');
  t.notOk(classifyRdns('cm-12-34.example.net', '198.51.100.7').dynamic, 'two unrelated numbers');
});

t.test('client IP embedded in the name', async (t) => {
  const ip = '192.168.1.2';
  const cases: [string, string][] = [
    ['x192.168.1.2.example.net', 'ip:in-order'],
    ['x-192-168-1-2.example.net', 'ip:in-order'],
    ['x192-168-001-002.example.net', 'ip:in-order'],
    ['x2.1.168.192.example.net', 'ip:reversed'],
    ['x2-1-168-192.example.net', 'ip:reversed'],
    ['x168-1-2.example.net', 'ip:three-octets'],
    ['x2.1-168.example.net', 'ip:three-octets'],
    ['abc192168001002.example.net', 'ip:digits'],
    ['abc19216812.example.net', 'ip:digits'],
    ['pc0a80102.example.net', 'ip:hex'],
    ['C0A80102.example.net', 'ip:hex'],
  ];
  for (const [name, reason] of cases) {
    const c = classifyRdns(name, ip);
    t.ok(c.dynamic && c.reasons.includes(reason), `${name} → ${reason} (${c.reasons.join(',')})`);
  }
  t.notOk(classifyRdns('m1-2.example.net', ip).dynamic, 'last two octets alone are not enough (m228-4.mailgun.net)');
  t.notOk(classifyRdns('a1234.example.net', '1.2.3.4').dynamic, 'short unpadded digit run is no match');
  t.ok(classifyRdns('x-192-168-1-2.example.net', '::ffff:192.168.1.2').dynamic, 'mapped IPv6 client');
  t.same(classifyRdns('srv-10-0-0-1.example.net').reasons, ['ip-shaped'], 'four octets without the client IP');
  t.notOk(classifyRdns('build-2024-01-15.example.net').dynamic, 'dates are not IP-shaped');
});

t.test('client IPv6 embedded in the name', async (t) => {
  const ip = '2001:db8:a0b:12f0::1';
  t.same(classifyRdns('p20010db80a0b12f00000000000000001.example.net', ip).reasons, ['ip6:hex']);
  t.same(classifyRdns('20010db80a0b12f0.ipv6.example.net', ip).reasons, ['ip6:prefix-hex']);
  t.same(classifyRdns('2001-db8-a0b-12f0-0-0-0-1.example.net', ip).reasons, ['ip6:groups']);
  t.same(classifyRdns('2001-0db8-0a0b-12f0.example.net', ip).reasons, ['ip6:groups'], 'zero-padded groups');
  t.notOk(classifyRdns('2001-db8-a0b-ffff.example.net', ip).dynamic);
});

t.test('excuses', async (t) => {
  t.same(classifyRdns('static-198-51-100-7.example.net', '198.51.100.7'),
    { dynamic: false, reasons: ['ip:in-order'], excusedBy: 'static' });
  t.equal(classifyRdns('mail-192-0-2-1.dsl.example.net', '192.0.2.1').excusedBy, 'mail');
  for (const w of ['smtp', 'mx', 'outbound', 'relay', 'mta', 'dedicated', 'business']) {
    t.notOk(classifyRdns(`${w}.pool-198-51-100-7.example.net`, '198.51.100.7').dynamic, w);
  }
  t.equal(classifyRdns('mail.example.com').excusedBy, undefined, 'no evidence, nothing to excuse');
  t.same(classifyRdns('mx-ll-180.183.12-34.dynamic.3bb.co.th', '180.183.12.34'),
    { dynamic: true, reasons: ['word:dynamic', 'ip:in-order'] }, 'a role word does not beat "dynamic"');
  t.ok(classifyRdns('smtp.dhcp-7.example.net').dynamic, 'nor "dhcp"');
  t.equal(classifyRdns('static.dynamic-10-1-2-3.example.net').excusedBy, 'static', 'static beats everything built in');
  t.notOk(classifyRdns('mailbox-1-2-3-4.example.net', '1.2.3.4').excusedBy, '"mailbox" is not "mail"');
});

t.test('not a name', async (t) => {
  for (const n of ['', '<unknown>', '[192.0.2.1]', '192.0.2.1', '2001:db8::1', '.']) {
    t.same(classifyRdns(n, '192.0.2.1'), { dynamic: false, reasons: [] }, JSON.stringify(n));
  }
  t.ok(classifyRdns('DHCP-1.Example.NET.').dynamic, 'case and trailing dot');
  t.notOk(classifyRdns('mail.example.com', 'garbage').dynamic, 'bad IP ignored');
});

t.test('pattern file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dynrdns-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'dyndns.txt');
  writeFileSync(file, '# smtpd-style rdns regexes\n\n.*\\.dyn\\..*\n  \\.home\\.example\\.net$  \n#x\n');
  const patterns = loadPatternFile(file);
  t.same(patterns.map((p) => [p.re.source, p.re.flags, p.line]), [['.*\\.dyn\\..*', 'i', 3], ['\\.home\\.example\\.net$', 'i', 4]]);
  t.same(classifyRdns('Box7.HOME.example.net', undefined, { patterns }),
    { dynamic: true, reasons: [`pattern:${file}:4`] }, 'whole lower-cased name, case-insensitive');
  t.ok(classifyRdns('mail.dyn.example.org', undefined, { patterns }).dynamic,
    'a user pattern wins over excuses and the host-part rule');
  t.notOk(classifyRdns('mail.example.org', undefined, { patterns }).dynamic);

  const err = t.throws(() => parsePatterns('ok\n\n(unclosed\n', 'dyn.conf')) as PatternFileError;
  t.type(err, PatternFileError);
  t.equal(err.line, 3);
  t.match(err.message, /^dyn\.conf:3: invalid regular expression "\(unclosed": /);
  t.throws(() => loadPatternFile(join(dir, 'missing.txt')), /missing\.txt: cannot read pattern file/);
});

t.test('pathological names stay fast (measured, not asserted)', async (t) => {
  const label = (s: string) => s.repeat(Math.ceil(63 / s.length)).slice(0, 63);
  const names = [
    `${label('a1-')}.${label('1-')}.${label('dsl')}.${label('9')}.example.com`,
    `${'1-'.repeat(125)}x.example.com`,
    `${'a'.repeat(250)}.com`,
    `${'0'.repeat(250)}.com`,
    `${'c0a8'.repeat(62)}.com`,
    `${'-.'.repeat(125)}example.com`,
  ];
  for (const name of names) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < 1000; i++) classifyRdns(name, '192.168.1.2');
    const us = Number(process.hrtime.bigint() - start) / 1e3 / 1000;
    t.comment(`${name.length} chars (${name.slice(0, 12)}…): ${us.toFixed(1)} µs per classification`);
  }
  t.pass('finished');
});
