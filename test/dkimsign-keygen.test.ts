// smtpd-filters dkim-keygen through the built CLI: the key file (0600 whatever the umask,
// never over an existing file), the record as a BIND line of ≤ 255-byte strings and as the
// bare value, and the round trip: the printed record served by a dns2 zone passes the
// filter's -checkDns strict with the written key, and a message signed with it verifies.

import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { checkPublishedKey } from '../lib/dkim/record.js';
import { CFilter } from './fixtures/dkim/cfilter.js';
import { Verifiers, wire } from './fixtures/dkim/verifiers.js';
import { OURS, SMTPD_FILTERS } from './fixtures/dkimsign/common.js';
import { startZoneServer } from './lib/dns-zone-server.js';
import { txt, zone } from './lib/zone.js';

const dir = mkdtempSync(join(tmpdir(), 'dkim-keygen-'));

function keygen(args: string[], umask = 0o022): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // the umask of the shell that runs it; the key must be 0600 regardless
    execFile('/bin/sh', ['-c', `umask ${umask.toString(8)}; exec "$@"`, 'sh', ...SMTPD_FILTERS, 'dkim-keygen', ...args], { cwd: dir }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** The TXT strings of the BIND line, unquoted. */
function bindStrings(stdout: string): { owner: string; strings: string[] } {
  const line = stdout.split('\n').find((l) => / IN TXT \( /.test(l))!;
  const owner = line.split(' ')[0]!;
  const strings = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'));
  return { owner, strings };
}

const bare = (stdout: string): string => stdout.split('\n').find((l) => l.startsWith('v=DKIM1;'))!;

t.test('RSA 2048 by default: 0600 key, split record, bare value', async (t) => {
  const r = await keygen(['-d', 'hz.test', '-s', 'sel2026'], 0);
  t.equal(r.code, 0, r.stderr);
  const path = join(dir, 'hz.test.sel2026.key');
  t.equal(statSync(path).mode & 0o777, 0o600, 'mode 0600 even with umask 000');
  const key = createPrivateKey(readFileSync(path));
  t.equal(key.asymmetricKeyType, 'rsa');
  t.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
  const { owner, strings } = bindStrings(r.stdout);
  t.equal(owner, 'sel2026._domainkey.hz.test.');
  t.ok(strings.length >= 2, `${strings.length} strings`);
  t.ok(strings.every((s) => s.length <= 255), 'each at most 255 bytes');
  t.equal(strings.join(''), bare(r.stdout), 'the strings make the bare value');
  t.ok(checkPublishedKey(bare(r.stdout), key).ok, 'the record carries the key');
  t.match(r.stdout, /filter-dkimsign -c relaxed\/relaxed -d hz\.test -s sel2026 -k .*hz\.test\.sel2026\.key/);

  const again = await keygen(['-d', 'hz.test', '-s', 'sel2026']);
  t.equal(again.code, 1, 'refuses to overwrite');
  t.match(again.stderr, /exists; not overwriting it/);
  t.same(createPrivateKey(readFileSync(path)).export({ type: 'pkcs8', format: 'der' }), key.export({ type: 'pkcs8', format: 'der' }), 'the old key is intact');
});

t.test('Ed25519, RSA sizes, -k', async (t) => {
  const ed = await keygen(['-d', 'hz.test', '-s', 'ed', '-a', 'ed25519', '-k', join(dir, 'my-ed.pem')]);
  t.equal(ed.code, 0, ed.stderr);
  const edKey = createPrivateKey(readFileSync(join(dir, 'my-ed.pem')));
  t.equal(edKey.asymmetricKeyType, 'ed25519');
  t.match(bare(ed.stdout), /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
  t.equal(bindStrings(ed.stdout).strings.length, 1, 'one string');
  t.match(ed.stdout, /-a ed25519-sha256/);
  for (const bits of [1024, 3072, 4096]) {
    const r = await keygen(['-d', 'hz.test', '-s', `b${bits}`, '-b', String(bits), '-a', 'rsa-sha256']);
    t.equal(r.code, 0, r.stderr);
    const k = createPrivateKey(readFileSync(join(dir, `hz.test.b${bits}.key`)));
    t.equal(k.asymmetricKeyDetails?.modulusLength, bits);
    const { strings } = bindStrings(r.stdout);
    t.ok(strings.every((s) => s.length <= 255) && strings.join('') === bare(r.stdout), `${bits}: ${strings.length} strings`);
  }
});

t.test('usage errors exit 2 and write nothing', async (t) => {
  for (const [args, want] of [
    [['-d', 'hz.test'], /-d domain and -s selector are required/],
    [['-d', 'hz.test', '-s', 'x', '-a', 'dsa'], /rsa or ed25519/],
    [['-d', 'hz.test', '-s', 'x', '-b', '512'], /1024 to 4096/],
    [['-d', 'hz.test', '-s', 'x', '-a', 'ed25519', '-b', '2048'], /-b is for RSA keys/],
    [['-d', 'hz..test', '-s', 'x'], /labels of letters/],
    [['-d', 'hz.test', '-s', 'a b'], /labels of letters/],
    [['-d', 'hz.test', '-s', 'x', 'extra'], /unexpected argument/],
  ] as [string[], RegExp][]) {
    const r = await keygen(args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, want);
  }
  t.throws(() => statSync(join(dir, 'hz.test.x.key')), 'no key written');
  const missingDir = await keygen(['-d', 'hz.test', '-s', 'y', '-k', join(dir, 'no/such/dir.key')]);
  t.equal(missingDir.code, 1);
  t.match(missingDir.stderr, /can't create .*ENOENT/);
});

t.test('round trip: published as printed, checked by the filter, signatures verify', async (t) => {
  const r = await keygen(['-d', 'rt.test', '-s', 'rot1', '-k', join(dir, 'rt.key')]);
  t.equal(r.code, 0);
  const { owner, strings } = bindStrings(r.stdout);
  const dns = await startZoneServer(zone(txt(owner, ...strings)), { port: 0, host: '127.0.0.1' });
  t.teardown(() => dns.close());
  const f = await CFilter.start(['-d', 'rt.test', '-s', 'rot1', '-k', join(dir, 'rt.key'), '-c', 'relaxed/relaxed', '-checkDns', 'strict', '-nameserver', `127.0.0.1:${dns.port}`], OURS);
  const out = await f.sign(['From: a@rt.test', 'Subject: round trip', '', 'body']);
  await f.close();
  t.equal(f.exited, 0, f.stderr);
  t.ok(dns.queries().some((q) => q.name === 'rot1._domainkey.rt.test'), 'the filter checked the record');
  const v = new Verifiers();
  const a = await v.verify(wire(out.lines), { 'rot1._domainkey.rt.test': strings.join('') });
  await v.close();
  t.ok(a.python.sigs[0]?.ok && a.perl.sigs[0]?.ok, 'both verifiers pass with the printed record');
  writeFileSync(join(dir, 'done'), '');
});
