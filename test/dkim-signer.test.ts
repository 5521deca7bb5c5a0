// The signer against two independent verifiers (python3-dkim and Perl Mail::DKIM, keys
// injected without DNS). Mail::DKIM 1.20230212 (Debian 12) has no Ed25519: for ed25519-sha256
// signatures we require python3-dkim to pass and Mail::DKIM to say "unsupported algorithm".

import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { withOversigning, defaultHeaderList, DEFAULT_OVERSIGN } from '../lib/dkim/header.js';
import { loadPrivateKey } from '../lib/dkim/keys.js';
import { publicKeyRecord } from '../lib/dkim/record.js';
import { DkimSigner, type SignatureSpec, type SignerOptions } from '../lib/dkim/signer.js';
import { Verifiers, wire, type SigResult } from './fixtures/dkim/verifiers.js';

const fixture = (p: string): string => fileURLToPath(new URL(`fixtures/dkim/${p}`, import.meta.url));
const RSA = loadPrivateKey(fixture('rsa2048.key'), 'rsa-sha256').key;
const ED = loadPrivateKey(fixture('ed25519.key'), 'ed25519-sha256').key;
const DOMAINS = ['hz.test', 'other.example', 'sub.hz.test'];
const KEYS: Record<string, string> = {};
for (const d of DOMAINS) {
  KEYS[`rsa._domainkey.${d}`] = publicKeyRecord(RSA);
  KEYS[`ed._domainkey.${d}`] = publicKeyRecord(ED);
}

const v = new Verifiers();
t.teardown(() => v.close());

const rsa = (extra: Partial<SignatureSpec> = {}): SignatureSpec => ({ key: RSA, selector: 'rsa', domains: ['hz.test'], ...extra });
const ed = (extra: Partial<SignatureSpec> = {}): SignatureSpec => ({ algorithm: 'ed25519-sha256', key: ED, selector: 'ed', domains: ['hz.test'], ...extra });

/** The signature on one line: continuation TABs dropped, the space after a ";" put back. */
function unfold(sig: readonly string[]): string {
  return sig.reduce((acc, l, i) => (i === 0 ? l : acc + (acc.endsWith(';') ? ' ' : '') + l.slice(1)), '');
}

function sign(message: readonly string[], specs: SignatureSpec[], opts: SignerOptions = {}, now?: number): string[] {
  const s = new DkimSigner(specs, opts);
  for (const l of message) s.line(l);
  return s.finish(now);
}

interface Verdict { python: SigResult[]; perl: SigResult[]; }

async function verify(delivered: Buffer): Promise<Verdict> {
  const r = await v.verify(delivered, KEYS);
  return { python: r.python.sigs, perl: r.perl.sigs };
}

/** Every signature passes python3-dkim; RSA ones pass Mail::DKIM (unless `perlRsa` is false),
 * Ed25519 ones are unsupported there. */
function assertPass(t: Test, r: Verdict, n: number, what: string, perlRsa = true): void {
  t.equal(r.python.length, n, `${what}: python sees ${n} signature(s)`);
  t.equal(r.perl.length, n, `${what}: perl sees ${n} signature(s)`);
  r.python.forEach((s, i) => t.ok(s.ok, `${what}: python #${i} ${s.a} ${s.err}`));
  r.perl.forEach((s, i) => {
    if (s.a === 'ed25519-sha256') t.match(s.err, /unsupported algorithm/, `${what}: perl #${i} has no ed25519`);
    else if (perlRsa) t.ok(s.ok, `${what}: perl #${i} ${s.a} ${s.err}`);
  });
}

function assertFail(t: Test, r: Verdict, what: string): void {
  t.ok(r.python.length > 0 && r.python.every((s) => !s.ok), `${what}: python fails`);
  t.ok(r.perl.length > 0 && r.perl.every((s) => !s.ok), `${what}: perl fails`);
}

