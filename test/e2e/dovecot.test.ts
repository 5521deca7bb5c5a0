/**
 * Training from Dovecot for real: Debian's dovecot-imapd and dovecot-sieve (Pigeonhole
 * imapsieve + extprograms) configured with examples/dovecot/ (the conf snippet, the two sieve
 * scripts and the two shell scripts, edited where an admin edits them: paths, the
 * smtpd-filters command, the store) in the lab's network namespace, serving the Maildirs
 * that smtpd 6.8 with filter-spamscore and `maildir junk` delivers to.
 *
 * A private configuration (dovecot -c) with base_dir, state_dir and logs under the lab's
 * work dir, a passwd-file userdb, IMAP on 127.0.0.1:143 inside the namespace only; nothing of
 * the system's Dovecot is read or touched, and it is stopped at the end. An IMAP client
 * (python3's imaplib, run in the namespace) moves messages; `smtpd-filters stats` shows what
 * the store learned:
 * - a ham the filter let into the inbox, moved into Junk: learned as spam;
 * - a spam the filter filed in Junk, moved out to the inbox: learned as ham;
 * - the first one moved back out of Junk: moved from spam to ham, not counted twice;
 * - copied into Junk twice: counted once; thrown from Junk into the Trash: nothing learned.
 * Needs root and `npm run build`.
 */

import t from 'tap';
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { corpus, ROOT, SMTPD_FILTERS } from '../fixtures/spamscore/common.js';
import { readableBy } from '../lib/project.js';
import { filterCommand, headerValues, host, Lab, zone, type LabProcess } from '../lib/lab.js';
import { cmdline, namespacePids, pidAlive } from '../lib/netns.js';

const root = process.getuid?.() === 0;
const run = promisify(execFile);
const NOBODY = 65534; // the lab's smtpd delivers as nobody; Dovecot serves the Maildirs as nobody
const EXAMPLES = join(ROOT, 'examples', 'dovecot');

interface Stats {
  nspam: number;
  nham: number;
  messages: number;
}

async function stats(store: string): Promise<Stats> {
  const r = await run(SMTPD_FILTERS[0]!, [...SMTPD_FILTERS.slice(1), 'stats', '--store', store, '--json']);
  return JSON.parse(r.stdout) as Stats;
}

/** The IMAP client: python3's imaplib, one command per call, each a fresh login. */
const IMAP_PY = String.raw`
import imaplib, sys, json
user, password, op = sys.argv[1], sys.argv[2], sys.argv[3]
args = sys.argv[4:]
m = imaplib.IMAP4('127.0.0.1', 143)
m.login(user, password)
def uid_of(box, subject):
    typ, _ = m.select(box)
    assert typ == 'OK', box
    typ, data = m.uid('SEARCH', None, 'HEADER', 'Subject', subject)
    uids = data[0].split()
    assert len(uids) == 1, (box, subject, uids)
    return uids[0]
out = {}
if op == 'list':
    for box in args:
        typ, _ = m.select(box, readonly=True)
        typ, data = m.uid('SEARCH', None, 'ALL')
        subjects = []
        for u in data[0].split():
            typ, d = m.uid('FETCH', u, '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
            subjects.append(d[0][1].decode('latin1').strip()[len('Subject: '):])
        out[box] = sorted(subjects)
elif op in ('move', 'copy'):
    src, subject, dst = args
    u = uid_of(src, subject)
    typ, data = m.uid('MOVE' if op == 'move' else 'COPY', u, dst)
    out = {'typ': typ, 'data': [x.decode() if isinstance(x, bytes) else str(x) for x in data]}
m.logout()
print(json.dumps(out))
`;

