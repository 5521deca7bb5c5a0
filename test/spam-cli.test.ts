// The learn / check / stats subcommands, run as processes (this file is also the tiny
// entry: SPAM_CLI_CHILD=<cmd> runs cli/<cmd>.ts's run() on argv, stdin piped in).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const fixtures = path.join(path.dirname(self), 'fixtures/spam');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function sf(args: string[], stdin?: Buffer | string): Promise<Ran> {
  const [cmd, ...rest] = args;
  const loader = process.execArgv.filter((a) => a.includes('typescript'));
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [...loader, self, ...rest], { env: { ...process.env, SPAM_CLI_CHILD: cmd! }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
    if (stdin !== undefined) p.stdin.end(stdin);
    else p.stdin.end();
  });
}

const spamMsg = (n: number) =>
  `From: promo${n}@deals.example\nTo: u@example.org\nSubject: CHEAP WATCHES ${n}!!\nMessage-ID: <p${n}@deals.example>\nDate: Mon, 6 Jan 2003 10:00:00 +0000\n\nbuy cheap replica watches now, limited offer ${n}\n`;
const hamMsg = (n: number) =>
  `From: colleague${n}@work.example\nTo: u@example.org\nSubject: minutes of meeting ${n}\nMessage-ID: <w${n}@work.example>\nDate: Mon, 6 Jan 2003 10:00:00 +0000\n\nhere are the minutes of our project meeting ${n}\n`;

