// Differential test against the installed C filter-dkimsign (Debian 0.5), driven over its
// protocol as smtpd 6.8 drives it: for the same key, flags and message our DKIM-Signature lines
// must be byte-identical to its answer, except the listed cases where its signature does not
// verify (or it dies), where ours must verify instead. Both outputs go through python3-dkim and
// Mail::DKIM.

import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { loadPrivateKey, type Algorithm } from '../lib/dkim/keys.js';
import { publicKeyRecord } from '../lib/dkim/record.js';
import { DkimSigner, type SignatureSpec, type SignerOptions } from '../lib/dkim/signer.js';
import { CFilter, haveCFilter, type CResult } from './fixtures/dkim/cfilter.js';
import { FROM_FORMS, generateMessage, rng } from './fixtures/dkim/corpus.js';
import { Verifiers, wire, type VerifyAnswer } from './fixtures/dkim/verifiers.js';

const skip = haveCFilter() ? false : 'filter-dkimsign is not installed (Debian opensmtpd-filter-dkimsign)';

const fixture = (p: string): string => fileURLToPath(new URL(`fixtures/dkim/${p}`, import.meta.url));
const KEYFILE: Record<Algorithm, string> = { 'rsa-sha256': fixture('rsa2048.key'), 'ed25519-sha256': fixture('ed25519.key') };
const KEY = {
  'rsa-sha256': loadPrivateKey(KEYFILE['rsa-sha256'], 'rsa-sha256').key,
  'ed25519-sha256': loadPrivateKey(KEYFILE['ed25519-sha256'], 'ed25519-sha256').key,
};
// DNS labels stop at 63 bytes; d= still makes a line longer than 78 columns without checkpoints
const LONG_SELECTOR = 'x'.repeat(63);
const LONG_DOMAIN = `${'a'.repeat(63)}.${'b'.repeat(30)}.hz.test`;
const DOMAINS = ['hz.test', 'other.example', 'sub.hz.test', 'nomatch.example', 'fallback.invalid',
  'deep.sub.other.example', 'HZ.Test', LONG_DOMAIN];
const SELECTORS = ['sel', 'ed', LONG_SELECTOR];
const KEYS: Record<string, string> = {};
for (const d of DOMAINS) {
  for (const s of SELECTORS) KEYS[`${s}._domainkey.${d.toLowerCase()}`] = publicKeyRecord(s === 'ed' ? KEY['ed25519-sha256'] : KEY['rsa-sha256']);
}

let v: Verifiers;
t.before(() => {
  if (!skip) v = new Verifiers();
});
t.teardown(() => v?.close());

/** The C filter's flags for one configuration, and the same as a SignatureSpec. */
interface Config {
  flags: string[];
  spec: Omit<SignatureSpec, 'key'>;
}

function config(flags: string[]): Config {
  const get = (f: string): string | undefined => {
    const i = flags.lastIndexOf(f);
    return i >= 0 ? flags[i + 1] : undefined;
  };
  const algorithm = (get('-a') ?? 'rsa-sha256') as Algorithm;
  const domains = flags.flatMap((f, i) => (f === '-d' ? [flags[i + 1]!] : []));
  return {
    flags,
    spec: {
      algorithm,
      selector: get('-s')!,
      domains,
      canonicalization: get('-c'),
      headers: get('-h'),
      timestamp: flags.includes('-t'),
      expire: get('-x') === undefined ? undefined : BigInt(get('-x')!),
      copyHeaders: flags.filter((f) => f === '-z').length as 0 | 1 | 2,
    },
  };
}

function unfold(sig: readonly string[]): string {
  return sig.reduce((acc, l, i) => (i === 0 ? l : acc + (acc.endsWith(';') ? ' ' : '') + l.slice(1)), '');
}

function ours(c: Config, message: readonly string[], now?: number, opts: SignerOptions = {}): string[] {
  const s = new DkimSigner([{ ...c.spec, key: KEY[c.spec.algorithm!] }], opts);
  for (const l of message) s.line(l);
  return s.finish(now);
}

/** The signing time the C filter used (for -t / -x), so ours can use the same. */
function cTime(r: CResult, c: Config): number | undefined {
  const m = /t=(\d+);/.exec(unfold(r.signature));
  if (m) return Number(m[1]);
  const x = /x=(\d+);/.exec(unfold(r.signature));
  return x && c.spec.expire !== undefined ? Number(BigInt(x[1]!) - BigInt(c.spec.expire)) : undefined;
}

