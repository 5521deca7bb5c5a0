// filter-dkimsign's policy in-process (test/lib/driver.ts drives the real runtime, hold mode
// and spool included): the message cases with both verifiers, for both algorithms and
// every canonicalization; key table choice, several signatures, no key → unsigned, -fallback;
// -authOnly; -oversign; the error policy; long lines per protocol version; sessions that
// interleave, roll back and send several messages.

import { createPublicKey } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { configFromFlags, dkimsignFilter, FLAGS, type DkimsignConfig } from '../filters/dkimsign/filter.js';
import { parseFlags } from '../lib/flags.js';
import { createLogger } from '../lib/log.js';
import { COMMON_FLAGS } from '../lib/main.js';
import { registrations } from '../lib/runtime.js';
import { Verifiers, wire, type VerifyAnswer } from './fixtures/dkim/verifiers.js';
import { allPass, privateKeys, records, signatures, unfold } from './fixtures/dkimsign/common.js';
import { Driver } from './lib/driver.js';
import { sid, tok, type Version } from './lib/stream.js';

const KEYFILE = privateKeys();
const RSA = KEYFILE['rsa-sha256'];
const ED = KEYFILE['ed25519-sha256'];
const KEYS = records(['hz.test', 'other.example', 'sub.hz.test', 'a.test', 'b.test'], ['sel', 'ed', 'rsa', 'ed2']);
const silent = createLogger('silent');

const v = new Verifiers();
t.teardown(() => v.close());

function config(argv: string[]): DkimsignConfig {
  return configFromFlags(parseFlags(argv, [...FLAGS, ...COMMON_FLAGS]).values, silent);
}

function keyTable(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'dkimsign-kt-'));
  const p = join(dir, 'keytable');
  writeFileSync(p, text);
  return p;
}

interface Outcome {
  /** the message as smtpd delivers it (filter-dataline payloads, un-stuffed) */
  lines: string[];
  result: string;
  sigs: string[];
}

interface SessionOpts {
  src?: string;
  auth?: string;
  version?: Version;
}

let counter = 0;

/** One session with one message through a fresh runtime (or `d`). */
async function run(c: DkimsignConfig, message: readonly string[], opts: SessionOpts & { d?: Driver } = {}): Promise<Outcome> {
  const d = opts.d ?? new Driver([dkimsignFilter(c)], { version: opts.version ?? '0.6' }).handshake();
  if (!opts.d) await d.take();
  return transact(d, message, opts);
}

async function transact(d: Driver, message: readonly string[], opts: SessionOpts = {}): Promise<Outcome> {
  const n = ++counter;
  const s = sid(n);
  const b = d.b;
  const msgid = (0x10000000 + n).toString(16);
  d.send(b.linkConnect(s, 'client.example', 'pass', opts.src ?? '192.0.2.7:41000'));
  if (opts.auth) d.send(b.linkAuth(s, 'pass', opts.auth));
  d.send(b.report(s, 'tx-begin', msgid));
  d.send(message.map((l) => b.request(s, 'data-line', tok(n), l.startsWith('.') ? `.${l}` : l)));
  d.send(b.request(s, 'data-line', tok(n), '.'));
  // smtpd sends commit only after the filter's "." (a spooled message takes a while)
  const dotLine = b.dataline(s, tok(n), '.');
  for (let waited = 0; !d.output.includes(dotLine) && waited < 30_000; waited += 10) await d.settle(10);
  d.send(b.request(s, 'commit', tok(n + 100000)));
  const out = await d.take(10);
  d.send(b.report(s, 'tx-commit', msgid, '100'), b.report(s, 'link-disconnect'));
  const head = b.dataline(s, tok(n), '');
  const lines: string[] = [];
  let dot = false;
  for (const l of out) {
    if (!l.startsWith(head)) continue;
    const x = l.slice(head.length);
    if (x === '.') dot = true;
    else lines.push(x.startsWith('.') ? x.slice(1) : x);
  }
  const rhead = b.result(s, tok(n + 100000), '');
  const result = out.find((l) => l.startsWith(rhead))?.slice(rhead.length) ?? 'none';
  if (!dot) throw new Error(`no end of message for session ${n}: ${out.slice(-3).join(' / ')}`);
  return { lines, result, sigs: signatures(lines) };
}