const RICH: string[] = [
  'Received: from client.example (client.example [192.0.2.1])',
  '\tby mx.hz.test (OpenSMTPD) with ESMTPSA id 1a2b3c4d',
  '\tfor <bob@other.example>;',
  '\tSun, 22 Nov 2026 15:33:06 +0000 (UTC)',
  'From: "Alice Example" <alice@hz.test>',
  'To: Bob <bob@other.example>, Carol <carol@other.example>,',
  '    Dave <dave@other.example>',
  'To: second-to@other.example',
  'Subject:  Caf\xe9 na\xefve  \t subject with\ttabs   ',
  '  and a folded second line   ',
  '\tand a third',
  'Date: Sun, 01 Mar 2026 12:00:00 +0000',
  'Message-ID: <rich.1@hz.test>',
  'References: <a@x> <b@x> <c@x> <d@x> <e@x> <f@x> <g@x> <h@x> <i@x> <j@x> <k@x>',
  ' <l@x> <m@x> <n@x> <o@x> <p@x> <q@x> <r@x> <s@x> <t@x> <u@x> <v@x> <w@x>',
  ' <x@x> <y@x> <z@x>',
  'Cc: cc1@other.example',
  'Cc: cc2@other.example',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=iso-8859-1',
  'Content-Transfer-Encoding: 8bit',
  '',
  'Hello,',
  '',
  'caf\xe9 \xff\xfe 8-bit bytes',
  '.one leading dot',
  '..two leading dots',
  '.',
  'trailing spaces   ',
  'trailing tab\t',
  'inner   spaces\tand\t\ttabs',
  '   ',
  'a bare\rCR inside',
  '',
  '\t',
  '',
];

t.test('rsa-sha256 and ed25519-sha256, all four canonicalizations', async (t) => {
  for (const c of ['simple/simple', 'simple/relaxed', 'relaxed/simple', 'relaxed/relaxed']) {
    for (const spec of [rsa({ canonicalization: c }), ed({ canonicalization: c })]) {
      const sig = sign(RICH, [spec]);
      t.match(sig[0], new RegExp(`^DKIM-Signature: v=1; a=${spec.algorithm ?? 'rsa-sha256'}; c=${c}; s=`));
      t.ok(sig.slice(1).every((l) => l.startsWith('\t')));
      assertPass(t, await verify(wire([...sig, ...RICH])), 1, `${spec.algorithm ?? 'rsa-sha256'} ${c}`);
    }
  }
});

t.test('h= lists every occurrence bottom-up, absent headers not listed', async (t) => {
  t.match(unfold(sign(RICH, [rsa()])), /; h=cc:cc:references:date:subject:to:to:from; d=hz.test; b=/);
});

t.test('empty bodies, header-only messages, no final newline', async (t) => {
  const head = ['From: a@hz.test', 'Subject: s'];
  const cases: [string, string[]][] = [
    ['empty body', [...head, '']],
    ['only empty lines', [...head, '', '', '', '']],
    ['only blank lines', [...head, '', ' ', '\t', '']],
    ['no header/body separator', [...head]],
    ['one body line', [...head, '', 'x']],
    ['body ends in empty lines', [...head, '', 'x', '', '']],
  ];
  for (const [what, msg] of cases) {
    for (const c of ['simple/simple', 'relaxed/relaxed', 'simple/relaxed', 'relaxed/simple']) {
      const sig = sign(msg, [rsa({ canonicalization: c }), ed({ canonicalization: c })]);
      assertPass(t, await verify(wire([...sig, ...msg])), 2, `${what} ${c}`);
      // the same message without its final CRLF (what a verifier may get from a file)
      // (Mail::DKIM's simple body does not add the missing CRLF, RFC 6376 §3.4.3 says to: we
      // only ask python3-dkim there)
      const missing = msg[msg.length - 1] !== '' && msg.length > 2;
      const perlRsa = !(c.endsWith('/simple') && missing);
      assertPass(t, await verify(wire([...sig, ...msg], true)), 2, `${what} ${c}, no final newline`, perlRsa);
    }
  }
});