/** Whether the topmost signature (the one just added; the message may carry others) passes. */
const passes = (a: VerifyAnswer, alg: Algorithm): { python: boolean; perl: boolean } => ({
  python: a.sigs[0]?.ok === true,
  perl: alg === 'ed25519-sha256' || a.sigs[0]?.ok === true,
});

/** Whether python3-dkim can parse the header (its rfc822_parse): no white space before a
 * colon, no line without a colon, no continuation line first. Otherwise it errors or drops
 * fields, whoever signed. */
function pythonParses(m: readonly string[]): boolean {
  for (const [i, l] of m.entries()) {
    if (l === '') return true;
    if (l.startsWith(' ') || l.startsWith('\t')) {
      if (i === 0) return false;
    } else if (!/^[\x21-\x7e]+?:/.test(l) || l.startsWith('From ')) {
      return false;
    }
  }
  return true;
}

/** python3-dkim blanks every "b=" that follows ";" or white space (its RE_BTAG), not only the
 * b= tag: a z= value folded just before a "b=XX" escape then fails there, ours and the C
 * filter's alike (Mail::DKIM passes them). */
const dkimpyBtagConfusion = (sig: readonly string[]): boolean => (sig.join('\r\n').match(/[;\s]b\s*=/g) ?? []).length > 1;

/** libopensmtpd's iobuf_getline drops a CR before the LF, so a data-line ending in a bare CR
 * (the client sent CR CR LF) reaches the C filter, and leaves it, without that CR. */
const cView = (m: readonly string[]): string[] => m.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
const hasFrom = (m: readonly string[]): boolean => m.some((l) => /^from[ \t]*:/i.test(l));

async function compare(t: Test, f: CFilter, c: Config, message: string[], what: string): Promise<void> {
  const r = await f.sign(message);
  t.equal(r.result, 'proceed', `${what}: C commit`);
  const now = cTime(r, c);
  const sig = ours(c, message, now);
  const alg = c.spec.algorithm!;
  const mine = await v.verify(wire([...sig, ...message]), KEYS);
  const pyOk = passes(mine.python, alg).python || !pythonParses(message) || dkimpyBtagConfusion(sig);
  t.ok(pyOk, `${what}: ours passes python3-dkim ${mine.python.sigs[0]?.err ?? mine.python.err ?? ''}`);
  t.ok(passes(mine.perl, alg).perl, `${what}: ours passes Mail::DKIM ${mine.perl.sigs[0]?.err ?? ''}`);
  if (hasFrom(message)) {
    t.same(ours(c, cView(message), now), r.signature, `${what}: byte-identical to the C filter`);
  } else {
    // deviation 3: the C filter leaves "from" out of h= when there is no From:
    t.notMatch(unfold(r.signature), /h=([a-z-]+:)*from[;:]/, `${what}: C h= lacks from`);
    t.match(unfold(sig), /h=([a-z-]+:)*from;/, `${what}: ours lists from`);
  }
}

const CONFIGS: string[][] = [
  [],
  ['-c', 'relaxed'],
  ['-c', 'relaxed/relaxed'],
  ['-c', 'simple/relaxed'],
  ['-c', 'relaxed/simple'],
  ['-c', 'simple'],
  ['-h', 'from:to:subject:date:message-id:received:x-long:dkim-signature'],
  ['-h', 'FROM:Subject:To:CC', '-c', 'relaxed/relaxed'],
  ['-z', '-c', 'relaxed/relaxed'],
  ['-z', '-z'],
  ['-d', 'hz.test', '-d', 'other.example', '-d', 'sub.hz.test', '-d', 'deep.sub.other.example'],
  ['-a', 'ed25519-sha256', '-c', 'relaxed/relaxed'],
  ['-a', 'ed25519-sha256', '-d', 'fallback.invalid', '-d', 'other.example'],
  ['-t', '-x', '3600', '-c', 'relaxed/simple'],
  ['-x', '86400'],
  ['-s', LONG_SELECTOR, '-d', LONG_DOMAIN, '-c', 'relaxed/relaxed'],
  ['-s', LONG_SELECTOR, '-d', 'fallback.invalid', '-d', LONG_DOMAIN],
  ['-d', 'HZ.Test', '-c', 'relaxed'],
];
const PER_CONFIG = Number(process.env.DKIM_DIFF_N ?? 40);

