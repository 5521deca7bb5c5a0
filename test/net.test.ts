import t from 'tap';
import {
  AddressListError,
  CidrSet,
  LOOPBACK,
  canonicalIp,
  isLoopback,
  parseAddressList,
  parseCidr,
  parseIp,
  parseSmtpdAddress,
  reverseName,
  reversedOctets,
} from '../lib/net.js';

t.test('parseSmtpdAddress: link-connect forms', async (t) => {
  t.same(parseSmtpdAddress('192.0.2.10:51234'), { family: 4, ip: '192.0.2.10', port: 51234 });
  t.same(parseSmtpdAddress('[2001:db8::10]:25'), { family: 6, ip: '2001:db8::10', port: 25 });
  t.same(parseSmtpdAddress('[::1]:51358'), { family: 6, ip: '::1', port: 51358 });
  t.same(parseSmtpdAddress('[fe80::1%em0]:25'), { family: 6, ip: 'fe80::1', port: 25, zone: 'em0' });
  t.same(parseSmtpdAddress('unix:/var/run/smtpd.sock'), { family: 'unix', path: '/var/run/smtpd.sock' });
  t.same(parseSmtpdAddress('[::ffff:192.0.2.7]:25'), { family: 4, ip: '192.0.2.7', port: 25 });
  t.same(parseSmtpdAddress('[2001:DB8:0:0:0:0:0:1]:587'), { family: 6, ip: '2001:db8::1', port: 587 });
});

t.test('parseSmtpdAddress: connect request forms', async (t) => {
  t.same(parseSmtpdAddress('192.0.2.10'), { family: 4, ip: '192.0.2.10' });
  t.same(parseSmtpdAddress('[2001:db8::10]'), { family: 6, ip: '2001:db8::10' });
  t.same(parseSmtpdAddress('local'), { family: 'unix' });
  t.same(parseSmtpdAddress('2001:db8::10'), { family: 6, ip: '2001:db8::10' }, 'bare IPv6 tolerated');
  t.same(parseSmtpdAddress('::ffff:198.51.100.1'), { family: 4, ip: '198.51.100.1' });
});

t.test('parseSmtpdAddress: rejects garbage without throwing', async (t) => {
  for (const bad of ['', 'x', '1.2.3', '1.2.3.4:', '1.2.3.4:99999', '1.2.3.4:2a', '[1.2.3.4]:25',
    '[2001:db8::1', '[2001:db8::1]25', '[2001:db8::1]:', '01.2.3.4:25', '<unknown>', '[zz::1]:25']) {
    t.equal(parseSmtpdAddress(bad), null, JSON.stringify(bad));
  }
});

t.test('canonical forms', async (t) => {
  t.equal(canonicalIp('192.0.2.1'), '192.0.2.1');
  t.equal(canonicalIp('2001:0DB8:0000:0000:0001:0000:0000:0001'), '2001:db8::1:0:0:1', 'first longest run');
  t.equal(canonicalIp('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1', 'single zero group not compressed');
  t.equal(canonicalIp('::'), '::');
  t.equal(canonicalIp('::1'), '::1');
  t.equal(canonicalIp('1::'), '1::');
  t.equal(canonicalIp('::ffff:c000:0201'), '192.0.2.1', 'hex-form mapped address');
  t.equal(canonicalIp('::ffff:192.0.2.1'), '192.0.2.1');
  t.equal(canonicalIp('64:ff9b::192.0.2.1'), '64:ff9b::c000:201', 'NAT64 is not unwrapped');
  t.equal(canonicalIp('fe80::1%eth0'), 'fe80::1');
  t.equal(canonicalIp('1.2.3.04'), null);
  t.equal(canonicalIp('example.org'), null);
  t.same(Array.from(parseIp('2001:db8::ff00:42:8329')!.bytes),
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29]);
});

