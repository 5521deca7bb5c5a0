// Differential test of the executables: Debian's C filter-dkimsign and our filter-dkimsign
// (dist/filters/dkimsign/main.js), started with the same flags, fed the same message over the
// protocol as smtpd 6.8 feeds them: every data-line we answer must be byte-identical to its
// (signature and message), except where the C filter's signature fails (signer.ts lists them;
// those are checked in test/dkim-cfilter.test.ts and below). Our signatures go through
// python3-dkim and Mail::DKIM.

import t, { type Test } from 'tap';
import { CFilter, haveCFilter } from './fixtures/dkim/cfilter.js';
import { FROM_FORMS, generateMessage, rng } from './fixtures/dkim/corpus.js';
import { Verifiers, wire, type VerifyAnswer } from './fixtures/dkim/verifiers.js';
import { cView, dkimpyBtagConfusion, hasFrom, OURS, privateKeys, pythonParses, records, unfold } from './fixtures/dkimsign/common.js';

const skip = haveCFilter() ? false : 'filter-dkimsign is not installed (Debian opensmtpd-filter-dkimsign)';

const KEYFILE = privateKeys();
const LONG_SELECTOR = 'x'.repeat(63);
const LONG_DOMAIN = `${'a'.repeat(63)}.${'b'.repeat(30)}.hz.test`;
const DOMAINS = ['hz.test', 'other.example', 'sub.hz.test', 'nomatch.example', 'fallback.invalid', 'deep.sub.other.example', 'HZ.Test', LONG_DOMAIN];
const KEYS = records(DOMAINS, ['sel', 'ed', LONG_SELECTOR]);

let v: Verifiers;
t.before(() => {
  if (!skip) v = new Verifiers();
});
t.teardown(() => v?.close());

const isEd = (flags: readonly string[]): boolean => flags.some((f) => f.includes('ed25519'));
const top = (a: VerifyAnswer): boolean => a.sigs[0]?.ok === true;

/** Both filters on one message; ours must answer what the C filter answers. */
async function compare(t: Test, c: CFilter, ours: CFilter, flags: readonly string[], message: string[], what: string): Promise<void> {
  const cr = await c.sign(message);
  // the C filter reads a line ending in a bare CR without it (libopensmtpd): feed ours what it read
  const or = await ours.sign(cView(message));
  t.equal(or.result, 'proceed', `${what}: commit`);
  const timed = signsTime(flags);
  if (hasFrom(message) && !timed) {
    t.same(or.lines, cr.lines, `${what}: data-lines byte-identical`);
  } else if (hasFrom(message)) {
    // -t/-x: the same but for t=, x= and b= (the two filters sign at different instants)
    const mask = (l: string[]): string => unfold(l).replace(/\b([tx])=\d+;/g, '$1=N;').replace(/b=[A-Za-z0-9+/=\s]+$/, 'b=');
    t.equal(mask(or.signature), mask(cr.signature), `${what}: same tags but t=, x=, b=`);
    t.same(or.lines.slice(or.signature.length), cr.lines.slice(cr.signature.length), `${what}: same message`);
  } else {
    // signer.ts case 3: no From: the C filter leaves "from" out of h=, we list it
    t.match(unfold(or.signature), /h=([a-z-]+:)*from;/, `${what}: h= lists from`);
  }
  const answer = await v.verify(wire(or.lines), KEYS);
  const pyOk = top(answer.python) || !pythonParses(message) || dkimpyBtagConfusion(or.signature);
  t.ok(pyOk, `${what}: python3-dkim ${answer.python.sigs[0]?.err ?? answer.python.err ?? ''}`);
  t.ok(isEd(flags) || top(answer.perl), `${what}: Mail::DKIM ${answer.perl.sigs[0]?.err ?? ''}`);
}

/**
 * Whether the flags ask for t= or x= (getopt forms too: "-tz" clusters -t with -z,
 * "-x86400" attaches the value). The two filters then sign at different instants and can
 * fall on different seconds. Only -t and -z take no value; any other letter takes the rest
 * of its argument (or the next one) as its value, so "-hfrom:subject:to" is not -t.
 */