t.test('random corpus: byte-identical signatures, verified', { skip }, async (t) => {
  for (const [i, extra] of CONFIGS.entries()) {
    const ed = extra.includes('ed25519-sha256');
    const flags = [...(extra.includes('-d') ? [] : ['-d', 'hz.test']), ...(extra.includes('-s') ? [] : ['-s', ed ? 'ed' : 'sel']), ...extra];
    const c = config(flags);
    const f = await CFilter.start([...flags, '-k', KEYFILE[c.spec.algorithm!]]);
    const r = rng(7000 + i);
    for (let n = 0; n < PER_CONFIG; n++) {
      // -z needs the empty line after the header (deviation 4); bare CRs in headers are tested below
      const canon = c.spec.canonicalization as string | undefined;
      const message = generateMessage(r, { alwaysBlank: c.spec.copyHeaders! > 0, crInHeaders: !canon?.startsWith('relaxed') });
      await compare(t, f, c, message, `${flags.join(' ')} #${n}`);
    }
    await f.close();
    t.equal(f.exited, 0, `${flags.join(' ')}: the C filter ended normally`);
  }
});

t.test('From: forms choose the same domain', { skip }, async (t) => {
  const extraForms = [
    'Alice <a@hz.test> (comment)', '"Alice" <a@other.example>', ',,a@sub.hz.test', '(nested (comment)) a@hz.test',
    'a(c)@other.example', 'a@(c)hz.test', 'a@other.example(c)', '"unterminated <a@hz.test>', 'Alice <a@hz.test',
    'a@@hz.test', 'a.@other.example', 'a..b@other.example', '"a"."b"@other.example', 'Group: Alice <a@hz.test>;',
    'a@other.example.', 'a@.hz.test', '\t a@other.example', 'a@sub\r\n .hz.test', '"Alice\r\n Smith" <a@other.example>',
    'a@[IPv6:::1]', 'Caf\xe9 <a@hz.test>', 'a@sub.hz.test (x(y)z)', 'Alice <"a b"@other.example>',
    'Alice <a@other.example>;', 'Mailer-Daemon <>', '<>', 'Alice <a@ [192.0.2.1] >', 'a@deep.sub.other.example',
    'A\\B <a@other.example>', 'a@Sub.HZ.Test', 'x@nomatch.example, a@hz.test',
  ];
  for (const canon of ['simple', 'relaxed']) {
    const flags = ['-d', 'fallback.invalid', '-d', 'hz.test', '-d', 'other.example', '-d', 'sub.hz.test', '-s', 'sel', '-c', canon];
    const c = config(flags);
    const f = await CFilter.start([...flags, '-k', KEYFILE['rsa-sha256']]);
    for (const form of [...FROM_FORMS, ...extraForms]) {
      const from = `From: ${form}`.split('\r\n');
      await compare(t, f, c, [...from, 'Subject: s', '', 'x'], `${canon} From: ${JSON.stringify(form)}`);
      await compare(t, f, c, ['From: a@nomatch.example', ...from, '', 'x'], `${canon} second From: ${JSON.stringify(form)}`);
    }
    await f.close();
  }
});

t.test('folding and copying edge cases', { skip }, async (t) => {
  const many = ['From: a@hz.test'];
  for (let i = 0; i < 60; i++) many.push(`Received: r${i}`);
  const longName = 'X-A-Very-Long-Header-Name-That-Goes-On-And-On-And-On-And-On-Forever-And-Ever';
  const cases: [string[], string[]][] = [
    [['-h', 'from:received', '-c', 'relaxed'], [...many, '', 'b']],
    [['-h', `from:${longName.toLowerCase()}`], [`${longName}: 1`, 'From: a@hz.test', '', 'b']],
    [['-z', '-z'], ['\torphan', 'garbage line', '\tcont', 'From: a@hz.test', 'X: \xe9|;= \x7f\r', '.dotted: header', '', 'b']],
    [['-z'], [`From: ${'"very long display name" '.repeat(20)}<a@hz.test>`, `Subject: ${'; '.repeat(200)}`, '', 'b']],
    [['-c', 'relaxed/relaxed'], ['From: a@hz.test', `Subject: ${'word '.repeat(3000)}`, '', `${' \t'.repeat(5000)}x`]],
    [[], ['From: a@hz.test', '', '.', '..', '...', '. ', '']],
  ];
  for (const [extra, message] of cases) {
    const flags = ['-d', 'hz.test', '-s', 'sel', ...extra];
    const f = await CFilter.start([...flags, '-k', KEYFILE['rsa-sha256']]);
    await compare(t, f, config(flags), message, flags.join(' '));
    await f.close();
  }
});

