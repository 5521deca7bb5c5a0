/**
 * filter-spamscore under the real smtpd 6.8 (test/lib/lab.ts), with the seed's delivery:
 *
 *   filter "spamscore" proc-exec "filter-spamscore -store /…/spamscore.db"
 *   action "deliver" maildir "…/%{user.username}" junk userbase <users>
 *
 * First what smtpd's `maildir junk` (mail.maildir -j) itself reads, without any filter: which
 * header lines send a message to .Junk. Then the store is learned as the seed's cron learns
 * (`smtpd-filters learn spam|ham --maildir`) from the training split of the SpamAssassin
 * corpus (spam-1: 500, easy-ham-1: 2500), a spam and a ham of the test split are picked with
 * `smtpd-filters check --json --maildir`, and sent through smtpd: GTUBE gets 550, the spam
 * lands in Junk with our headers, the ham in the inbox without a spam mark, forged X-Spam*
 * fields go in both directions. Then each header dialect alone, greylisting (451, then the
 * retry passes), -rejectAt, a submission (AUTH) that is not scored, a Redis store shared by
 * two MX (learned by the CLI; greylisted by one smtpd, the retry passed by another), and a
 * store that cannot be reached (unscored by default, 451 with -onError tempfail).
 * Needs root and `npm run build`.
 */

import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { corpus, GTUBE, SMTPD_FILTERS, type CorpusMessage } from '../fixtures/spamscore/common.js';
import { filterCommand, headerValues, host, inAcceptanceOrder, Lab, zone, type Delivered, type Smtpd, type SessionScript, type Step } from '../lib/lab.js';

const root = process.getuid?.() === 0;
const run = promisify(execFile);
const OPENSMTPD = { uid: 102, gid: 105 }; // smtpd's default filter user on Debian

/** The corpus file as a client sends it: without its mbox "From " line. */
function wire(m: CorpusMessage): Buffer {
  const b = m.text;
  return b.subarray(0, 5).toString() === 'From ' ? b.subarray(b.indexOf(0x0a) + 1) : b;
}