t.test('several signatures in one pass: algorithms, domains, selectors, header lists', async (t) => {
  const specs: SignatureSpec[] = [
    rsa({ canonicalization: 'relaxed/relaxed', domains: ['other.example', 'hz.test'] }),
    ed({ canonicalization: 'simple/simple', domains: ['sub.hz.test'] }),
    rsa({ canonicalization: 'relaxed/simple', domains: ['other.example'], headers: 'from:to:cc:subject:message-id:received', copyHeaders: 1 }),
    ed({ canonicalization: 'relaxed/relaxed', headers: withOversigning(defaultHeaderList()), timestamp: true, expire: 86400, copyHeaders: 2 }),
  ];
  const sig = sign(RICH, specs);
  const starts = sig.filter((l) => l.startsWith('DKIM-Signature:')).length;
  t.equal(starts, 4);
  const r = await verify(wire([...sig, ...RICH]));
  assertPass(t, r, 4, 'four signatures');
  t.same(r.python.map((s) => s.d), ['hz.test', 'sub.hz.test', 'other.example', 'hz.test'], 'd= per signature: From alice@hz.test');
  // alone, each signature is the same as when made together
  for (const [i, spec] of specs.entries()) {
    const alone = sign(RICH, [spec], {}, 1795361593);
    const together = sign(RICH, specs, {}, 1795361593);
    const idx = together.map((l, j) => (l.startsWith('DKIM-Signature:') ? j : -1)).filter((j) => j >= 0);
    t.same(together.slice(idx[i], idx[i + 1]), alone, `signature ${i + 1} alone`);
  }
});

t.test('oversigning: (o) always, (x) only when present', async (t) => {
  const msg = ['From: a@hz.test', 'To: b@other.example', 'Subject: s', 'Message-ID: <m@hz.test>', '', 'body'];
  const headers = '(o)from:(o)to:(o)subject:(o)reply-to:(o)cc:(x)date:(x)message-id:(x)in-reply-to';
  const sig = sign(msg, [rsa({ headers }), ed({ headers, canonicalization: 'relaxed/relaxed' })]);
  t.match(unfold(sig), /h=message-id:subject:to:from:from:to:subject:reply-to:cc:message-id;/);
  assertPass(t, await verify(wire([...sig, ...msg])), 2, 'oversigned');
  // any header added later breaks it: above, below, or a header that was absent
  const added: [string, string[]][] = [
    ['a second Subject on top', [...sig, 'Subject: evil', ...msg]],
    ['a second From at the end of the header', [...sig, ...msg.slice(0, 4), 'From: evil@evil.example', ...msg.slice(4)]],
    ['a Reply-To that was absent', [...sig, 'Reply-To: evil@evil.example', ...msg]],
    ['a Cc that was absent', [...sig, ...msg.slice(0, 4), 'Cc: evil@evil.example', ...msg.slice(4)]],
  ];
  for (const [what, m] of added) {
    const r = await verify(wire(m));
    t.notOk(r.python[0]!.ok || r.python[1]!.ok, `${what}: python fails`);
    t.notOk(r.perl[0]!.ok, `${what}: perl fails`);
  }
  // (x) for an absent header: smtpd may add Date: after the filters, and that keeps it valid
  assertPass(t, await verify(wire([...sig, ...msg.slice(0, 4), 'Date: Sun, 01 Mar 2026 12:00:00 +0000', ...msg.slice(4)])), 2, 'Date added after signing');
  // without oversigning (the C filter), a Subject added on top is not noticed
  const plain = sign(msg, [rsa()]);
  assertPass(t, await verify(wire([...plain, 'Subject: evil', ...msg])), 1, 'C-style signing misses an added Subject');
});

t.test('default oversign list verifies and protects', async (t) => {
  const headers = withOversigning(defaultHeaderList(), DEFAULT_OVERSIGN);
  const sig = sign(RICH, [rsa({ headers, canonicalization: 'relaxed/relaxed' })]);
  assertPass(t, await verify(wire([...sig, ...RICH])), 1, 'default oversigning');
  const r = await verify(wire([...sig, 'Reply-To: evil@evil.example', ...RICH]));
  assertFail(t, r, 'Reply-To added');
});