t.test('Dovecot imapsieve with examples/dovecot trains filter-spamscore', { skip: root ? false : 'needs root (ip netns, smtpd, dovecot)' }, async (t) => {
  const lab = await Lab.create({ prefix: 'osf-dc' });
  t.teardown(() => lab.close());
  await lab.startDns(zone(host('mail.sender.example', '127.0.0.10')));

  // The store: learned from the corpus's training split; the filter (opensmtpd) reads it,
  // Dovecot's scripts (nobody) replace it: a directory both can write.
  const sdir = join(lab.wd, 'spamscore');
  mkdirSync(sdir);
  chmodSync(sdir, 0o777);
  const store = join(sdir, 'spamscore.db');
  const train = (cls: string, group: 'spam-1' | 'easy-ham-1') => {
    const dir = join(lab.wd, 'train', cls);
    mkdirSync(dir, { recursive: true });
    for (const m of corpus(group)) writeFileSync(join(dir, m.id), m.text);
    return run(SMTPD_FILTERS[0]!, [...SMTPD_FILTERS.slice(1), 'learn', cls, '--store', store, '--maildir', dir]);
  };
  await train('spam', 'spam-1');
  await train('ham', 'easy-ham-1');
  for (const f of readdirSync(sdir)) chmodSync(join(sdir, f), 0o644);
  const base = await stats(store);
  t.ok(base.nspam >= 200 && base.nham >= 200, `store learned: ${JSON.stringify(base)}`);

  // smtpd delivers: a spam (Junk) and two hams (inbox) for alice.
  const smtpd = await lab.startSmtpd({ junk: true, filters: [{ name: 'spamscore', command: filterCommand('spamscore', ['-store', store]) }] });
  const msg = (subject: string, body: string) =>
    Buffer.from(`From: Sender <sender@sender.example>\nTo: Alice <alice@test.example>\nSubject: ${subject}\nDate: Sun, 22 Nov 2026 12:00:00 +0000\nMessage-ID: <${subject}@sender.example>\n\n${body}`);
  // Spam and ham from the corpus's test split (bodies only: the subjects are ours, to find them).
  const body = (b: Buffer) => b.subarray(b.indexOf('\n\n') + 2).toString('latin1');
  const spamBody = corpus('spam-2', 40).map((m) => body(m.text)).find((b) => /click|remove|offer|free/i.test(b) && b.length < 8000 && !/^\./m.test(b))!;
  const hamBody = corpus('easy-ham-2', 40).map((m) => body(m.text)).find((b) => b.length < 4000 && !/^\./m.test(b))!;
  const r = await lab.smtp({
    src: '127.0.0.10',
    helo: 'mail.sender.example',
    from: 'sender@sender.example',
    to: ['alice@test.example'],
    messages: [msg('ham-one', hamBody), msg('ham-two', hamBody.replace(/\n/, '\nand a second one\n')), msg('spam-one', spamBody)],
  });
  t.ok(r.ok, `delivered: ${JSON.stringify(r.codes)}`);
  const delivered = await smtpd.waitDelivered('alice', 3);
  const where = Object.fromEntries(delivered.map((d) => [headerValues(d.data, 'Subject')[0], d.junk ? 'Junk' : 'INBOX']));
  t.comment(`smtpd delivered: ${JSON.stringify(where)}; scores ${delivered.map((d) => headerValues(d.data, 'X-Spam-Status')[0]?.replace(/ tests=.*/, '')).join(' | ')}`);
  await smtpd.stop();
  const maildir = join(smtpd.wd, 'maildir', 'alice');
  // What the test needs: one message in Junk and two in the inbox. The filter decided where
  // they went; if its verdict differs, the same moves are made from where they are.
  const box = (s: string) => where[s]!;

  // Dovecot, from examples/dovecot: the scripts edited as an admin edits them.
  const D = join(lab.wd, 'dovecot');
  const sieve = join(D, 'sieve');
  mkdirSync(sieve, { recursive: true });
  for (const d of ['run', 'state']) mkdirSync(join(D, d));
  // The learn scripts run as the mail user (nobody). A checkout it cannot read (under /root,
  // a CI clone) is bind-mounted, for Dovecot alone, where it can.
  const visible = readableBy('nobody') ? ROOT : join(D, 'project');
  if (visible !== ROOT) mkdirSync(visible);
  const wrapper = join(D, 'smtpd-filters');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${[SMTPD_FILTERS[0]!, ...SMTPD_FILTERS.slice(1).map((a) => a.replace(ROOT, visible))].join(' ')} "$@"\n`, { mode: 0o755 });
  for (const f of ['report-spam.sieve', 'report-ham.sieve']) copyFileSync(join(EXAMPLES, f), join(sieve, f));
  for (const f of ['learn-spam.sh', 'learn-ham.sh']) {
    const text = readFileSync(join(EXAMPLES, f), 'utf8')
      .replace(/^SMTPD_FILTERS=.*$/m, `SMTPD_FILTERS=${wrapper}`)
      .replace(/^STORE=.*$/m, `STORE=${store}`);
    t.not(text, readFileSync(join(EXAMPLES, f), 'utf8'), `${f}: the two settings an admin edits`);
    writeFileSync(join(sieve, f), text, { mode: 0o755 });
  }
  const snippet = readFileSync(join(EXAMPLES, '90-spamscore.conf'), 'utf8').replaceAll('/etc/dovecot/sieve', sieve);
  writeFileSync(join(D, '90-spamscore.conf'), snippet);
  writeFileSync(join(D, 'users'), `alice:{PLAIN}secret-alice:${NOBODY}:${NOBODY}::${maildir}::\n`);
  const conf = join(D, 'dovecot.conf');
  writeFileSync(
    conf,
    [
      '# the lab\'s private Dovecot: nothing of /etc/dovecot, nothing outside the namespace',
      'protocols = imap',
      'listen = 127.0.0.1',
      `base_dir = ${D}/run`,
      `state_dir = ${D}/state`,
      `log_path = ${D}/dovecot.log`,
      `info_log_path = ${D}/dovecot.log`,
      'ssl = no',
      'disable_plaintext_auth = no',
      'auth_mechanisms = plain',
      'mail_location = maildir:~',
      `first_valid_uid = ${NOBODY}`,
      `passdb {\n  driver = passwd-file\n  args = scheme=PLAIN ${D}/users\n}`,
      `userdb {\n  driver = passwd-file\n  args = ${D}/users\n}`,
      'service imap-login {\n  inet_listener imap {\n    address = 127.0.0.1\n    port = 143\n  }\n  inet_listener imaps {\n    port = 0\n  }\n}',
      'namespace inbox {\n  inbox = yes\n  separator = .\n}',
      `!include ${D}/90-spamscore.conf`,
      '',
    ].join('\n'),
  );
  // Compiled as root, as the snippet says: the mail user cannot write beside the scripts.
  for (const f of ['report-spam.sieve', 'report-ham.sieve']) {
    const c = await lab.exec(['/usr/bin/sievec', '-c', conf, join(sieve, f)], { inNamespace: false });
    t.equal(c.code, 0, `sievec ${f}: ${c.stderr.toString().trim()}`);
  }
  const argv = ['/usr/sbin/dovecot', '-F', '-c', conf];
  const dovecot: LabProcess = lab.spawn(
    visible === ROOT ? argv : ['/bin/sh', '-c', 'mount --bind "$1" "$2" && shift 2 && exec "$@"', 'lab-dovecot', ROOT, visible, ...argv],
    { logFile: join(D, 'dovecot.out') },
  );
  t.teardown(() => dovecot.stop(5000)); // if the test ends before its own stop
  for (let i = 0; ; i++) {
    const ss = (await lab.exec(['/usr/bin/ss', '-Hltn'])).stdout.toString();
    if (ss.includes(' 127.0.0.1:143 ')) break;
    if (i > 100 || !dovecot.alive()) throw new Error(`dovecot did not listen: ${dovecot.output()}\n${readFileSync(join(D, 'dovecot.log'), 'utf8')}`);
    await sleep(100);
  }
  t.ok(true, 'dovecot listens on 127.0.0.1:143 in the namespace');

  const imap = async (op: string, ...args: string[]): Promise<Record<string, unknown>> => {
    const res = await lab.exec(['/usr/bin/python3', '-c', IMAP_PY, 'alice', 'secret-alice', op, ...args]);
    if (res.code !== 0) throw new Error(`imap ${op} ${args.join(' ')}: ${res.stderr.toString()}\n${readFileSync(join(D, 'dovecot.log'), 'utf8')}`);
    return JSON.parse(res.stdout.toString()) as Record<string, unknown>;
  };
  const log = () => readFileSync(join(D, 'dovecot.log'), 'utf8');

  t.same(await imap('list', 'INBOX', 'Junk'), { INBOX: ['ham-one', 'ham-two', 'spam-one'].filter((s) => box(s) === 'INBOX'), Junk: ['ham-one', 'ham-two', 'spam-one'].filter((s) => box(s) === 'Junk') }, 'Dovecot sees what smtpd delivered, in INBOX and Junk');

  // 1. A ham the user calls spam: into Junk.
  if (box('ham-one') !== 'INBOX') await imap('move', 'Junk', 'ham-one', 'INBOX'); // (only if the filter junked it)
  const s0 = await stats(store);
  t.equal((await imap('move', 'INBOX', 'ham-one', 'Junk')).typ, 'OK', 'MOVE INBOX -> Junk');
  const s1 = await stats(store);
  t.same([s1.nspam - s0.nspam, s1.nham - s0.nham, s1.messages - s0.messages], [1, 0, 1], 'learned as spam');

  // 2. A spam the filter put in Junk, which the user calls ham: out of Junk.
  if (box('spam-one') !== 'Junk') await imap('move', 'INBOX', 'spam-one', 'Junk');
  const s2a = await stats(store);
  t.equal((await imap('move', 'Junk', 'spam-one', 'INBOX')).typ, 'OK', 'MOVE Junk -> INBOX');
  const s2 = await stats(store);
  const wasSpam = s2a.nspam - s1.nspam; // 1 if the move into Junk just above taught it
  t.same([s2.nham - s2a.nham, s2.nspam - s2a.nspam], [1, -wasSpam], wasSpam ? 'moved from spam to ham' : 'learned as ham');

  // 3. The first message back out of Junk: moved to ham, not counted twice.
  t.equal((await imap('move', 'Junk', 'ham-one', 'INBOX')).typ, 'OK');
  const s3 = await stats(store);
  t.same([s3.nspam - s2.nspam, s3.nham - s2.nham, s3.messages - s2.messages], [-1, 1, 0], 'moved: spam -1, ham +1, same number of messages');
  t.same([s3.nspam, s3.nham], [base.nspam, base.nham + 2], 'in all: the two messages count once each, as ham');

  // 4. Copied into Junk twice: learned once. From Junk into the Trash: nothing.
  if (box('ham-two') !== 'INBOX') await imap('move', 'Junk', 'ham-two', 'INBOX');
  const s4a = await stats(store);
  await imap('copy', 'INBOX', 'ham-two', 'Junk');
  const s4 = await stats(store);
  t.same([s4.nspam - s4a.nspam, s4.messages - s4a.messages], [1, 1], 'COPY into Junk: learned as spam');
  await imap('move', 'Junk', 'ham-two', 'Trash');
  const s5 = await stats(store);
  t.same(s5, s4, 'Junk -> Trash: nothing learned');
  t.notMatch(log(), /Error: .*(pipe|sieve|imapsieve)/i, 'no sieve or pipe error');
  t.same(await imap('list', 'INBOX', 'Junk', 'Trash'), { INBOX: ['ham-one', 'ham-two', 'spam-one'], Junk: [], Trash: ['ham-two'] }, 'the mailboxes as the user left them (ham-two copied, its copy trashed)');
  t.notMatch(log(), /Fatal|OOM/, 'the scripts ran within the snippet\'s vsz_limit');

  // Stopped as an admin stops it; nothing of it is left in the namespace.
  const stop = await lab.exec(['/usr/sbin/dovecot', '-c', conf, 'stop']);
  t.equal(stop.code, 0, 'dovecot stop');
  await Promise.race([dovecot.exited, sleep(10_000)]);
  t.notOk(dovecot.alive(), 'the master exited');
  await sleep(200);
  t.same(namespacePids(lab.name).filter(pidAlive).map(cmdline).filter((c) => /dovecot/.test(c)), [], 'no Dovecot process left');
});
