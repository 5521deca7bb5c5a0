// filter-dkimsign's startup, through the executable: flags as the C filter takes them (getopt
// forms), the errors that end it (one line on stderr, exit 1; usage errors exit 2), the key
// permission warning, the key table's syntax, and -checkDns against a dns2 zone server.

import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { publicKeyRecord, splitTxt } from '../lib/dkim/record.js';
import { DKIM_FIXTURE, KEY, OURS, privateKeys } from './fixtures/dkimsign/common.js';
import { startZoneServer, type ZoneServer } from './lib/dns-zone-server.js';
import { txt, zone } from './lib/zone.js';

const KEYFILE = privateKeys();
const RSA = KEYFILE['rsa-sha256'];
const ED = KEYFILE['ed25519-sha256'];
const dir = mkdtempSync(join(tmpdir(), 'dkimsign-flags-'));
const file = (name: string, text: string, mode = 0o600): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
};

interface Run {
  code: number | null;
  stderr: string;
  stdout: string;
}

/** Starts the filter, does smtpd 6.8's handshake, closes stdin; resolves at exit. */
function start(args: string[], timeoutMs = 20_000): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(OURS[0]!, [...OURS.slice(1), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('latin1');
      if (stdout.includes('register|ready\n')) p.stdin.end();
    });
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    p.stdin.on('error', () => {});
    p.stdin.write('config|smtpd-version|6.8.0p2\nconfig|smtp-session-timeout|300\nconfig|subsystem|smtp-in\nconfig|admd|mx.test\nconfig|ready\n');
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout });
    });
  });
}

const base = ['-d', 'hz.test', '-s', 'sel', '-k', RSA];

t.test('the C filter\'s flags and getopt forms start it', async (t) => {
  for (const args of [
    base,
    [...base, '-a', 'rsa-sha256', '-c', 'relaxed', '-h', 'from:to', '-t', '-x', '3600', '-z'],
    ['-dhz.test', '-dother.example', '-ssel', `-k${RSA}`, '-crelaxed/relaxed', '-tzz', '-x60'],
    ['-d', 'hz.test', '-s', 'ed', '-k', ED, '-a', 'ed25519-sha256'],
    [...base, '-zzz'], // the C filter takes more z as -zz
  ]) {
    const r = await start(args);
    t.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    t.match(r.stdout, /register\|filter\|smtp-in\|data-line\n/, 'registers data-line');
    t.match(r.stdout, /register\|filter\|smtp-in\|commit\n/, 'and commit (the 421 policy)');
    t.notMatch(r.stdout, /register\|report\|smtp-in\|link-auth/, 'no link-auth without -authOnly');
  }
});