t.test('reverse names', async (t) => {
  t.equal(reverseName('192.0.2.5'), '5.2.0.192.in-addr.arpa');
  t.equal(reversedOctets('192.0.2.5'), '5.2.0.192');
  t.equal(reverseName('::ffff:192.0.2.5'), '5.2.0.192.in-addr.arpa');
  // RFC 3596 §2.5 example shape: 32 nibbles, least significant first.
  t.equal(reverseName('2001:db8::567:89ab'),
    'b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
  t.equal(reversedOctets('2001:db8::1').split('.').length, 32);
  t.throws(() => reverseName('nope'), /not an IP address/);
});

t.test('loopback', async (t) => {
  t.ok(isLoopback('127.0.0.1'));
  t.ok(isLoopback('127.255.1.2'));
  t.ok(isLoopback('::1'));
  t.ok(isLoopback('::ffff:127.0.0.1'));
  t.notOk(isLoopback('128.0.0.1'));
  t.notOk(isLoopback('::2'));
  t.notOk(isLoopback('junk'));
  t.ok(LOOPBACK.has('127.0.0.53'));
  t.ok(LOOPBACK.has('::1'));
  t.notOk(LOOPBACK.has('192.0.2.1'));
});

t.test('parseCidr', async (t) => {
  t.same(parseCidr('10.0.0.0/8'), { family: 4, prefix: 8, network: 0x0a000000n });
  t.same(parseCidr('192.0.2.77/24'), { family: 4, prefix: 24, network: 0xc0000200n }, 'host bits masked');
  t.same(parseCidr('192.0.2.1'), { family: 4, prefix: 32, network: 0xc0000201n });
  t.same(parseCidr('::ffff:10.0.0.0/104'), { family: 4, prefix: 8, network: 0x0a000000n });
  t.equal(parseCidr('2001:db8::/32')!.prefix, 32);
  t.equal(parseCidr('0.0.0.0/0')!.prefix, 0);
  for (const bad of ['10.0.0.0/33', '2001:db8::/129', '10.0.0.0/', '10.0.0.0/8/8', '10/8', 'fe80::1%em0/64', '::ffff:1.2.3.4/64', '1.2.3.4/-1', '1.2.3.4/ 8']) {
    t.equal(parseCidr(bad), null, bad);
  }
});

t.test('CidrSet', async (t) => {
  const set = new CidrSet(['10.0.0.0/8', '192.0.2.0/24', '198.51.100.7', '2001:db8::/32', '::1']);
  t.equal(set.size, 5);
  t.ok(set.has('10.1.2.3'));
  t.ok(set.has('192.0.2.255'));
  t.notOk(set.has('192.0.3.0'));
  t.ok(set.has('198.51.100.7'));
  t.notOk(set.has('198.51.100.8'));
  t.ok(set.has('2001:db8:ffff::1'));
  t.ok(set.has('[2001:db8::1]'.slice(1, -1)));
  t.notOk(set.has('2001:db9::1'));
  t.ok(set.has('::1'));
  t.ok(set.has('::ffff:10.9.9.9'), 'mapped address matches the IPv4 network');
  t.ok(set.has('fe80::1%em0') === false);
  t.notOk(set.has('not-an-ip'));
  t.notOk(new CidrSet().has('10.0.0.1'));
  t.ok(new CidrSet(['0.0.0.0/0']).has('203.0.113.9'));
  t.notOk(new CidrSet(['0.0.0.0/0']).has('2001:db8::1'), 'families are separate');
  set.add('10.0.0.0/8');
  t.equal(set.size, 5, 'duplicates counted once');
  t.throws(() => set.add('10.0.0.0/99'), /not an IP address or CIDR network/);
});

t.test('parseAddressList', async (t) => {
  const text = [
    '# trusted relays',
    '',
    '192.0.2.0/24      # backup MX',
    '  198.51.100.25',
    '2001:db8:1::/48',
    '\t# indented comment',
    '203.0.113.5\r',
  ].join('\n');
  const set = parseAddressList(text, '/etc/mail/allow.txt');
  t.equal(set.size, 4);
  t.ok(set.has('192.0.2.9'));
  t.ok(set.has('198.51.100.25'));
  t.ok(set.has('2001:db8:1:2::3'));
  t.ok(set.has('203.0.113.5'), 'CRLF file tolerated');
  t.equal(parseAddressList('', 'empty').size, 0);

  const err = t.throws(() => parseAddressList('10.0.0.0/8\n\nmail.example.org\n', '/etc/mail/allow.txt')) as AddressListError;
  t.type(err, AddressListError);
  t.equal(err.line, 3);
  t.match(err.message, /^\/etc\/mail\/allow\.txt:3: not an IP address or CIDR network: "mail\.example\.org"$/);
  t.throws(() => parseAddressList('1.2.3.4/40', 'f'), /^f:1: /);
});

t.test('CidrSet.has is fast with many entries', async (t) => {
  const set = new CidrSet();
  for (let i = 0; i < 50000; i++) set.add(`10.${(i >> 8) & 255}.${i & 255}.0/24`);
  const start = process.hrtime.bigint();
  let hits = 0;
  for (let i = 0; i < 100000; i++) if (set.has(`10.${(i >> 8) & 255}.${i & 255}.1`)) hits++;
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  // i < 65536 hits while i < 50000; above that the third octet wraps to i − 65536 (all < 50000).
  t.equal(hits, 50000 + (100000 - 65536));
  t.comment(`100k lookups in a 50k-entry set: ${ms.toFixed(1)} ms`);
});
