// The built filter-spamscore as smtpd runs it (needs `npm run build`): startup (usage errors
// exit 2, an unreadable or corrupt store exits 1 with one line, an unreachable Redis does not
// stop it, what it registers), and the real smtpd 6.8 streams recorded in front of
// filter-rspamd (test/fixtures/recordings/rspamd) replayed to it with `smtpd-filters replay`:
// the same decisions where rspamd's are ours to copy (GTUBE 550 at commit, ham passed),
// filter-rspamd's header fields on the way, and a store learned with the CLI in between.
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FILTER, ROOT, SMTPD_FILTERS, spamText, hamText } from './fixtures/spamscore/common.js';

const recordings = join(ROOT, 'test/fixtures/recordings/rspamd');

async function run(argv: string[], input = ''): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
    p.stdin.end(input);
  });
}

const dir = mkdtempSync(join(tmpdir(), 'spamscore-process-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('startup', async (t) => {
  const usage = await run([...FILTER, '-headers', 'xml']);
  t.equal(usage.status, 2, 'bad flag value: exit 2');
  t.match(usage.stderr, /invalid value "xml" for flag -headers: spamassassin, rspamd or both/);
  t.match(usage.stderr, /usage: filter-spamscore/);
  t.equal((await run([...FILTER, '-perUser', '-user', 'x'])).status, 2, '-perUser with -user: exit 2');
  t.equal((await run([...FILTER, '-help'])).status, 0, '-help: exit 0');

  const corrupt = join(dir, 'corrupt.db');
  writeFileSync(corrupt, 'not a store at all');
  const c = await run([...FILTER, '-store', corrupt]);
  t.equal(c.status, 1, 'a corrupt store: exit 1');
  t.match(c.stderr, /^filter-spamscore: store .*corrupt\.db: .*not a valid store file/m, 'one clear line');
  const unreadable = join(dir, 'unreadable.db');
  writeFileSync(unreadable, '');
  chmodSync(unreadable, 0);
  if (process.getuid?.() !== 0) t.equal((await run([...FILTER, '-store', unreadable])).status, 1, 'an unreadable store: exit 1');
  const url = await run([...FILTER, '-store', 'http://example.org/db']);
  t.equal(url.status, 1, 'an unsupported URL: exit 1');
  t.match(url.stderr, /unsupported store URL/);

  // Redis not reachable: it starts, registers, and passes mail unscored (forged fields removed).
  const hs = 'config|smtpd-version|6.8.0p2\nconfig|smtp-session-timeout|300\nconfig|subsystem|smtp-in\nconfig|ready\n';
  const r = await run([...FILTER, '-store', 'redis://127.0.0.1:1/0'], hs);
  t.equal(r.status, 0, 'exit 0 at EOF');
  t.match(r.stderr, /store not reachable yet/);
  const regs = r.stdout.trim().split('\n');
  t.same(
    [...regs].sort(),
    [
      'register|filter|smtp-in|commit',
      'register|filter|smtp-in|data-line',
      'register|ready',
      ...['link-auth', 'link-connect', 'link-disconnect', 'link-greeting', 'link-identify', 'tx-begin', 'tx-mail', 'tx-rcpt', 'tx-reset', 'tx-rollback'].map((e) => `register|report|smtp-in|${e}`),
    ].sort(),
    'data-line and commit; the reports the session facts need',
  );
  t.equal(regs[regs.length - 1], 'register|ready', 'register|ready last');
});

/** smtpd-filters replay of a recording's input to our filter: the answers, by kind. */
async function replay(name: string, args: string[]): Promise<{ datalines: string[]; results: string[]; raw: string }> {
  const { stdout } = await promisify(execFile)(SMTPD_FILTERS[0]!, [...SMTPD_FILTERS.slice(1), 'replay', join(recordings, name, 'rspamd.in'), '--', ...FILTER, ...args], { encoding: 'latin1' }).catch((e: { stdout: string; stderr: string }) => e);
  const lines = stdout.split('\n').filter(Boolean);
  return {
    datalines: lines.filter((l) => l.startsWith('filter-dataline|')).map((l) => l.split('|').slice(3).join('|')),
    results: lines.filter((l) => l.startsWith('filter-result|')).map((l) => l.split('|').slice(3).join('|')),
    raw: stdout,
  };
}