t.test('startup errors: one line, exit 1', async (t) => {
  const cases: [string[], RegExp][] = [
    [['-d', 'hz.test', '-s', 'sel', '-k', join(dir, 'missing.key')], /can't read key .*missing\.key: ENOENT/],
    [[...base, '-a', 'ed25519-sha256'], /key .* is rsa but -a says ed25519-sha256/],
    [['-d', 'hz.test', '-s', 'sel', '-k', ED], /key .* is ed25519 but -a says rsa-sha256/],
    [[...base, '-a', 'rsa-sha1'], /invalid algorithm: rsa-sha1/],
    [[...base, '-c', 'foo'], /Invalid canonicalization: foo/],
    [[...base, '-c', 'relaxed/'], /Invalid canonicalization/],
    [[...base, '-h', 'to:subject'], /From header must be included/],
    [[...base, '-h', 'from::to'], /header can't be empty/],
    [[...base, '-x', '0'], /Expire offset is too small/],
    [[...base, '-x', 'abc'], /Expire offset is invalid/],
    [[...base, '-x', '9223372036854775808'], /Expire offset is too large/],
    [['-d', 'hz.test', '-s', 'x'.repeat(64), '-k', RSA], /longer than 63 bytes/],
    [['-d', `${'a.'.repeat(120)}test`, '-s', 'sel', '-k', RSA], /longer than 253 bytes/],
    [['-d', 'hz;test', '-s', 'sel', '-k', RSA], /bad domain/],
    [['-d', 'hz.test', '-s', 'sel', '-k', file('notakey', 'hello\n')], /is not a PEM private key/],
    [['-d', 'hz.test', '-s', 'sel', '-k', file('enc.pem', KEY['rsa-sha256'].export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }).toString())], /is encrypted \(a passphrase is not supported\)/],
    [['-D', join(dir, 'nodomains')], /can't read domain file/],
    [['-K', join(dir, 'nokeytable')], /can't read key table/],
    [['-K', file('kt1', 'hz.test sel\n')], /kt1:1: expected "domain selector keyfile", got 2 fields/],
    [['-K', file('kt2', '# nothing\n\n')], /no key in the key table/],
    [['-K', file('kt3', `hz.test sel ${RSA}\nHZ.test sel ${RSA}\n`)], /kt3:2: sel\._domainkey\.hz\.test is listed twice/],
    [['-K', file('kt4', `hz.test sel ${RSA}\nhz.test ed missing.key\n`)], /kt4:2: can't read key .*missing\.key/],
    [['-K', file('kt5', `hz.test sel ${RSA}\nhz.test ed ${ED}\n`), '-a', 'rsa-sha256'], /kt5:2: key .* is ed25519 but -a says rsa-sha256/],
  ];
  for (const [args, want] of cases) {
    const r = await start(args);
    t.equal(r.code, 1, `${args.join(' ').slice(0, 80)}: exit 1`);
    t.match(r.stderr, want, `${args.join(' ').slice(0, 80)}: ${r.stderr.trim()}`);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.equal(r.stdout, '', 'nothing on stdout');
  }
});

t.test('usage errors: exit 2', async (t) => {
  for (const [args, want] of [
    [[], /-d domain \(or -D file\), -k keyfile and -s selector are required, or -K keytable/],
    [['-d', 'hz.test', '-k', RSA], /required/],
    [['-K', file('kt6', `hz.test sel ${RSA}\n`), '-d', 'hz.test'], /-K replaces -d/],
    [[...base, '-Q'], /flag provided but not defined: -Q/],
    [[...base, '-onError', 'maybe'], /tempfail or pass/],
    [[...base, '-checkDns', 'yes'], /warn or strict/],
    [[...base, 'extra'], /unexpected argument: extra/],
  ] as [string[], RegExp][]) {
    const r = await start(args);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, want, r.stderr.split('\n')[0]!);
  }
});

t.test('a key readable by others: a warning, and it runs', async (t) => {
  const open = join(dir, 'open.key');
  copyFileSync(DKIM_FIXTURE('rsa2048.key'), open);
  chmodSync(open, 0o644);
  let r = await start(['-d', 'hz.test', '-s', 'sel', '-k', open]);
  t.equal(r.code, 0);
  t.match(r.stderr, /"level":"warn".*readable by everyone: chmod 600 it/);
  chmodSync(open, 0o640);
  r = await start(['-d', 'hz.test', '-s', 'sel', '-k', open]);
  t.match(r.stderr, /readable by its group/);
  chmodSync(open, 0o600);
  r = await start(['-d', 'hz.test', '-s', 'sel', '-k', open]);
  t.notMatch(r.stderr, /readable by/);
});

t.test('-checkDns against the published records', async (t) => {
  const rsaRec = publicKeyRecord(KEY['rsa-sha256']);
  const edRec = publicKeyRecord(KEY['ed25519-sha256']);
  const dns: ZoneServer = await startZoneServer(
    zone(
      txt('sel._domainkey.hz.test', ...splitTxt(rsaRec)),
      txt('ed._domainkey.hz.test', edRec),
      txt('wrong._domainkey.hz.test', edRec),
      txt('sel._domainkey.revoked.test', 'v=DKIM1; k=rsa; p='),
      { 'sel._domainkey.broken.test': { rcode: 'SERVFAIL' } },
    ),
    { port: 0, host: '127.0.0.1' },
  );
  t.teardown(() => dns.close());
  const ns = ['-nameserver', `127.0.0.1:${dns.port}`];
  const kt = file('kt-dns', `hz.test sel ${RSA}\nhz.test ed ${ED}\n`);

  let r = await start(['-K', kt, '-checkDns', 'strict', ...ns]);
  t.equal(r.code, 0, `both published: ${r.stderr}`);
  t.match(r.stderr, /every key is published/);
  t.ok(dns.queries().some((q) => q.name === 'sel._domainkey.hz.test' && q.type === 'TXT'), 'asked the zone');

  for (const [args, want] of [
    [['-d', 'hz.test', '-s', 'wrong', '-k', RSA], /wrong\._domainkey\.hz\.test: k=ed25519 but our key is rsa/],
    [['-d', 'hz.test', '-s', 'none', '-k', RSA], /none\._domainkey\.hz\.test: no TXT record/],
    [['-d', 'revoked.test', '-s', 'sel', '-k', RSA], /key revoked \(empty p=\)/],
    [['-d', 'hz.test', '-s', 'ed', '-k', RSA], /k=ed25519 but our key is rsa/],
  ] as [string[], RegExp][]) {
    const strict = await start([...args, '-checkDns', 'strict', ...ns]);
    t.equal(strict.code, 1, `strict ${args.join(' ')}: exit 1`);
    t.match(strict.stderr.trim().split('\n').pop(), want, 'the last line says why');
    const warn = await start([...args, '-checkDns', 'warn', ...ns]);
    t.equal(warn.code, 0, `warn ${args.join(' ')}: runs`);
    t.match(warn.stderr, /"level":"warn".*does not publish the key/);
  }
  // a DNS failure is not proof of a wrong record: strict warns and runs
  r = await start(['-d', 'broken.test', '-s', 'sel', '-k', RSA, '-checkDns', 'strict', ...ns]);
  t.equal(r.code, 0, 'SERVFAIL: runs');
  t.match(r.stderr, /DNS servfail/);
  // key rotation: the new selector published next to the old one
  r = await start(['-K', file('kt-rot', `hz.test sel ${RSA}\nhz.test wrong ${RSA}\n`), '-checkDns', 'strict', ...ns]);
  t.equal(r.code, 1, 'one of two selectors wrong: exit 1');
  t.match(r.stderr, /wrong\._domainkey\.hz\.test/);
});