/** Run one message through a fresh C filter; null when the filter died. */
async function cOnce(flags: string[], message: string[]): Promise<{ r: CResult | null; f: CFilter }> {
  const f = await CFilter.start([...flags, '-k', KEYFILE[config(flags).spec.algorithm!]]);
  try {
    const r = await f.sign(message);
    await f.close();
    return { r, f };
  } catch {
    await f.close();
    return { r: null, f };
  }
}

t.test('where the C filter fails, ours verifies', { skip }, async (t) => {
  const base = ['-d', 'hz.test', '-s', 'sel'];
  const head = ['From: a@hz.test', 'To: b@other.example', 'Subject: s'];

  await t.test('1. lines longer than 1997 bytes, cut by smtpd < 7.4', async (t) => {
    const message = [...head, `X-Long: ${'h'.repeat(2100)}`, '', 'short', 'b'.repeat(3000), `.${'d'.repeat(2500)}`];
    // what smtpd 6.8 keeps of each answer line: 2047 bytes, 1997 after "filter-dataline|sid|tok|"
    const deliver = (lines: string[]): string[] => lines.map((l) => {
      const cut = (l.startsWith('.') ? `.${l}` : l).slice(0, 1997);
      return cut.startsWith('.') ? cut.slice(1) : cut;
    });
    for (const flags of [[...base], [...base, '-c', 'relaxed/relaxed', '-h', 'from:x-long']]) {
      const { r } = await cOnce(flags, message);
      const cv = await v.verify(wire(deliver(r!.lines)), KEYS);
      t.notOk(passes(cv.python, 'rsa-sha256').python, `${flags.join(' ')}: C signature fails python3-dkim`);
      t.notOk(passes(cv.perl, 'rsa-sha256').perl, `${flags.join(' ')}: C signature fails Mail::DKIM`);
      const c = config(flags);
      t.same(ours(c, message), r!.signature, 'without maxLineBytes we hash what the C filter hashes');
      const sig = ours(c, message, undefined, { maxLineBytes: 1997 });
      const ov = await v.verify(wire(deliver([...sig, ...message])), KEYS);
      t.ok(passes(ov.python, 'rsa-sha256').python && passes(ov.perl, 'rsa-sha256').perl, 'ours with maxLineBytes 1997 passes both');
    }
  });

  await t.test('2. bare CR in a header with -c relaxed', async (t) => {
    const message = ['From: a@hz.test', 'Subject: a\rb', '', 'x'];
    const flags = [...base, '-c', 'relaxed'];
    const { r } = await cOnce(flags, message);
    const cv = await v.verify(wire(r!.lines), KEYS);
    t.notOk(passes(cv.python, 'rsa-sha256').python, 'C signature fails python3-dkim');
    t.notOk(passes(cv.perl, 'rsa-sha256').perl, 'C signature fails Mail::DKIM');
    const sig = ours(config(flags), message);
    const ov = await v.verify(wire([...sig, ...message]), KEYS);
    t.ok(passes(ov.python, 'rsa-sha256').python && passes(ov.perl, 'rsa-sha256').perl, 'ours passes both');
    t.equal(unfold(sig).replace(/b=.*/, ''), unfold(r!.signature).replace(/b=.*/, ''), 'same tags, only b= differs');
  });

  await t.test('3. no From: h= without from (RFC 6376 §5.4 MUST, §6.1.1 PERMFAIL)', async (t) => {
    for (const message of [['To: b@other.example', 'Subject: s', '', 'x'], ['', 'x'], []]) {
      const { r } = await cOnce(base, message);
      t.notMatch(unfold(r!.signature), /from/, `C: ${unfold(r!.signature).match(/h=[^;]*/)![0]}`);
      const cv = await v.verify(wire(r!.lines), KEYS);
      // these two verifiers do not enforce §6.1.1, so the C signature "passes" them, and anyone
      // can add a From: to the message without breaking it
      const forged = await v.verify(wire([...r!.signature, 'From: evil@evil.example', ...message]), KEYS);
      t.ok(passes(cv.python, 'rsa-sha256').python && passes(forged.python, 'rsa-sha256').python, 'C: a From added later still passes python3-dkim');
      const sig = ours(config(base), message);
      t.match(unfold(sig), /h=([a-z]+:)*from;/);
      const ov = await v.verify(wire([...sig, ...message]), KEYS);
      t.ok(passes(ov.python, 'rsa-sha256').python && passes(ov.perl, 'rsa-sha256').perl, 'ours passes both');
      const of = await v.verify(wire([...sig, 'From: evil@evil.example', ...message]), KEYS);
      t.notOk(passes(of.python, 'rsa-sha256').python, 'ours: a From added later fails');
    }
  });

  await t.test('4. -z on a message without an empty line after the header', async (t) => {
    const flags = [...base, '-z'];
    const { r } = await cOnce(flags, head);
    t.match(unfold(r!.signature), /=0D=0Abh=/, 'C: z= runs into bh=');
    const cv = await v.verify(wire(r!.lines), KEYS);
    t.notOk(passes(cv.python, 'rsa-sha256').python, 'C signature fails python3-dkim (no bh=)');
    const sig = ours(config(flags), head);
    t.match(unfold(sig), /=0D=0A; bh=/);
    const ov = await v.verify(wire([...sig, ...head]), KEYS);
    t.ok(passes(ov.python, 'rsa-sha256').python && passes(ov.perl, 'rsa-sha256').perl, 'ours passes both');
  });

  await t.test('5. -x overflowing 2^63: the C filter writes a negative x=', async (t) => {
    const flags = [...base, '-x', '9223372036854775807'];
    const message = [...head, '', 'x'];
    const { r } = await cOnce(flags, message);
    t.match(unfold(r!.signature), /x=-\d+;/, 'C: negative x=');
    const cv = await v.verify(wire(r!.lines), KEYS);
    t.notOk(passes(cv.python, 'rsa-sha256').python, 'C signature fails python3-dkim');
    t.notOk(passes(cv.perl, 'rsa-sha256').perl, 'C signature fails Mail::DKIM');
    const sig = ours(config(flags), message);
    t.match(unfold(sig), /x=9223372036854775807;/);
    const ov = await v.verify(wire([...sig, ...message]), KEYS);
    t.ok(passes(ov.python, 'rsa-sha256').python && passes(ov.perl, 'rsa-sha256').perl, 'ours passes both');
  });

  await t.test('6. -c relaxed, empty first line and a white-space continuation: C exits', async (t) => {
    const message = ['From: a@hz.test', 'Subject:', '\t\t', '', 'x'];
    const flags = [...base, '-c', 'relaxed'];
    const { r, f } = await cOnce(flags, message);
    t.equal(r, null, 'no answer');
    t.equal(f.exited, 1, 'exit 1');
    t.match(f.stderr, /Missized header/);
    const sig = ours(config(flags), message);
    const ov = await v.verify(wire([...sig, ...message]), KEYS);
    t.ok(passes(ov.python, 'rsa-sha256').python && passes(ov.perl, 'rsa-sha256').perl, 'ours passes both');
  });

  await t.test('8. a line ending in a bare CR: the C filter drops that CR (not a failure)', async (t) => {
    const message = ['From: a@hz.test', 'Subject: s\r', '', 'ends in CR\r', 'x'];
    const { r } = await cOnce(base, message);
    t.same(r!.lines.slice(r!.signature.length), cView(message), 'C output lacks the CRs');
    const cv = await v.verify(wire(r!.lines), KEYS);
    t.ok(passes(cv.python, 'rsa-sha256').python && passes(cv.perl, 'rsa-sha256').perl, 'C signature of its altered message passes');
    const sig = ours(config(base), message);
    const ov = await v.verify(wire([...sig, ...message]), KEYS);
    t.ok(passes(ov.python, 'rsa-sha256').python && passes(ov.perl, 'rsa-sha256').perl, 'ours of the unaltered message passes');
  });

  await t.test('7. From: with an obs-route: C crashes', async (t) => {
    const message = ['From: Alice <@relay.example:a@hz.test>', '', 'x'];
    const { r, f } = await cOnce(base, message);
    t.equal(r, null, 'no answer');
    t.equal(f.exited, 'SIGSEGV');
    const sig = ours(config(base), message);
    t.match(unfold(sig), /d=hz.test;/, 'first -d');
    const ov = await v.verify(wire([...sig, ...message]), KEYS);
    t.ok(passes(ov.python, 'rsa-sha256').python, 'ours passes python3-dkim');
  });
});