async function parent(): Promise<void> {
  const { default: t } = await import('tap');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spamcli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = path.join(dir, 'bayes.db');

  // A Maildir of spam and an mbox of ham (with mboxrd quoting and a From_ line).
  const md = path.join(dir, 'Junk');
  for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(md, sub), { recursive: true });
  for (let i = 0; i < 210; i++) fs.writeFileSync(path.join(md, i % 2 ? 'cur' : 'new', `${1000 + i}.M1P1.host:2,S`), spamMsg(i));
  fs.writeFileSync(path.join(md, 'tmp', 'partial'), 'From: x\n\nincomplete');
  fs.writeFileSync(path.join(md, 'dovecot-uidlist'), '3 V1 N1\n');
  const mbox = path.join(dir, 'ham.mbox');
  fs.writeFileSync(mbox, Array.from({ length: 210 }, (_, i) => `From colleague${i}@work.example  Mon Jan  6 10:00:00 2003\n${hamMsg(i)}>From the archive, quoted\n`).join('\n'));

  t.test('usage errors exit 1 without touching the store', async (t) => {
    for (const args of [['learn'], ['learn', 'maybe'], ['learn', 'spam', '--bogus'], ['learn', '--forget', 'spam'], ['learn', 'spam', '--maildir', md, '--mbox', mbox], ['check', 'extra'], ['check', '--headers', 'xml'], ['stats', '--store']]) {
      const r = await sf([...args, ...(args.includes('--store') ? [] : ['--store', store])], 'x');
      t.equal(r.code, 1, args.join(' '));
      t.match(r.stderr, /usage|needs a value|exclusive/);
      t.equal(r.stdout, '');
    }
    t.notOk(fs.existsSync(store));
  });

  t.test('input errors exit 2', async (t) => {
    t.equal((await sf(['learn', 'spam', '--store', store], '')).code, 2, 'empty stdin');
    t.equal((await sf(['learn', 'spam', '--store', store, '--maildir', path.join(dir, 'nope')])).code, 2, 'missing Maildir');
    t.equal((await sf(['check', '--store', store, '--mbox', path.join(dir, 'nope.mbox')])).code, 2, 'missing mbox');
  });

  t.test('store errors exit 3', async (t) => {
    fs.writeFileSync(path.join(dir, 'corrupt.db'), 'not a store');
    const r = await sf(['learn', 'spam', '--store', path.join(dir, 'corrupt.db')], spamMsg(1));
    t.equal(r.code, 3);
    t.match(r.stderr, /not a valid store file/);
    t.equal((await sf(['stats', '--store', path.join(dir, 'corrupt.db')])).code, 3);
    const port = 1; // nothing listens on port 1
    const rr = await sf(['stats', '--store', `redis://127.0.0.1:${port}/0`]);
    t.equal(rr.code, 3);
    t.match(rr.stderr, /cannot connect/);
  });

  t.test('bulk learn from Maildir and mbox, idempotent', async (t) => {
    const a = await sf(['learn', 'spam', '--store', store, '--maildir', md]);
    t.equal(a.code, 0, a.stderr);
    t.match(a.stderr, /learn spam: 210 learned \(210 messages/);
    t.equal(a.stdout, '');
    const b = await sf(['learn', 'ham', '--store', store, '--mbox', mbox]);
    t.equal(b.code, 0, b.stderr);
    t.match(b.stderr, /learn ham: 210 learned/);
    const again = await sf(['learn', 'spam', '--store', store, '--maildir', md]);
    t.match(again.stderr, /210 already/);
    const s = await sf(['stats', '--store', store, '--json']);
    t.equal(s.code, 0);
    const j = JSON.parse(s.stdout);
    t.same([j.nspam, j.nham, j.messages, j.ready], [210, 210, 420, true]);
    const human = await sf(['stats', '--store', store]);
    t.match(human.stdout, /spam learned: 210\nham learned: 210\n/);
    t.match(human.stdout, /bayes: votes/);
  });

  t.test('learn from stdin: move and forget', async (t) => {
    const m = spamMsg(5); // learned as spam from the Maildir
    const r1 = await sf(['learn', 'ham', '--store', store], m);
    t.equal(r1.code, 0);
    t.match(r1.stderr, /1 moved/);
    const r2 = await sf(['learn', '--forget', '--store', store], m);
    t.match(r2.stderr, /1 forgotten/);
    const r3 = await sf(['learn', '--forget', '--store', store], m);
    t.equal(r3.code, 0);
    t.match(r3.stderr, /1 not-learned/);
    const j = JSON.parse((await sf(['stats', '--store', store, '--json'])).stdout);
    t.same([j.nspam, j.nham], [209, 210]);
    const u = await sf(['learn', 'spam', '--user', 'alice@example.org', '--store', store], m);
    t.match(u.stderr, /for alice@example.org/);
    const su = JSON.parse((await sf(['stats', '--store', store, '--users', '--json'])).stdout);
    t.same(su.users, ['alice@example.org']);
  });

  t.test('check: one message, human and JSON, headers', async (t) => {
    const spam = await sf(['check', '--store', store, '--headers', 'both'], spamMsg(999));
    t.equal(spam.code, 0, spam.stderr);
    t.match(spam.stdout, /^score: [\d.]+ \(required 6\.0\)\naction: (add header|reject)\nbayes: 1\.0000/);
    t.match(spam.stdout, /headers:\nX-Spam: yes\nX-Spam-Score: [\d.]+ \/ 15\.0\nX-Spam-Flag: YES\n/);
    const ham = await sf(['check', '--store', store, '--json'], hamMsg(999));
    const j = JSON.parse(ham.stdout);
    t.equal(j.file, '-');
    t.equal(j.action, 'no action');
    t.ok(j.bayes.probability < 0.01);
    t.ok(Array.isArray(j.symbols) && j.symbols[0].name === 'BAYES_00');
    const gt = await sf(['check', '--store', store], fs.readFileSync(path.join(fixtures, 'gtube.eml')));
    t.match(gt.stdout, /action: reject/);
    t.match(gt.stdout, /GTUBE/);
    const untrained = await sf(['check', '--store', path.join(dir, 'empty.db')], spamMsg(1));
    t.match(untrained.stdout, /bayes: not used: not enough training \(0 spam, 0 ham learned; 200\/200 needed\)/);
  });

  t.test('check --json over a Maildir and an mbox: one line per message', async (t) => {
    const r = await sf(['check', '--json', '--store', store, '--maildir', md]);
    t.equal(r.code, 0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    t.equal(lines.length, 210);
    t.ok(lines.every((l) => fs.existsSync(l.file) && typeof l.score === 'number' && l.action && Array.isArray(l.symbols)));
    t.ok(lines.filter((l) => l.score >= 6).length >= 200, 'learned spam scores as spam');
    const m = await sf(['check', '--json', '--store', store, '--mbox', mbox]);
    const ml = m.stdout.trim().split('\n').map((l) => JSON.parse(l));
    t.equal(ml.length, 210);
    t.equal(ml[0].file, `${mbox}:1`);
    t.ok(ml.every((l) => l.score < 6), 'learned ham scores as ham');
    const plain = await sf(['check', '--store', store, '--mbox', mbox]);
    t.match(plain.stdout.split('\n')[0], new RegExp(`^${mbox.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:1\\t-?[\\d.]+\\tno action\\t`));
  });
}

const cmd = process.env.SPAM_CLI_CHILD;
if (cmd) {
  const mod = (await import(`../cli/${cmd}.js`)) as { run(argv: string[]): Promise<number> };
  const code = await mod.run(process.argv.slice(2));
  process.exitCode = code;
} else {
  await parent();
}