function signsTime(flags: readonly string[]): boolean {
  for (let i = 0; i < flags.length; i++) {
    const f = flags[i]!;
    if (!f.startsWith('-') || f === '-' || f.startsWith('--')) continue;
    for (let k = 1; k < f.length; k++) {
      const ch = f[k]!;
      if (ch === 't') return true;
      if (ch === 'z') continue;
      if (ch === 'x') return true;
      if (k === f.length - 1) i++; // the value is the next argument
      break;
    }
  }
  return false;
}

async function pair(flags: string[]): Promise<{ c: CFilter; ours: CFilter }> {
  const key = ['-k', KEYFILE[isEd(flags) ? 'ed25519-sha256' : 'rsa-sha256']];
  const [c, ours] = await Promise.all([CFilter.start([...flags, ...key]), CFilter.start([...flags, ...key, '-loglevel', 'warn'], OURS)]);
  return { c, ours };
}

const CONFIGS: string[][] = [
  [],
  ['-c', 'relaxed'],
  ['-c', 'relaxed/relaxed'],
  ['-c', 'simple/relaxed'],
  ['-c', 'relaxed/simple'],
  ['-h', 'from:to:subject:date:message-id:received:x-long:dkim-signature'],
  ['-h', 'FROM:Subject:To:CC', '-c', 'relaxed/relaxed'],
  ['-z', '-c', 'relaxed/relaxed'],
  ['-zz'],
  ['-d', 'hz.test', '-d', 'other.example', '-d', 'sub.hz.test', '-d', 'deep.sub.other.example'],
  ['-a', 'ed25519-sha256', '-c', 'relaxed/relaxed'],
  ['-a', 'ed25519-sha256', '-d', 'fallback.invalid', '-d', 'other.example'],
  ['-t', '-x', '3600', '-c', 'relaxed/simple'],
  ['-tz', '-x86400'],
  ['-s', LONG_SELECTOR, '-d', LONG_DOMAIN, '-c', 'relaxed/relaxed'],
  ['-d', 'HZ.Test', '-c', 'relaxed'],
  // getopt forms: value attached, clusters
  ['-dother.example', '-dhz.test', '-ssel', '-crelaxed/relaxed', '-hfrom:subject:to'],
];
const PER_CONFIG = Number(process.env.DKIM_DIFF_N ?? 25);

t.test('random corpus through both executables', { skip }, async (t) => {
  for (const [i, extra] of CONFIGS.entries()) {
    const ed = isEd(extra);
    const hasD = extra.some((f) => f.startsWith('-d'));
    const hasS = extra.some((f) => f.startsWith('-s'));
    const flags = [...(hasD ? [] : ['-d', 'hz.test']), ...(hasS ? [] : ['-s', ed ? 'ed' : 'sel']), ...extra];
    const { c, ours } = await pair(flags);
    const r = rng(9100 + i);
    const canon = flags.find((f) => f.startsWith('-c'))?.replace(/^-c/, '') || flags[flags.indexOf('-c') + 1];
    const z = flags.some((f) => /^-t?z/.test(f));
    for (let n = 0; n < PER_CONFIG; n++) {
      // signer.ts cases 2 and 4 are where the outputs differ on purpose: not generated here
      const message = generateMessage(r, { alwaysBlank: z, crInHeaders: !canon?.startsWith('relaxed') });
      await compare(t, c, ours, flags, message, `${flags.join(' ')} #${n}`);
    }
    await Promise.all([c.close(), ours.close()]);
    t.equal(ours.exited, 0, `${flags.join(' ')}: ours ended normally`);
    t.equal(c.exited, 0, `${flags.join(' ')}: C ended normally`);
  }
});

t.test('From: forms choose the same domain', { skip }, async (t) => {
  for (const canon of ['simple', 'relaxed']) {
    const flags = ['-d', 'fallback.invalid', '-d', 'hz.test', '-d', 'other.example', '-d', 'sub.hz.test', '-s', 'sel', '-c', canon];
    const { c, ours } = await pair(flags);
    for (const form of FROM_FORMS) {
      const from = `From: ${form}`.split('\r\n');
      await compare(t, c, ours, flags, [...from, 'Subject: s', '', 'x'], `${canon} From: ${JSON.stringify(form)}`);
      await compare(t, c, ours, flags, ['From: a@nomatch.example', ...from, '', 'x'], `${canon} second From: ${JSON.stringify(form)}`);
    }
    await Promise.all([c.close(), ours.close()]);
  }
});

