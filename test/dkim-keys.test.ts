import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { generateKey, generateKeyPem, loadPrivateKey, parseAlgorithm } from '../lib/dkim/keys.js';
import {
  checkPublishedKey,
  parseTagList,
  publicKeyData,
  publicKeyRecord,
  recordName,
  splitTxt,
  zoneLine,
} from '../lib/dkim/record.js';

const KEYS = '/work/shared/harness/fixtures/keys';
const RSA = join(KEYS, 'dkim-rsa2048.key');
const ED = join(KEYS, 'dkim-ed25519.key');

t.test('parseAlgorithm', async (t) => {
  t.equal(parseAlgorithm('rsa-sha256'), 'rsa-sha256');
  t.equal(parseAlgorithm('ed25519-sha256'), 'ed25519-sha256');
  for (const bad of ['rsa-sha1', 'rsa', 'ed25519', 'RSA-SHA256', '']) t.throws(() => parseAlgorithm(bad), /invalid algorithm/);
});

t.test('loadPrivateKey: RSA PKCS#8, RSA PKCS#1, Ed25519 PKCS#8', async (t) => {
  const dir = t.testdir({});
  const rsa = loadPrivateKey(RSA, 'rsa-sha256');
  t.equal(rsa.type, 'rsa');
  t.equal(rsa.bits, 2048);
  const pkcs1 = join(dir, 'pkcs1.key');
  writeFileSync(pkcs1, rsa.key.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });
  t.match(readFileSync(pkcs1, 'latin1'), /BEGIN RSA PRIVATE KEY/);
  const p1 = loadPrivateKey(pkcs1, 'rsa-sha256');
  t.equal(publicKeyData(p1.key), publicKeyData(rsa.key), 'same key in both encodings');
  t.equal(p1.mode, 0o600);
  t.notOk(p1.groupReadable);
  t.notOk(p1.worldReadable);
  const ed = loadPrivateKey(ED, 'ed25519-sha256');
  t.equal(ed.type, 'ed25519');
  t.equal(ed.bits, 256);
});