/** What filter-rspamd answered in the recording (its .out), the same way. */
function recorded(name: string): { datalines: string[]; results: string[] } {
  const lines = readFileSync(join(recordings, name, 'rspamd.out'), 'latin1').split('\n').filter(Boolean);
  return {
    datalines: lines.filter((l) => l.startsWith('filter-dataline|')).map((l) => l.split('|').slice(3).join('|')),
    results: lines.filter((l) => l.startsWith('filter-result|')).map((l) => l.split('|').slice(3).join('|')),
  };
}

t.test('the rspamd recordings of smtpd 6.8, replayed', async (t) => {
  // Rules only (an empty store): what a fresh install does.
  const g = await replay('rspamd-gtube', ['-store', 'memory:']);
  t.same(recorded('rspamd-gtube').results, ['reject|550 Gtube pattern'], 'filter-rspamd: 550 at commit');
  t.same(g.results, ['reject|550 5.7.1 Spam message rejected (GTUBE test string)'], 'ours: 550 at commit');
  t.same(g.datalines, recorded('rspamd-gtube').datalines, 'the message itself passed back unchanged (it is refused anyway)');

  for (const name of ['rspamd-ham', 'rspamd-nordns', 'rspamd-then-null']) {
    const ours = await replay(name, ['-store', 'memory:']);
    const theirs = recorded(name);
    t.same(theirs.results, ['proceed'], `${name}: filter-rspamd proceeds`);
    t.same(ours.results, ['proceed'], `${name}: so do we`);
    const status = ours.datalines.find((l) => l.startsWith('X-Spam-Status:'));
    t.match(status, /^X-Spam-Status: No, score=\d+\.\d required=6\.0 tests=/, `${name}: ${status} (rules only: no Bayes symbol)`);
    t.notOk(ours.datalines.some((l) => /^X-Spam(-Flag)?: /i.test(l)), `${name}: no spam mark`);
    t.same(ours.datalines.slice(-theirs.datalines.length), theirs.datalines, `${name}: then the message as filter-rspamd passed it`);
  }
  // filter-rspamd's own header fields (its add-header recording, score 1 / 150 from a settings
  // id): ours carry the same names in the rspamd dialect when the score is above -junkAt.
  const theirs = recorded('rspamd-add-header').datalines;
  const ours = await replay('rspamd-add-header', ['-store', 'memory:', '-headers', 'rspamd', '-junkAt', '-10', '-rejectAt', '150', '-greylistAt', 'off']);
  const names = (l: string[]) => l.filter((x) => /^X-Spam/.test(x)).map((x) => x.slice(0, x.indexOf(':')));
  t.same(names(ours.datalines), names(theirs), `the same fields: ${names(theirs).join(', ')}`);
  t.match(ours.datalines[1], /^X-Spam-Score: -?\d+\.\d \/ 150\.0$/, 'X-Spam-Score: score / reject threshold, as filter-rspamd');
  t.match(ours.datalines.slice(2).join('\n'), /^X-Spam-Status: Yes, score=-?\d+\.\d{3} required=150\.000\n\ttests=\[/, 'X-Spam-Status with tests=[...] on the next line');

  // A store learned with the CLI: the same ham now scored by Bayes.
  const store = join(dir, 'learned.db');
  const md = join(dir, 'train');
  for (const [cls, gen] of [['spam', spamText], ['ham', hamText]] as const) {
    const d = join(md, cls);
    mkdirSync(d, { recursive: true });
    for (let i = 0; i < 210; i++) writeFileSync(join(d, String(i)), gen(i));
    const l = await run([...SMTPD_FILTERS, 'learn', cls, '--store', store, '--maildir', d]);
    t.equal(l.status, 0, `learn ${cls}`);
  }
  const h = await replay('rspamd-ham', ['-store', store]);
  t.same(h.results, ['proceed']);
  const status = h.datalines.find((l) => l.startsWith('X-Spam-Status:'));
  t.match(status, /^X-Spam-Status: No, score=-?\d+\.\d required=6\.0 tests=.*BAYES_\d+/, `Bayes votes: ${status}`);
});