t.test('dot lines, empty and blank bodies, header-only, 8-bit, long folded headers', { skip }, async (t) => {
  const head = ['From: Alice <a@hz.test>', 'To: b@other.example', 'Subject: s'];
  const messages: [string, string[]][] = [
    ['dots', [...head, '', '.', '..', '...', '. ', '.x', '']],
    ['empty body', [...head, '']],
    ['no body at all', head],
    ['blank lines and trailing white space', [...head, '', 'a  ', ' \t', '', '', '\t', '']],
    ['8-bit', [...head, 'X-8: caf\xe9 \xff', '', 'na\xefve \x80\x81 \xe9t\xe9', '\xc3\xa9 (utf-8)']],
    ['long folded header', [...head, `References: ${Array.from({ length: 60 }, (_, i) => `<m${i}@hz.test>`).join('\r\n ')}`.split('\r\n'), '', 'x'].flat()],
    ['repeated headers', ['Received: a', 'From: a@hz.test', 'Subject: one', 'Received: b', 'Subject: two', 'To: x@y', 'To: z@w', '', 'b']],
  ];
  for (const flags of [['-d', 'hz.test', '-s', 'sel'], ['-d', 'hz.test', '-s', 'sel', '-c', 'relaxed/relaxed'], ['-d', 'hz.test', '-s', 'ed', '-a', 'ed25519-sha256', '-c', 'relaxed/simple']]) {
    const { c, ours } = await pair(flags);
    for (const [what, m] of messages) await compare(t, c, ours, flags, m, `${flags.join(' ')}: ${what}`);
    await Promise.all([c.close(), ours.close()]);
  }
});

t.test('where the C filter fails, ours verifies (through the executable)', { skip }, async (t) => {
  const flags = ['-d', 'hz.test', '-s', 'sel'];
  const run = async (extra: string[], message: string[]): Promise<{ c: Awaited<ReturnType<CFilter['sign']>> | null; o: Awaited<ReturnType<CFilter['sign']>> }> => {
    const { c, ours } = await pair([...flags, ...extra]);
    const cr = await c.sign(message).catch(() => null);
    const o = await ours.sign(message);
    await Promise.all([c.close(), ours.close()]);
    return { c: cr, o };
  };
  const head = ['From: a@hz.test', 'To: b@other.example', 'Subject: s'];
  // 1: a line over 1997 bytes is cut by smtpd 6.8; ours hashes what is delivered
  {
    const message = [...head, '', 'b'.repeat(3000), `.${'d'.repeat(2500)}`];
    const { c, o } = await run([], message);
    const deliver = (lines: string[]): string[] => lines.map((l) => {
      const cut = (l.startsWith('.') ? `.${l}` : l).slice(0, 1997);
      return cut.startsWith('.') ? cut.slice(1) : cut;
    });
    t.notOk(top((await v.verify(wire(deliver(c!.lines)), KEYS)).python), '1: C fails once smtpd cuts the line');
    const a = await v.verify(wire(deliver(o.lines)), KEYS);
    t.ok(top(a.python) && top(a.perl), '1: ours passes both');
  }
  // 2: bare CR inside a relaxed header
  {
    const message = ['From: a@hz.test', 'Subject: a\rb', '', 'x'];
    const { c, o } = await run(['-c', 'relaxed'], message);
    t.notOk(top((await v.verify(wire(c!.lines), KEYS)).python), '2: C fails');
    const a = await v.verify(wire(o.lines), KEYS);
    t.ok(top(a.python) && top(a.perl), '2: ours passes both');
  }
  // 6: relaxed, empty first line and a white-space continuation: the C filter exits
  {
    const message = ['From: a@hz.test', 'Subject:', '\t\t', '', 'x'];
    const { c, o } = await run(['-c', 'relaxed'], message);
    t.equal(c, null, '6: C died');
    const a = await v.verify(wire(o.lines), KEYS);
    t.ok(top(a.python) && top(a.perl), '6: ours passes both');
  }
  // 7: obs-route in From: the C filter crashes
  {
    const message = ['From: Alice <@relay.example:a@hz.test>', '', 'x'];
    const { c, o } = await run([], message);
    t.equal(c, null, '7: C died');
    t.ok(top((await v.verify(wire(o.lines), KEYS)).python), '7: ours passes python3-dkim');
  }
});