t.test('loadPrivateKey: clear startup errors', async (t) => {
  const dir = t.testdir({ 'not-a-key': 'hello\n', 'cert.pem': readFileSync(join(KEYS, 'tls.crt')) });
  t.throws(() => loadPrivateKey(ED, 'rsa-sha256'), { message: `key ${ED} is ed25519 but -a says rsa-sha256` });
  t.throws(() => loadPrivateKey(RSA, 'ed25519-sha256'), { message: `key ${RSA} is rsa but -a says ed25519-sha256` });
  t.throws(() => loadPrivateKey(join(dir, 'missing'), 'rsa-sha256'), /can't read key .*missing: ENOENT/);
  t.throws(() => loadPrivateKey(join(dir, 'not-a-key'), 'rsa-sha256'), /is not a PEM private key/);
  t.throws(() => loadPrivateKey(join(dir, 'cert.pem'), 'rsa-sha256'), /is not a PEM private key/);
  const enc = join(dir, 'enc.key');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  writeFileSync(enc, privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }));
  t.throws(() => loadPrivateKey(enc, 'rsa-sha256'), /is encrypted/);
  const small = join(dir, 'small.key');
  writeFileSync(small, generateKeyPairSync('rsa', { modulusLength: 512 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
  t.throws(() => loadPrivateKey(small, 'rsa-sha256'), /RSA 512 bits; DKIM needs at least 1024/);
});

t.test('loadPrivateKey: reports group- and world-readable files', async (t) => {
  const dir = t.testdir({});
  const p = join(dir, 'k.key');
  writeFileSync(p, readFileSync(ED));
  chmodSync(p, 0o640);
  let k = loadPrivateKey(p, 'ed25519-sha256');
  t.equal(k.mode, 0o640);
  t.ok(k.groupReadable);
  t.notOk(k.worldReadable);
  chmodSync(p, 0o644);
  k = loadPrivateKey(p, 'ed25519-sha256');
  t.ok(k.worldReadable);
});

t.test('generateKey: mode 0600, never overwrites, sizes', async (t) => {
  const dir = t.testdir({ existing: 'keep me' });
  const ed = join(dir, 'ed.key');
  const key = generateKey(ed, { type: 'ed25519' });
  t.equal(statSync(ed).mode & 0o777, 0o600);
  t.equal(loadPrivateKey(ed, 'ed25519-sha256').type, 'ed25519');
  t.equal(publicKeyData(key), publicKeyData(loadPrivateKey(ed, 'ed25519-sha256').key));
  t.throws(() => generateKey(ed, { type: 'ed25519' }), /exists; not overwriting it/);
  t.throws(() => generateKey(join(dir, 'existing'), { type: 'rsa' }), /exists/);
  t.equal(readFileSync(join(dir, 'existing'), 'latin1'), 'keep me');
  const rsa = join(dir, 'rsa.key');
  generateKey(rsa, { type: 'rsa', bits: 1024 });
  const loaded = loadPrivateKey(rsa, 'rsa-sha256');
  t.equal(loaded.bits, 1024);
  t.equal(loaded.mode, 0o600);
  t.equal(createPrivateKey(generateKeyPem({ type: 'rsa' })).asymmetricKeyDetails?.modulusLength, 2048, 'default 2048');
  t.throws(() => generateKeyPem({ type: 'rsa', bits: 512 }), /1024 to 4096/);
  t.throws(() => generateKeyPem({ type: 'rsa', bits: 8192 }), /1024 to 4096/);
  t.throws(() => generateKey(join(dir, 'no/such/dir.key'), { type: 'ed25519' }), /can't create .*ENOENT/);
});

t.test('publicKeyRecord', async (t) => {
  const ed = loadPrivateKey(ED, 'ed25519-sha256').key;
  const rec = publicKeyRecord(ed);
  t.match(rec, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
  // RFC 8463 §4.2: p= is the raw 32-byte public key
  const spki = createPublicKey(ed).export({ type: 'spki', format: 'der' }) as Buffer;
  t.equal(Buffer.from(rec.split('p=')[1]!, 'base64').toString('hex'), spki.subarray(spki.length - 32).toString('hex'));
  const rsa = loadPrivateKey(RSA, 'rsa-sha256').key;
  const r = publicKeyRecord(rsa);
  t.match(r, /^v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA/);
  t.equal(publicKeyRecord(createPublicKey(rsa)), r, 'public key objects work too');
});

t.test('splitTxt and zoneLine', async (t) => {
  t.same(splitTxt(''), ['']);
  t.same(splitTxt('abc'), ['abc']);
  const v = 'x'.repeat(600);
  t.same(splitTxt(v).map((s) => s.length), [255, 255, 90]);
  t.equal(splitTxt(v).join(''), v);
  t.same(splitTxt('x'.repeat(510)).map((s) => s.length), [255, 255]);
  const rec = publicKeyRecord(loadPrivateKey(RSA, 'rsa-sha256').key);
  const line = zoneLine('sel', 'example.org', rec);
  t.match(line, /^sel\._domainkey\.example\.org\. IN TXT \( "v=DKIM1; k=rsa; p=[^"]{237}" "[^"]+" \)$/);
  const parts = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
  t.ok(parts.every((p) => p.length <= 255));
  t.equal(parts.join(''), rec);
  t.equal(recordName('s', 'example.org.'), 's._domainkey.example.org.');
  t.equal(zoneLine('s', 'd', 'a"b\\c'), 's._domainkey.d. IN TXT ( "a\\"b\\\\c" )');
});

t.test('parseTagList', async (t) => {
  t.same([...parseTagList('v=DKIM1; k=rsa; p=AB CD')!], [['v', 'DKIM1'], ['k', 'rsa'], ['p', 'AB CD']]);
  t.same([...parseTagList(' v = DKIM1 ;\r\n\tp=;')!], [['v', 'DKIM1'], ['p', '']]);
  t.equal(parseTagList('garbage'), null);
  t.equal(parseTagList('p=a; p=b'), null);
});

t.test('checkPublishedKey', async (t) => {
  const rsa = loadPrivateKey(RSA, 'rsa-sha256').key;
  const ed = loadPrivateKey(ED, 'ed25519-sha256').key;
  const rr = publicKeyRecord(rsa);
  const er = publicKeyRecord(ed);
  t.same(checkPublishedKey(rr, rsa), { ok: true, reason: '' });
  t.same(checkPublishedKey(er, ed), { ok: true, reason: '' });
  // as dns.resolveTxt returns it: one record of 255-byte character-strings
  t.ok(checkPublishedKey([splitTxt(rr)], rsa).ok);
  // white space inside p= (zone files often split it) is ignored
  const spaced = rr.replace(/p=(.{50})(.{50})/, 'p=$1 \t$2\r\n ');
  t.ok(checkPublishedKey(spaced, rsa).ok, 'spaces in p=');
  t.ok(checkPublishedKey(rr.replace('v=DKIM1; ', ''), rsa).ok, 'v= optional');
  t.ok(checkPublishedKey(rr.replace('k=rsa; ', ''), rsa).ok, 'k= defaults to rsa');
  t.ok(checkPublishedKey(`${rr}; h=sha1:sha256; s=email; t=s`, rsa).ok);
  // RSAPublicKey (PKCS#1) instead of SubjectPublicKeyInfo
  const pkcs1 = (createPublicKey(rsa).export({ type: 'pkcs1', format: 'der' }) as Buffer).toString('base64');
  t.ok(checkPublishedKey(`v=DKIM1; k=rsa; p=${pkcs1}`, rsa).ok, 'PKCS#1 p=');
  const other = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
  t.match(checkPublishedKey(rr, other), { ok: false, reason: 'p= is a different public key' });
  t.match(checkPublishedKey(er.replace('k=ed25519', 'k=rsa'), ed), { ok: false, reason: 'k=rsa but our key is ed25519' });
  t.match(checkPublishedKey(rr.replace('k=rsa; ', ''), ed), { ok: false, reason: 'k=rsa but our key is ed25519' });
  t.match(checkPublishedKey('v=DKIM1; k=rsa; p=', rsa), { ok: false, reason: 'key revoked (empty p=)' });
  t.match(checkPublishedKey('v=DKIM1; k=rsa', rsa), { ok: false, reason: 'no p= tag' });
  t.match(checkPublishedKey('v=DKIM2; p=x', rsa), { ok: false, reason: 'v=DKIM2, not DKIM1' });
  t.match(checkPublishedKey(`${rr}; h=sha1`, rsa), { ok: false, reason: 'h=sha1 does not allow sha256' });
  t.match(checkPublishedKey(`${rr}; s=tlsrpt`, rsa), { ok: false, reason: 's=tlsrpt does not allow email' });
  t.match(checkPublishedKey([], rsa), { ok: false, reason: 'no TXT record' });
  t.match(checkPublishedKey([rr, rr], rsa), { ok: false, reason: '2 TXT records; verifiers may pick any' });
  t.match(checkPublishedKey('v=spf1 -all', rsa), { ok: false, reason: 'v=spf1 -all, not DKIM1' });
  t.match(checkPublishedKey('google-site-verification', rsa), { ok: false, reason: 'TXT record is not a DKIM tag list' });
  t.match(checkPublishedKey('v=DKIM1; p=%%%', rsa), { ok: false, reason: 'p= is not base64' });
});