t.test('-z and -zz, -t and -x verify', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  for (const copyHeaders of [1, 2] as const) {
    const sig = sign(RICH, [rsa({ copyHeaders, timestamp: true, expire: 3600, canonicalization: 'relaxed/relaxed' })], {}, now);
    t.match(unfold(sig), new RegExp(`z=${copyHeaders === 2 ? 'Received' : 'From'}:=20.*; t=${now}; x=${now + 3600};`));
    assertPass(t, await verify(wire([...sig, ...RICH])), 1, `-z x${copyHeaders}`);
  }
  // -z on a message with no empty line after the header: z= is closed (the C filter's is not)
  const head = ['From: a@hz.test', 'Subject: s'];
  const sig = sign(head, [rsa({ copyHeaders: 1 })]);
  t.match(unfold(sig), /=0D=0A; bh=/);
  assertPass(t, await verify(wire([...sig, ...head])), 1, '-z without body separator');
  t.match(unfold(sign(head, [rsa({ expire: 2n ** 63n - 1n })], {}, now)), /x=9223372036854775807;/, 'x= saturates');
});

t.test('domain choice from From:', async (t) => {
  const d = ['fallback.example', 'hz.test', 'other.example', 'sub.hz.test'];
  const pick = (from: string[]): string => /d=([^;]+);/.exec(unfold(sign([...from, '', 'x'], [rsa({ domains: d })])))![1]!;
  t.equal(pick(['From: a@deep.sub.hz.test']), 'sub.hz.test');
  t.equal(pick(['From: Alice <a@x.other.example>']), 'other.example');
  t.equal(pick(['From: a@nomatch.example']), 'fallback.example');
  t.equal(pick(['From: a@nomatch.example', 'From: b@hz.test']), 'hz.test', 'a lower From matches when the top one does not');
  t.equal(pick(['From: a@other.example', 'From: b@hz.test']), 'other.example', 'the top From wins');
  t.equal(pick(['From: a@hz.test (comment)']), 'fallback.example', 'raw domain with a comment matches nothing (as the C filter)');
  t.equal(pick(['From: Alice', '\t<a@other.example>']), 'other.example', 'folded From');
  t.equal(pick(['From: <@relay.example:a@hz.test>']), 'fallback.example', 'obs-route: no crash');
});

t.test('C filter fixes: bare CR in a relaxed header, empty folded value, no From', async (t) => {
  const cr = ['From: a@hz.test', 'Subject: a\rb', '', 'x'];
  assertPass(t, await verify(wire([...sign(cr, [rsa({ canonicalization: 'relaxed' })]), ...cr])), 1, 'bare CR in Subject, relaxed');
  const fold = ['From: a@hz.test', 'Subject:', '\t\t', ' ', '', 'x'];
  for (const c of ['relaxed/relaxed', 'simple/simple']) {
    assertPass(t, await verify(wire([...sign(fold, [rsa({ canonicalization: c })]), ...fold])), 1, `empty folded Subject ${c}`);
  }
  const nofrom = ['To: b@other.example', 'Subject: s', '', 'x'];
  const sig = sign(nofrom, [rsa(), ed()]);
  t.match(unfold(sig), /h=subject:to:from;/, 'from listed although absent');
  assertPass(t, await verify(wire([...sig, ...nofrom])), 2, 'no From');
  const r = await verify(wire([...sig, 'From: evil@evil.example', ...nofrom]));
  t.notOk(r.python[0]!.ok || r.python[1]!.ok, 'a From added later breaks it');
  const empty = sign([], [rsa()]);
  t.match(unfold(empty), /h=from;/);
  assertPass(t, await verify(wire(empty)), 1, 'empty message');
});