function checkPass(t: Test, a: { python: VerifyAnswer; perl: VerifyAnswer }, n: number, what: string): void {
  t.ok(allPass(a.python, n), `${what}: python3-dkim passes ${n} ${a.python.sigs.map((s) => s.err).join(' ')}${a.python.err ?? ''}`);
  // Mail::DKIM has no Ed25519: its RSA signatures must pass, the others are "unsupported"
  const perlRsa = a.perl.sigs.filter((s) => s.a !== 'ed25519-sha256');
  t.equal(a.perl.sigs.length, n, `${what}: Mail::DKIM sees ${n}`);
  t.ok(perlRsa.every((s) => s.ok), `${what}: Mail::DKIM passes the RSA ones ${perlRsa.map((s) => s.err).join(' ')}`);
}

const HEAD = ['From: Alice <alice@hz.test>', 'To: Bob <bob@other.example>', 'Subject: hello', 'Date: Sun, 22 Nov 2026 15:07:20 +0000', 'Message-ID: <1@hz.test>'];
const FIVE_MB = ((): string[] => {
  const m = [...HEAD, 'MIME-Version: 1.0', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', ''];
  let n = 0;
  for (let i = 0; n < 5 * 1024 * 1024; i++) {
    const l = Buffer.from(`${i}`.repeat(57).slice(0, 57)).toString('base64');
    m.push(l);
    n += l.length + 2;
  }
  return m;
})();

const CASES: [string, string[]][] = [
  ['8-bit body and header', [...HEAD, 'X-Note: caf\xe9', '', 'na\xefve \xe9t\xe9 \x80\xff', '\xc3\xa9t\xc3\xa9 in UTF-8']],
  ['empty body', [...HEAD, '']],
  ['header only, no empty line', HEAD],
  ['body not ending in an empty line', [...HEAD, '', 'last line, no blank after']],
  ['trailing white space and blank lines', [...HEAD, '', 'a \t ', '  ', '', 'b\t', '', '', ' ', '']],
  ['lines starting with "."', [...HEAD, '', '.', '..', '.hidden', '...', '. ', 'x']],
  ['long folded headers', [...HEAD, 'References:', ...Array.from({ length: 80 }, (_, i) => ` <msg-${i}.with-a-long-id@hz.test>`), `X-Long: ${'w '.repeat(900)}`, '', 'x']],
  ['repeated headers', ['Received: one', ...HEAD, 'Subject: again', 'To: carol@other.example', 'Received: two', 'Cc: a@b', 'Cc: c@d', '', 'x']],
];

t.test('every case, both algorithms, all canonicalizations, both verifiers', async (t) => {
  for (const [alg, key, sel] of [['rsa-sha256', RSA, 'sel'], ['ed25519-sha256', ED, 'ed']] as const) {
    for (const c of ['simple/simple', 'simple/relaxed', 'relaxed/simple', 'relaxed/relaxed']) {
      const cfg = config(['-a', alg, '-k', key, '-s', sel, '-d', 'hz.test', '-c', c]);
      const d = new Driver([dkimsignFilter(cfg)]).handshake();
      await d.take();
      for (const [what, m] of CASES) {
        const o = await run(cfg, m, { d });
        t.equal(o.sigs.length, 1, `${alg} ${c} ${what}: one signature`);
        t.same(o.lines.slice(o.lines.length - m.length), m, `${alg} ${c} ${what}: message unchanged`);
        checkPass(t, await v.verify(wire(o.lines), KEYS), 1, `${alg} ${c} ${what}`);
      }
    }
  }
});

t.test('a 5 MB message, held in memory and spooled to disk', async (t) => {
  const cfg = config(['-K', keyTable(`hz.test sel ${RSA}\nhz.test ed ${ED}\n`), '-c', 'relaxed/relaxed']);
  for (const memoryLimit of [64 * 1024 * 1024, 1024 * 1024]) {
    const d = new Driver([dkimsignFilter(cfg)], { spool: { memoryLimit } }).handshake();
    await d.take();
    const o = await run(cfg, FIVE_MB, { d });
    t.equal(o.sigs.length, 2, `limit ${memoryLimit}: two signatures`);
    t.same(o.lines.slice(-FIVE_MB.length), FIVE_MB, `limit ${memoryLimit}: delivered unchanged`);
    checkPass(t, await v.verify(wire(o.lines), KEYS), 2, `limit ${memoryLimit}: RSA and Ed25519`);
  }
});

t.test('key table: From: domain exact, then parent; several keys; no key → unsigned', async (t) => {
  const table = keyTable([
    '# domain selector keyfile',
    `hz.test     sel  ${RSA}`,
    `hz.test     ed   ${ED}`,
    '',
    `other.example\trsa\t${RSA}   # trailing comment`,
    `sub.hz.test ed2 ${ED}`,
  ].join('\n'));
  const cfg = config(['-K', table, '-c', 'relaxed/relaxed']);
  t.same(cfg.domains, ['hz.test', 'other.example', 'sub.hz.test']);
  const d = new Driver([dkimsignFilter(cfg)]).handshake();
  await d.take();
  const cases: [string, string[], string[]][] = [
    ['exact', ['From: a@hz.test'], ['d=hz.test s=sel', 'd=hz.test s=ed']],
    ['parent', ['From: a@x.y.hz.test'], ['d=hz.test s=sel', 'd=hz.test s=ed']],
    ['deeper key wins', ['From: a@sub.hz.test'], ['d=sub.hz.test s=ed2']],
    ['case and comments', ['From: "A" <a@Other.Example> (work)'], ['d=other.example s=rsa']],
    ['trailing dot', ['From: a@other.example.'], ['d=other.example s=rsa']],
    ['first From: that has a key', ['From: x@nowhere.example', 'From: a@other.example'], ['d=other.example s=rsa']],
    ['no key', ['From: a@nowhere.example'], []],
    ['no From:', ['Subject: x'], []],
    ['group syntax', ['From: undisclosed:;'], []],
  ];
  for (const [what, head, want] of cases) {
    const m = [...head, 'To: b@other.example', '', 'x'];
    const o = await run(cfg, m, { d });
    const got = o.sigs.map((s) => `d=${/; d=([^;]*)/.exec(s)![1]} s=${/; s=([^;]*)/.exec(s)![1]}`);
    t.same(got, want, what);
    t.same(o.lines.slice(o.sigs.length ? o.lines.length - m.length : 0), m, `${what}: message unchanged`);
    t.equal(o.result, 'proceed', `${what}: proceed`);
    if (want.length > 0) checkPass(t, await v.verify(wire(o.lines), KEYS), want.length, what);
  }
  // -fallback: the first domain of the table signs what has no key (the C filter's way)
  const fb = config(['-K', table, '-fallback']);
  const o = await run(fb, ['From: a@nowhere.example', '', 'x']);
  t.same(o.sigs.map((s) => /; d=([^;]*)/.exec(s)![1]), ['hz.test', 'hz.test'], '-fallback: the first domain');
  checkPass(t, await v.verify(wire(o.lines), KEYS), 2, '-fallback');
});

t.test('-d: the first domain without a match (C), unsigned with -fallback=false', async (t) => {
  const base = ['-d', 'hz.test', '-d', 'other.example', '-s', 'sel', '-k', RSA];
  const c = config(base);
  t.equal(c.fallback, true);
  let o = await run(c, ['From: a@nowhere.example', '', 'x']);
  t.match(o.sigs[0], /d=hz\.test;/, 'first -d');
  o = await run(config([...base, '-fallback=false']), ['From: a@nowhere.example', '', 'x']);
  t.same(o.sigs, [], 'unsigned');
  t.same(o.lines, ['From: a@nowhere.example', '', 'x']);
  o = await run(config([...base, '-fallback=false']), ['From: a@mail.other.example', '', 'x']);
  t.match(o.sigs[0], /d=other\.example;/, 'parent match still signs');
  // the C filter's raw comparison: a comment after the domain matches no -d
  o = await run(config([...base, '-fallback=false']), ['From: a@other.example (x)', '', 'x']);
  t.same(o.sigs, [], 'raw From: domain with a comment: no match in -d mode');
});

t.test('-D file: domains one a line, comments, after -d', async (t) => {
  const f = keyTable('# signing domains\nother.example\n\n  sub.hz.test  \n');
  const c = config(['-d', 'hz.test', '-D', f, '-s', 'sel', '-k', RSA]);
  t.same(c.domains, ['hz.test', 'other.example', 'sub.hz.test']);
  const o = await run(c, ['From: a@x.sub.hz.test', '', 'x']);
  t.match(o.sigs[0], /d=sub\.hz\.test;/);
  checkPass(t, await v.verify(wire(o.lines), KEYS), 1, '-D');
});

t.test('-authOnly: authenticated and local sessions only', async (t) => {
  const c = config(['-d', 'hz.test', '-s', 'sel', '-k', RSA, '-authOnly']);
  const def = dkimsignFilter(c);
  t.ok(registrations([def]).includes('register|report|smtp-in|link-auth'), 'registers link-auth');
  t.ok(registrations([def]).includes('register|report|smtp-in|link-connect'), 'registers link-connect');
  t.notOk(registrations([dkimsignFilter(config(['-d', 'hz.test', '-s', 'sel', '-k', RSA]))]).includes('register|report|smtp-in|link-auth'), 'without -authOnly: no link-auth');
  const m = [...HEAD, '', 'x'];
  for (const version of ['0.6', '0.7'] as const) {
    const d = new Driver([def], { version }).handshake();
    await d.take();
    const auth = await run(c, m, { d, auth: 'alice' });
    t.equal(auth.sigs.length, 1, `${version}: authenticated: signed`);
    checkPass(t, await v.verify(wire(auth.lines), KEYS), 1, `${version}: authenticated`);
    const local = await run(c, m, { d, src: 'unix:/var/run/smtpd.sock' });
    t.equal(local.sigs.length, 1, `${version}: local: signed`);
    const anon = await run(c, m, { d });
    t.equal(anon.sigs.length, 0, `${version}: inbound: not signed`);
    t.same(anon.lines, m, `${version}: inbound: unchanged`);
  }
  // a failed AUTH is not an authenticated session
  const d = new Driver([def]).handshake();
  await d.take();
  const n = ++counter;
  const s = sid(n);
  d.send(d.b.linkConnect(s, 'c.example', 'pass', '192.0.2.9:1'), d.b.linkAuth(s, 'fail', 'mallory'), ...d.b.data(s, tok(n), 'From: a@hz.test\n\nx'));
  const out = await d.take(20);
  t.notOk(out.some((l) => l.includes('DKIM-Signature')), 'AUTH failed: not signed');
});

t.test('-oversign and (o)/(x) in -h', async (t) => {
  const c = config(['-d', 'hz.test', '-s', 'sel', '-k', RSA, '-c', 'relaxed/relaxed', '-oversign']);
  const m = ['From: a@hz.test', 'To: b@other.example', 'Subject: s', 'Date: x', '', 'body'];
  const o = await run(c, m);
  const h = /; h=([^;]*);/.exec(o.sigs[0]!)![1]!.replace(/\s/g, '');
  t.equal(h.split(':').filter((x) => x === 'from').length, 2, 'from twice');
  t.equal(h.split(':').filter((x) => x === 'reply-to').length, 1, 'reply-to once though absent');
  t.equal(h.split(':').filter((x) => x === 'date').length, 2, 'date present: twice');
  t.notOk(h.split(':').includes('message-id'), 'message-id absent: not listed');
  checkPass(t, await v.verify(wire(o.lines), KEYS), 1, '-oversign');
  const sigEnd = o.sigs.length ? o.lines.findIndex((l) => l === m[0]) : 0;
  const tampered = [...o.lines.slice(0, sigEnd), 'Reply-To: evil@evil.example', ...o.lines.slice(sigEnd)];
  const a = await v.verify(wire(tampered), KEYS);
  t.notOk(a.python.sigs[0]?.ok, 'a Reply-To added later breaks it');
  const added = [...o.lines.slice(0, sigEnd), 'Message-ID: <added@later>', ...o.lines.slice(sigEnd)];
  t.ok((await v.verify(wire(added), KEYS)).python.sigs[0]?.ok, 'a Message-ID added later (smtpd does) does not');
  const x = await run(config(['-d', 'hz.test', '-s', 'sel', '-k', RSA, '-h', '(o)from:(x)subject:(x)cc']), m);
  t.match(unfold(x.sigs), /; h=subject:from:from:subject;/, '-h with (o)/(x): signed bottom-up, then one more of each');
  checkPass(t, await v.verify(wire(x.lines), KEYS), 1, '-h (o)(x)');
});

t.test('long lines: hashed as smtpd < 7.4 cuts them, whole on 0.7', async (t) => {
  const c = config(['-d', 'hz.test', '-s', 'sel', '-k', RSA, '-c', 'relaxed/relaxed']);
  const m = [...HEAD, `X-Long-Field: ${'h'.repeat(2500)}`, '', 'short', 'b'.repeat(4000), `.${'d'.repeat(3000)}`, 'end'];
  const cut = (lines: string[]): string[] =>
    lines.map((l) => {
      const s = (l.startsWith('.') ? `.${l}` : l).slice(0, 1997);
      return s.startsWith('.') ? s.slice(1) : s;
    });
  const o6 = await run(c, m, { version: '0.6' });
  checkPass(t, await v.verify(wire(cut(o6.lines)), KEYS), 1, '0.6: the message as smtpd 6.8 delivers it');
  t.ok(o6.lines.slice(0, o6.sigs.length).every((l) => l.length < 1997), '0.6: signature lines fit');
  const o7 = await run(c, m, { version: '0.7' });
  checkPass(t, await v.verify(wire(o7.lines), KEYS), 1, '0.7: the whole message');
  t.notOk((await v.verify(wire(cut(o7.lines)), KEYS)).python.sigs[0]?.ok, '0.7 signature is of the uncut lines');
  // every line we add stays under 2048 bytes on the wire, even -zz of a large header
  const z = config(['-d', 'hz.test', '-s', 'sel', '-k', RSA, '-zz']);
  const big = await run(z, [...HEAD, `X-Big: ${'q;= '.repeat(1500)}`, '', 'x'], { version: '0.6' });
  const answers = big.lines.slice(0, big.lines.length - HEAD.length - 3).map((l) => `filter-dataline|${sid(1)}|${tok(1)}|${l}`);
  t.ok(answers.every((l) => l.length < 2048), `-zz: ${answers.length} added lines, longest ${Math.max(...answers.map((l) => l.length))} bytes with the prefix`);
  t.ok((await v.verify(wire(big.lines), KEYS)).python.sigs[0]?.ok, '-zz verifies');
});

t.test('error policy: 421 at commit (default) or pass unsigned', async (t) => {
  // a public key passes the type checks but cannot sign: an internal error at the end
  const good = config(['-d', 'hz.test', '-s', 'sel', '-k', RSA]);
  const broken = (onError: 'tempfail' | 'pass'): DkimsignConfig => ({
    ...good,
    onError,
    keys: good.keys.map((k) => ({ ...k, key: createPublicKey(k.key) })),
  });
  const m = [...HEAD, '', 'x'];
  t.equal(good.onError, 'tempfail', 'the default');
  const d = new Driver([dkimsignFilter(broken('tempfail'))]).handshake();
  await d.take();
  let o = await transact(d, m);
  t.same(o.lines, m, 'tempfail: message passed back unchanged (smtpd drops it)');
  t.match(o.result, /^disconnect\|421 /, `tempfail: ${o.result}`);
  o = await transact(d, m);
  t.match(o.result, /^disconnect\|421 /, 'again for the next message');
  t.ok(registrations([dkimsignFilter(good)]).includes('register|filter|smtp-in|commit'), 'tempfail registers commit');
  const p = new Driver([dkimsignFilter(broken('pass'))]).handshake();
  await p.take();
  o = await transact(p, m);
  t.same(o.lines, m, 'pass: unsigned');
  t.equal(o.result, 'proceed', 'pass: proceed');
  t.notOk(registrations([dkimsignFilter(broken('pass'))]).includes('register|filter|smtp-in|commit'), 'pass: no commit phase');
  // the next message of a failing session is not refused for the previous one's failure
  const mixed = new Driver([dkimsignFilter(broken('tempfail'))]).handshake();
  await mixed.take();
  const n = ++counter;
  const s = sid(n);
  const b = mixed.b;
  mixed.send(b.linkConnect(s, 'c', 'pass', '192.0.2.1:1'), ...b.data(s, tok(n), 'From: a@hz.test\n\nx'));
  await mixed.settle(10);
  mixed.send(b.request(s, 'commit', tok(n + 1)), b.report(s, 'tx-rollback', 'm'), b.request(s, 'commit', tok(n + 2)));
  const out = await mixed.take(10);
  t.match(out.find((l) => l.includes(tok(n + 1)) && l.startsWith('filter-result')), /disconnect\|421/);
  t.match(out.find((l) => l.includes(tok(n + 2)) && l.startsWith('filter-result')), /proceed$/, 'a later commit proceeds');
});

t.test('interleaved sessions, several messages per session, rollback mid-message', async (t) => {
  const c = config(['-K', keyTable(`hz.test sel ${RSA}\nother.example ed ${ED}\n`), '-c', 'relaxed/relaxed']);
  const d = new Driver([dkimsignFilter(c)]).handshake();
  await d.take();
  const b = d.b;
  const S = [sid(900001), sid(900002), sid(900003)];
  const msgs = (i: number, k: number): string[] => [`From: u${i}@${i % 2 ? 'other.example' : 'hz.test'}`, `Subject: m${k}`, '', `body ${i} ${k}`, '.dot'];
  for (const s of S) d.send(b.linkConnect(s, 'c', 'pass', '192.0.2.2:2'), b.report(s, 'tx-begin', 'aa'));
  // session 0 starts a message and rolls it back
  d.send(b.request(S[0]!, 'data-line', tok(1), 'From: x@hz.test'), b.request(S[0]!, 'data-line', tok(1), 'Subject: half'));
  d.send(b.report(S[0]!, 'tx-rollback', 'aa'));
  // then all three send two messages, their lines interleaved
  for (let k = 0; k < 2; k++) {
    const lines = S.map((_, i) => msgs(i, k));
    for (let j = 0; j < lines[0]!.length; j++) {
      S.forEach((s, i) => d.send(b.request(s, 'data-line', tok(10 * k + i + 2), lines[i]![j]!.startsWith('.') ? `.${lines[i]![j]}` : lines[i]![j]!)));
    }
    S.forEach((s, i) => d.send(b.request(s, 'data-line', tok(10 * k + i + 2), '.')));
  }
  const out = await d.take(50);
  for (let k = 0; k < 2; k++) {
    for (const [i, s] of S.entries()) {
      const head = b.dataline(s, tok(10 * k + i + 2), '');
      const lines = out.filter((l) => l.startsWith(head)).map((l) => l.slice(head.length)).filter((l) => l !== '.').map((l) => (l.startsWith('.') ? l.slice(1) : l));
      t.same(lines.slice(-msgs(i, k).length), msgs(i, k), `session ${i} message ${k}: unchanged`);
      t.equal(signatures(lines).length, 1, `session ${i} message ${k}: one signature`);
      checkPass(t, await v.verify(wire(lines), KEYS), 1, `session ${i} message ${k}`);
    }
  }
  t.notOk(out.some((l) => l.includes('Subject: half')), 'the rolled-back lines are never sent');
});