/** Writes messages into a Maildir's cur/ (the CLI reads cur/ and new/). */
function maildir(dir: string, msgs: CorpusMessage[]): string {
  for (const s of ['cur', 'new', 'tmp']) mkdirSync(join(dir, s), { recursive: true });
  for (const [i, m] of msgs.entries()) writeFileSync(join(dir, 'cur', `${1_700_000_000 + i}.${m.id}.lab:2,S`), wire(m));
  return dir;
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(SMTPD_FILTERS[0]!, [...SMTPD_FILTERS.slice(1), ...args], { maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

const msg = (subject: string, body: string, extra = '') =>
  Buffer.from(`${extra}From: Sender <sender@sender.example>\nTo: Alice <alice@test.example>\nSubject: ${subject}\nDate: ${new Date().toUTCString().replace('GMT', '+0000')}\nMessage-ID: <${subject.replace(/\W/g, '')}.${Date.now()}@sender.example>\n\n${body}`);

/** One session from the good host, one transaction per message, each with its expected final code. */
function session(list: { data: Buffer; expect: string; rcpt?: string }[], opts: { port?: number; auth?: boolean } = {}): SessionScript {
  const steps: Step[] = [{ read: true, expect: '220' }, { send: 'EHLO mail.sender.example', expect: '250' }];
  if (opts.auth) {
    steps.push({ send: 'STARTTLS', expect: '220' }, { starttls: true }, { send: 'EHLO mail.sender.example', expect: '250' });
    steps.push({ send: `AUTH PLAIN ${Buffer.from('\0alice\0secret-alice').toString('base64')}`, expect: '235' });
  }
  for (const m of list) {
    steps.push({ send: 'MAIL FROM:<sender@sender.example>', expect: '250' }, { send: `RCPT TO:<${m.rcpt ?? 'alice@test.example'}>`, expect: '250' });
    steps.push({ data: m.data.toString('base64'), expect: m.expect });
  }
  steps.push({ send: 'QUIT', expect: '221' });
  return { src: '127.0.0.10', port: opts.port ?? 25, steps, timeoutMs: 60_000 };
}

t.test('filter-spamscore under smtpd 6.8', { skip: root ? false : 'needs root (ip netns, smtpd)' }, async (t) => {
  const lab = await Lab.create({ prefix: 'osf-ss' });
  t.teardown(() => lab.close());
  await lab.startDns(zone(host('mail.sender.example', '127.0.0.10'), host('mx.test.example', '127.0.0.1')));

  const send = async (t: Test, smtpd: Smtpd, list: { data: Buffer; expect: string; rcpt?: string }[], opts: { port?: number; auth?: boolean } = {}) => {
    const [r] = await lab.smtpScript([session(list, opts)]);
    t.ok(r!.ok, `SMTP replies as expected: ${JSON.stringify({ codes: r!.codes, mismatches: r!.mismatches, error: r!.error })}`);
    t.ok(smtpd.alive(), 'smtpd alive');
    return r!;
  };
  // Each smtpd has its own maildirs: count what each delivered.
  const seen = new Map<Smtpd, number>();
  const next = async (smtpd: Smtpd, n: number, user = 'alice'): Promise<Delivered[]> => {
    const before = seen.get(smtpd) ?? 0;
    const all = await smtpd.waitDelivered(user, before + n, 30_000);
    seen.set(smtpd, before + n);
    return all.slice(before, before + n);
  };
  const subjectOf = (d: Delivered) => headerValues(d.data, 'Subject')[0] ?? '';

  await t.test('what smtpd 6.8\'s maildir junk reads (no filter): an exact header line, any case', async (t) => {
    const smtpd = await lab.startSmtpd({ junk: true });
    t.teardown(() => smtpd.stop());
    const cases: [string, string, boolean][] = [
      ['X-Spam: yes', 'rspamd', true],
      ['X-Spam: Yes', 'smtpd-own', true],
      ['x-spam: YES', 'upper', true],
      ['X-Spam-Flag: YES', 'spamassassin', true],
      ['X-SPAM-FLAG: yes', 'flag-lower', true],
      ['X-Spam: yes ', 'trailing-space', false],
      ['X-Spam:yes', 'no-space', false],
      ['X-Spam: yes, score=7.0', 'more-text', false],
      ['X-Spam:\n yes', 'folded', false],
      ['X-Spam-Status: Yes, score=7.0 required=6.0', 'status-only', false],
      ['X-Spam-Score: 7.0 / 15.0', 'score-only', false],
    ];
    const list = cases.map(([h, name]) => ({ data: msg(`junk-${name}`, 'hello\n', h + '\n'), expect: '250' }));
    list.push({ data: msg('junk-in-body', 'X-Spam: yes\n'), expect: '250' });
    await send(t, smtpd, list);
    const got = await next(smtpd, list.length);
    for (const [h, name, junk] of cases) {
      const d = got.find((x) => subjectOf(x) === `junk-${name}`)!;
      t.equal(d.junk, junk, `${JSON.stringify(h)} -> ${junk ? 'Junk' : 'inbox'}`);
    }
    t.equal(got.find((x) => subjectOf(x) === 'junk-in-body')!.junk, false, 'in the body: inbox');
  });

  // The store, learned as the seed's cron learns: Maildirs of spam and ham.
  const sdir = join(lab.wd, 'spamscore');
  mkdirSync(sdir, { mode: 0o755 });
  const store = join(sdir, 'spamscore.db');
  const trainSpam = corpus('spam-1');
  const trainHam = corpus('easy-ham-1');
  t.ok(trainSpam.length >= 200 && trainHam.length >= 200, `${trainSpam.length} spam and ${trainHam.length} ham to learn`);
  const ls = await cli(['learn', 'spam', '--store', store, '--maildir', maildir(join(lab.wd, 'train', 'Junk'), trainSpam)]);
  t.equal(ls.code, 0, `learn spam: ${ls.stderr.trim()}`);
  const lh = await cli(['learn', 'ham', '--store', store, '--maildir', maildir(join(lab.wd, 'train', 'INBOX'), trainHam)]);
  t.equal(lh.code, 0, `learn ham: ${lh.stderr.trim()}`);
  const st = JSON.parse((await cli(['stats', '--store', store, '--json'])).stdout) as { nspam: number; nham: number; ready: boolean };
  t.same([st.nspam, st.nham, st.ready], [trainSpam.length, trainHam.length, true], 'stats: everything learned, Bayes votes');
  // The filter runs as opensmtpd: it reads the store and writes the greylist beside it.
  chownSync(sdir, OPENSMTPD.uid, OPENSMTPD.gid);
  for (const f of readdirSync(sdir)) chownSync(join(sdir, f), OPENSMTPD.uid, OPENSMTPD.gid);

  // A spam of the test split that Bayes recognises and that lands in the junk band (6 <= score
  // < 15, some margin), and a ham that Bayes recognises, as `check` scores them.
  const pick = async (group: CorpusMessage['group'], ok: (score: number, action: string, symbols: string[]) => boolean): Promise<CorpusMessage> => {
    const msgs = corpus(group, 200);
    const dir = maildir(join(lab.wd, 'candidates', group), msgs);
    const r = await cli(['check', '--json', '--store', store, '--maildir', dir]);
    t.equal(r.code, 0, `check --json --maildir ${group}`);
    for (const line of r.stdout.trim().split('\n')) {
      const j = JSON.parse(line) as { file: string; score: number; action: string; symbols: { name: string }[] };
      const m = msgs.find((x) => j.file.includes(`.${x.id}.`))!;
      // not too large for a quick test, no line the smtp client would need to cut
      if (ok(j.score, j.action, j.symbols.map((x) => x.name)) && m.text.length < 20_000 && !m.text.toString('latin1').split('\n').some((l) => l.length > 900)) {
        t.comment(`${group}/${m.id}: check says ${j.score} (${j.action}: ${j.symbols.map((x) => x.name).join(' ')})`);
        return m;
      }
    }
    throw new Error(`no ${group} candidate`);
  };
  const spam = wire(await pick('spam-2', (s, a, sym) => a === 'add header' && s >= 8 && s <= 13.5 && sym.some((x) => /^BAYES_(95|99|999)$/.test(x))));
  const ham = wire(await pick('easy-ham-2', (s, _a, sym) => s <= 1 && sym.includes('BAYES_00')));
  const gtube = msg('gtube', `This is the GTUBE.\n\n${GTUBE}\n`);
  const forge = (m: Buffer, lines: string) => Buffer.concat([Buffer.from(lines), m]);

  await t.test('GTUBE rejected with 550, a corpus spam in Junk with our headers, a ham in the inbox clean, forged fields removed', async (t) => {
    const smtpd = await lab.startSmtpd({ junk: true, filters: [{ name: 'spamscore', command: filterCommand('spamscore', ['-store', store]) }] });
    t.teardown(() => smtpd.stop());
    const r = await send(t, smtpd, [
      { data: gtube, expect: '550' },
      { data: spam, expect: '250' },
      { data: forge(spam, 'X-Spam-Status: No, score=-3.0 required=5.0 tests=ALL_TRUSTED\nX-Spam-Flag: NO\n'), expect: '250' },
      { data: ham, expect: '250' },
      { data: forge(ham, 'X-Spam: yes\nX-Spam-Flag: YES\nX-Spam-Status: Yes, score=99.0\n'), expect: '250' },
    ]);
    t.match(r.replies.find((x) => x.code === 550)!.lines.join(' '), /Spam message rejected \(GTUBE/, 'the 550 text');
    const [s1, s2, h1, h2] = inAcceptanceOrder(await next(smtpd, 4), r.replies); // in the order sent
    for (const [d, what] of [[s1!, 'spam'], [s2!, 'spam with a forged X-Spam-Status: No']] as const) {
      t.ok(d.junk, `${what}: delivered to .Junk`);
      t.same(headerValues(d.data, 'X-Spam'), ['yes'], `${what}: X-Spam: yes`);
      t.same(headerValues(d.data, 'X-Spam-Flag'), ['YES'], `${what}: X-Spam-Flag: YES`);
      const status = headerValues(d.data, 'X-Spam-Status');
      t.equal(status.length, 1, `${what}: one X-Spam-Status, ours`);
      t.match(status[0], /^Yes, score=\d+\.\d required=6\.0 tests=BAYES_\d+/, `${what}: ${status[0]}`);
      t.match(headerValues(d.data, 'X-Spam-Score')[0], /^\d+\.\d \/ 15\.0$/);
      t.match(headerValues(d.data, 'X-Spam-Level')[0], /^\*{6,}$/);
    }
    for (const [d, what] of [[h1!, 'ham'], [h2!, 'ham with a forged X-Spam: yes']] as const) {
      t.notOk(d.junk, `${what}: delivered to the inbox`);
      t.same(headerValues(d.data, 'X-Spam'), [], `${what}: no X-Spam`);
      t.same(headerValues(d.data, 'X-Spam-Flag'), [], `${what}: no X-Spam-Flag`);
      const status = headerValues(d.data, 'X-Spam-Status');
      t.equal(status.length, 1, `${what}: one X-Spam-Status, ours`);
      t.match(status[0], /^No, score=-?\d+\.\d required=6\.0 /, `${what}: ${status[0]}`);
    }
    t.match(smtpd.log(), /"msg":"scanned"/, 'one log line per message');
  });

  await t.test('each dialect alone files spam in Junk: X-Spam-Flag: YES (SpamAssassin), X-Spam: yes (rspamd)', async (t) => {
    for (const dialect of ['spamassassin', 'rspamd']) {
      const smtpd = await lab.startSmtpd({ junk: true, filters: [{ name: 'spamscore', command: filterCommand('spamscore', ['-store', store, '-headers', dialect]) }] });
      const r = await send(t, smtpd, [{ data: spam, expect: '250' }, { data: ham, expect: '250' }]);
      const [s, h] = inAcceptanceOrder(await next(smtpd, 2), r.replies);
      t.ok(s!.junk, `${dialect}: spam in Junk`);
      t.notOk(h!.junk, `${dialect}: ham in the inbox`);
      if (dialect === 'spamassassin') {
        t.same(headerValues(s!.data, 'X-Spam-Flag'), ['YES']);
        t.same(headerValues(s!.data, 'X-Spam'), []);
        t.match(headerValues(h!.data, 'X-Spam-Status')[0], /^No, /);
      } else {
        t.same(headerValues(s!.data, 'X-Spam'), ['yes']);
        t.same(headerValues(s!.data, 'X-Spam-Flag'), []);
        t.same(headerValues(h!.data, 'X-Spam-Status'), [], 'rspamd: nothing on ham');
      }
      await smtpd.stop();
    }
  });

  await t.test('greylisting with the file store: 451, 451 too early, passed on the retry', async (t) => {
    // Everything in the greylist band; 2 s instead of 300 s.
    const smtpd = await lab.startSmtpd({ junk: true, filters: [{ name: 'spamscore', command: filterCommand('spamscore', ['-store', store, '-greylistAt', '-100', '-junkAt', '100', '-greylistDelay', '2']) }] });
    t.teardown(() => smtpd.stop());
    const m = msg('greylisted', 'a message in the greylist band\n');
    const r1 = await send(t, smtpd, [{ data: m, expect: '451' }, { data: m, expect: '451' }]);
    t.match(r1.replies.find((x) => x.code === 451)!.lines.join(' '), /Greylisted/);
    await new Promise((r) => setTimeout(r, 2500));
    await send(t, smtpd, [{ data: m, expect: '250' }]);
    const [d] = await next(smtpd, 1);
    t.equal(subjectOf(d!), 'greylisted', 'delivered on the retry');
    t.ok(readdirSync(sdir).includes('spamscore.db.greylist'), 'the greylist lives beside the store');
  });

  await t.test('-rejectAt: 550 at commit for a score above it', async (t) => {
    const smtpd = await lab.startSmtpd({ junk: true, filters: [{ name: 'spamscore', command: filterCommand('spamscore', ['-store', store, '-rejectAt', '7']) }] });
    t.teardown(() => smtpd.stop());
    const r = await send(t, smtpd, [{ data: spam, expect: '550' }, { data: ham, expect: '250' }]);
    t.match(r.replies.find((x) => x.code === 550)!.lines.join(' '), /5\.7\.1 Spam message rejected$/);
    const [h] = await next(smtpd, 1);
    t.notOk(h!.junk);
  });

  await t.test('a submission (AUTH) is not scored; its X-Spam* fields are removed', async (t) => {
    const smtpd = await lab.startSmtpd({ junk: true, filters: [{ name: 'spamscore', command: filterCommand('spamscore', ['-store', store]) }] });
    t.teardown(() => smtpd.stop());
    await send(t, smtpd, [{ data: forge(spam, 'X-Spam-Flag: YES\n'), expect: '250', rcpt: 'bob@test.example' }], { port: 587, auth: true });
    const [d] = await next(smtpd, 1, 'bob');
    t.notOk(d!.junk, 'inbox');
    t.same([...headerValues(d!.data, 'X-Spam'), ...headerValues(d!.data, 'X-Spam-Flag'), ...headerValues(d!.data, 'X-Spam-Status')], [], 'no verdict, no forged flag');
    t.notMatch(smtpd.log(), /"msg":"scanned"/, 'not scanned');
  });

  await t.test('Redis shared by two MX (two smtpd, one after the other): Bayes learned by the CLI, greylisted on one, passed by the other', async (t) => {
    const rdir = join(lab.wd, 'redis');
    mkdirSync(rdir);
    const redis = lab.spawn(['/usr/bin/redis-server', '--port', '6379', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', rdir]);
    t.teardown(() => redis.stop(5000));
    for (let i = 0; (await lab.exec(['/usr/bin/redis-cli', '-p', '6379', 'ping'])).stdout.toString().trim() !== 'PONG'; i++) {
      if (i > 100) throw new Error(`redis-server did not start: ${redis.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = 'redis://127.0.0.1:6379/3';
    for (const [cls, box] of [['spam', 'Junk'], ['ham', 'INBOX']]) {
      const l = await lab.exec([...SMTPD_FILTERS, 'learn', cls!, '--store', url, '--maildir', join(lab.wd, 'train', box!)], { timeoutMs: 300_000 });
      t.equal(l.code, 0, `learn ${cls} into Redis: ${l.stderr.toString().trim()}`);
    }
    const args = ['-store', url, '-greylistDelay', '1'];
    // Everything in the greylist band for this message, as in the file store's test.
    const m = msg('greylisted on mx1', 'a message in the greylist band, retried to another MX\n');
    const g1 = await lab.startSmtpd({ junk: true, filters: [{ name: 'spamscore', command: filterCommand('spamscore', [...args, '-greylistAt', '-100', '-junkAt', '100']) }] });
    await send(t, g1, [{ data: m, expect: '451' }]);
    await g1.stop();
    await new Promise((r) => setTimeout(r, 1500));
    const g2 = await lab.startSmtpd({ junk: true, filters: [{ name: 'spamscore', command: filterCommand('spamscore', [...args, '-greylistAt', '-100', '-junkAt', '100']) }] });
    await send(t, g2, [{ data: m, expect: '250' }]);
    t.equal(subjectOf((await next(g2, 1))[0]!), 'greylisted on mx1', 'the retry to the other MX passes: the greylist is shared');
    await g2.stop();
    const mx2 = await lab.startSmtpd({ junk: true, filters: [{ name: 'spamscore', command: filterCommand('spamscore', args) }] });
    t.teardown(() => mx2.stop());
    const r = await send(t, mx2, [{ data: spam, expect: '250' }, { data: ham, expect: '250' }]);
    const [s, h] = inAcceptanceOrder(await next(mx2, 2), r.replies);
    t.ok(s!.junk, 'spam in Junk with the statistics from Redis');
    t.match(headerValues(s!.data, 'X-Spam-Status')[0], /BAYES_9/);
    t.notOk(h!.junk, 'ham in the inbox');
  });

  await t.test('a store that cannot be reached: smtpd starts; unscored by default, 451 with -onError tempfail', async (t) => {
    const down = 'redis://127.0.0.1:1/0'; // nothing listens on port 1 in the namespace
    const smtpd = await lab.startSmtpd({ junk: true, filters: [{ name: 'spamscore', command: filterCommand('spamscore', ['-store', down]) }] });
    await send(t, smtpd, [{ data: forge(ham, 'X-Spam: yes\n'), expect: '250' }, { data: gtube, expect: '250' }]);
    const got = await next(smtpd, 2);
    t.ok(got.every((d) => !d.junk && headerValues(d.data, 'X-Spam').length === 0 && headerValues(d.data, 'X-Spam-Status').length === 0), 'passed unscored, the forged X-Spam: yes removed (not junked)');
    t.match(smtpd.log(), /store not reachable yet/);
    t.match(smtpd.log(), /scan failed: message passed unscored/);
    await smtpd.stop();
    const tf = await lab.startSmtpd({ junk: true, filters: [{ name: 'spamscore', command: filterCommand('spamscore', ['-store', down, '-onError', 'tempfail']) }] });
    t.teardown(() => tf.stop());
    const r = await send(t, tf, [{ data: ham, expect: '451' }]);
    t.match(r.replies.find((x) => x.code === 451)!.lines.join(' '), /Temporary failure while scanning/);
  });
});