t.test('maxLineBytes: hash long lines as smtpd < 7.4 delivers them', async (t) => {
  const msg = ['From: a@hz.test', `X-Long: ${'h'.repeat(2500)}`, '', 'short', 'b'.repeat(3000), `.${'d'.repeat(2500)}`, 'c'.repeat(1997), 'e'.repeat(1998)];
  // what smtpd 6.8 delivers: each answer line cut at 2047 bytes, i.e. 1997 bytes of dot-stuffed data
  const deliver = (lines: string[]): string[] => lines.map((l) => {
    const stuffed = l.startsWith('.') ? `.${l}` : l;
    const cut = stuffed.slice(0, 1997);
    return cut.startsWith('.') ? cut.slice(1) : cut;
  });
  for (const c of ['simple/simple', 'relaxed/relaxed']) {
    const sig = sign(msg, [rsa({ canonicalization: c, headers: 'from:x-long' }), ed({ canonicalization: c })], { maxLineBytes: 1997 });
    assertPass(t, await verify(wire(deliver([...sig, ...msg]))), 2, `cut lines ${c}`);
    const whole = sign(msg, [rsa({ canonicalization: c })]);
    assertFail(t, await verify(wire(deliver([...whole, ...msg]))), `without maxLineBytes ${c} (the C filter)`);
    assertPass(t, await verify(wire([...whole, ...msg])), 1, `smtpd >= 7.4 delivers whole lines ${c}`);
  }
  t.throws(() => new DkimSigner([rsa()], { maxLineBytes: 1 }));
});

t.test('a 5 MB message', async (t) => {
  const msg = ['From: a@hz.test', 'To: b@other.example', 'Subject: big', ''];
  let size = 0;
  for (let i = 0; size < 5 * 1024 * 1024; i++) {
    const l = i % 50 === 49 ? '' : `${i} ${'lorem ipsum dolor sit amet '.repeat(1 + (i % 3))}${i % 7 === 0 ? '  \t' : ''}`;
    msg.push(l);
    size += l.length + 2;
  }
  const sig = sign(msg, [rsa({ canonicalization: 'relaxed/relaxed' }), ed({ canonicalization: 'simple/simple' }), rsa({ canonicalization: 'relaxed/simple', selector: 'rsa' })]);
  assertPass(t, await verify(wire([...sig, ...msg])), 3, '5 MB');
});

t.test('API misuse and bad specs', async (t) => {
  const s = new DkimSigner([rsa()]);
  s.line('From: a@hz.test');
  s.finish();
  t.throws(() => s.finish(), /twice/);
  t.throws(() => s.line('x'), /after finish/);
  t.throws(() => new DkimSigner([]), /no signature/);
  t.throws(() => new DkimSigner([rsa({ key: ED })]), /signature 1: key is ed25519 but -a says rsa-sha256/);
  t.throws(() => new DkimSigner([rsa(), ed({ key: RSA })]), /signature 2: key is rsa but -a says ed25519-sha256/);
  t.throws(() => new DkimSigner([rsa({ domains: [] })]), /no domain/);
  t.throws(() => new DkimSigner([rsa({ selector: 'a;b' })]), /bad selector/);
  t.throws(() => new DkimSigner([rsa({ domains: ['a b'] })]), /bad domain/);
  t.throws(() => new DkimSigner([rsa({ headers: [{ name: 'to', mode: 'sign' }] })]), /From header must be included/);
  t.throws(() => new DkimSigner([rsa({ headers: 'to' })]), /From header must be included/);
  t.throws(() => new DkimSigner([rsa({ canonicalization: 'loose' })]), /Invalid canonicalization/);
  t.throws(() => new DkimSigner([rsa({ expire: 0 })]), /expire/);
  const small = generateKeyPairSync('rsa', { modulusLength: 512 }).privateKey;
  t.throws(() => new DkimSigner([rsa({ key: small })]), /at least 1024/);
});

t.test('finishAsync (the private-key operation on the thread pool) gives what finish gives', async (t) => {
  const message = ['From: a@hz.test', 'To: b@other.example', 'Subject: async', '', 'body line', '.dot line', ''];
  for (const specs of [[rsa()], [ed()], [rsa(), ed({ domains: ['other.example'] })]]) {
    const a = new DkimSigner(specs);
    const b = new DkimSigner(specs);
    for (const l of message) {
      a.line(l);
      b.line(l);
    }
    // RSA PKCS#1 v1.5 and Ed25519 signatures are deterministic: the lines must be equal
    t.same(await b.finishAsync(1700000000), a.finish(1700000000), specs.map((s) => s.algorithm ?? 'rsa-sha256').join('+'));
    await t.rejects(b.finishAsync(), /twice/);
  }
});
