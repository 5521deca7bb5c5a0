// The file store: format round trip, atomic replace, reload on change, the lock (stale
// detection), and several processes learning at once while another reads: counts add up
// exactly and no reader ever sees a torn file.
//
// This file is also its own child program (SPAM_STORE_CHILD=learner|reader), run with the
// same TypeScript loader tap uses.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FileStore, decodeDb, encodeDb } from '../lib/store/file.js';
import { FileLock } from '../lib/store/lock.js';
import { BayesDb } from '../lib/store/memory.js';
import { learnItem } from '../lib/spam/score.js';
import { openStore, StoreError } from '../lib/store/index.js';

const self = fileURLToPath(import.meta.url);

function message(n: number): Buffer {
  return Buffer.from(`From: sender${n}@example.com\nTo: u@example.org\nSubject: note ${n}\nMessage-ID: <n${n}@example.com>\nDate: Mon, 6 Jan 2003 10:00:00 +0000\n\nshared words here and unique${n} token${n}\n`);
}

async function child(role: string): Promise<void> {
  const file = process.env.STORE_FILE!;
  const store = new FileStore(file, { timeoutMs: 60_000 });
  if (role === 'learner') {
    const id = Number(process.env.LEARNER_ID);
    const count = Number(process.env.LEARN_COUNT);
    for (let i = 0; i < count; i++) {
      const n = id * 1000 + i;
      await store.learn(n % 2 ? 'ham' : 'spam', [learnItem(message(n))]);
    }
    return;
  }
  // Reader: poll until told to stop; every snapshot must be complete and monotone.
  const until = Date.now() + Number(process.env.READ_MS ?? 5000);
  let last = 0, reads = 0;
  const probe = learnItem(message(0)).tokens;
  while (Date.now() < until) {
    const s = await store.stats();
    const n = s.nspam + s.nham;
    if (n < last || n !== s.messages) throw new Error(`inconsistent snapshot: ${JSON.stringify(s)} after ${last}`);
    last = n;
    await store.lookup(probe);
    reads++;
    await new Promise((r) => setTimeout(r, 2));
  }
  process.stderr.write(`reader: ${reads} reads, last ${last}\n`);
}

function tsLoaderArgs(): string[] {
  return process.execArgv.filter((a) => a.includes('typescript') || a.includes('ts-node') || a.includes('tsx'));
}

function runChild(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [...tsLoaderArgs(), self], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stderr }));
  });
}

async function parent(): Promise<void> {
  const { default: t } = await import('tap');
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'storefile-'));
    t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
    return d;
  };

  t.test('encode/decode round trip, checksum', async (t) => {
    const db = new BayesDb();
    for (let n = 0; n < 50; n++) db.learn(n % 3 ? 'ham' : 'spam', learnItem(message(n)), 1000 + n);
    const buf = Buffer.concat(encodeDb(db));
    const back = decodeDb(buf);
    t.same(back.stats(), db.stats());
    const probe = learnItem(message(7)).tokens;
    t.same(back.lookup(probe), db.lookup(probe));
    t.same([...back.seen], [...db.seen]);
    const bad = Buffer.from(buf);
    bad[bad.length - 10] ^= 0xff;
    t.throws(() => decodeDb(bad), { code: 'EFORMAT' });
    t.throws(() => decodeDb(Buffer.from('not a store')), { code: 'EFORMAT' });
  });

  t.test('a set without tokens reads back (and one written by 0.1.0, whose CRC was 0)', async (t) => {
    const d = tmp();
    const file = path.join(d, 'empty.db');
    const store = new FileStore(file);
    await store.learn('spam', [learnItem(message(1))]);
    await store.learn(null, [learnItem(message(1))]);
    t.same(await new FileStore(file).stats(), { nspam: 0, nham: 0, tokens: 0, messages: 0, lastLearn: (await store.stats()).lastLearn });
    const buf = fs.readFileSync(file);
    buf.writeUInt32LE(0, buf.length - 4);
    fs.writeFileSync(file, buf);
    t.equal((await new FileStore(file).stats()).tokens, 0, 'legacy CRC accepted');
    buf.writeUInt32LE(12345, buf.length - 4);
    fs.writeFileSync(file, buf);
    await t.rejects(new FileStore(file).stats(), { code: 'EFORMAT' }, 'any other CRC is not');
  });

  t.test('a reader picks up each learn; a corrupt replacement is an error, and the next good file is read', async (t) => {
    const d = tmp();
    const file = path.join(d, 'r.db');
    const writer = new FileStore(file);
    for (let n = 0; n < 20; n++) await writer.learn(n % 2 ? 'ham' : 'spam', [learnItem(message(n))]);
    const reader = new FileStore(file);
    const probe = learnItem(message(3)).tokens;
    const before = await reader.lookup(probe);
    await writer.learn('spam', [learnItem(message(3))]);
    const after = await reader.lookup(probe);
    t.same([after.nspam, after.nham], [before.nspam + 1, before.nham - 1], 'the move is seen');
    t.ok(Array.from(after.spam).every((c, i) => c >= before.spam[i]!));
    const good = fs.readFileSync(file);
    const bad = Buffer.from(good);
    bad[bad.length - 100] ^= 0xff;
    fs.writeFileSync(file + '.new', bad);
    fs.renameSync(file + '.new', file);
    await t.rejects(reader.lookup(probe), { code: 'EFORMAT' });
    fs.writeFileSync(file + '.new', good);
    fs.renameSync(file + '.new', file);
    t.same(await reader.lookup(probe), after, 'read again once the file is whole');
  });

  t.test('atomic replace: no temp files left, readers pick up changes without restart', async (t) => {
    const d = tmp();
    const file = path.join(d, 'bayes.db');
    const writer = new FileStore(file);
    const reader = new FileStore(file);
    t.equal((await reader.stats()).nspam, 0, 'missing file reads as empty');
    await writer.learn('spam', [learnItem(message(1))]);
    t.equal((await reader.stats()).nspam, 1, 'reader sees the write');
    const ino1 = fs.statSync(file).ino;
    await writer.learn('ham', [learnItem(message(2))]);
    t.not(fs.statSync(file).ino, ino1, 'replaced by rename (new inode)');
    t.same([(await reader.stats()).nspam, (await reader.stats()).nham], [1, 1]);
    t.same(fs.readdirSync(d).sort(), ['bayes.db'], 'no temp or lock files left');
    // Idempotent learns do not rewrite the file.
    const st = fs.statSync(file);
    await writer.learn('ham', [learnItem(message(2))]);
    t.equal(fs.statSync(file).ino, st.ino);
    // A corrupt file is an error, never silently replaced.
    fs.writeFileSync(file, 'garbage');
    await t.rejects(new FileStore(file).stats(), { code: 'EFORMAT' });
    await t.rejects(new FileStore(file).learn('spam', [learnItem(message(3))]), { code: 'EFORMAT' });
    t.equal(fs.readFileSync(file, 'utf8'), 'garbage');
  });

  t.test('lock: exclusive, times out, breaks stale locks', async (t) => {
    const d = tmp();
    const lockPath = path.join(d, 'x.lock');
    const a = new FileLock(lockPath, { timeoutMs: 300 });
    await a.acquire();
    const b = new FileLock(lockPath, { timeoutMs: 300 });
    await t.rejects(b.acquire(), { code: 'ELOCK' });
    await a.release();
    await b.acquire();
    await b.release();
    t.notOk(fs.existsSync(lockPath));
    // A lock left by a dead process on this host is stale.
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.on('exit', r));
    fs.writeFileSync(lockPath, `${dead.pid} ${os.hostname()} ${Date.now()} deadbeef\n`);
    const c = new FileLock(lockPath, { timeoutMs: 2000 });
    await c.acquire();
    t.ok(c.held, 'stale lock of a dead pid broken');
    await c.release();
    // A lock of a live process is not stale until staleMs.
    fs.writeFileSync(lockPath, `${process.ppid} ${os.hostname()} ${Date.now()} cafe\n`);
    await t.rejects(new FileLock(lockPath, { timeoutMs: 200 }).acquire(), { code: 'ELOCK' });
    fs.writeFileSync(lockPath, `${process.ppid} ${os.hostname()} ${Date.now() - 3_600_000} cafe\n`);
    const e = new FileLock(lockPath, { timeoutMs: 2000, staleMs: 60_000 });
    await e.acquire();
    t.ok(e.held, 'old lock broken');
    await e.release();
    // Release only removes our own lock.
    const f = new FileLock(lockPath);
    await f.acquire();
    fs.writeFileSync(lockPath, `1 other 0 someoneelse\n`);
    await f.release();
    t.ok(fs.existsSync(lockPath), 'someone else\'s lock left alone');
  });

  t.test('several processes learn at once while one reads: counts add up exactly', async (t) => {
    const d = tmp();
    const file = path.join(d, 'shared.db');
    const learners = 4, each = 15;
    const env = { SPAM_STORE_CHILD: 'learner', STORE_FILE: file, LEARN_COUNT: String(each) };
    const reader = runChild({ SPAM_STORE_CHILD: 'reader', STORE_FILE: file, READ_MS: '4000' });
    const results = await Promise.all(Array.from({ length: learners }, (_, i) => runChild({ ...env, LEARNER_ID: String(i + 1) })));
    for (const r of results) t.equal(r.code, 0, `learner exit ${r.stderr}`);
    const rr = await reader;
    t.equal(rr.code, 0, `reader saw only complete, monotone snapshots (${rr.stderr.trim()})`);
    const s = await new FileStore(file).stats();
    t.equal(s.nspam + s.nham, learners * each, 'every learn counted');
    t.equal(s.messages, learners * each);
    t.equal(s.nspam, learners * Math.ceil(each / 2));
    // Shared tokens were incremented once per message by every process.
    const shared = learnItem(message(1001)).tokens;
    const store = new FileStore(file);
    const l = await store.lookup(shared);
    const maxCount = Math.max(...Array.from(l.spam).map((x, i) => x + l.ham[i]!));
    t.equal(maxCount, learners * each, 'a token in every message has count = number of messages');
    t.same(fs.readdirSync(d).sort(), ['shared.db'], 'no stray lock or temp files');
  });

  t.test('greylist on the file store', async (t) => {
    const d = tmp();
    const store = new FileStore(path.join(d, 'g.db'));
    const opt = { minDelay: 300, window: 86400 };
    const v1 = await store.greylist('k1', 1000, opt);
    t.same(v1, { pass: false, firstSeen: 1000, retryIn: 300 });
    t.same(await store.greylist('k1', 1100, opt), { pass: false, firstSeen: 1000, retryIn: 200 }, 'too early');
    t.same(await new FileStore(path.join(d, 'g.db')).greylist('k1', 1300, opt), { pass: true, firstSeen: 1000, retryIn: 0 }, 'retry after the delay passes (other process)');
    t.same(await store.greylist('k1', 1000 + 86401, opt), { pass: false, firstSeen: 87401, retryIn: 300 }, 'after the window it starts over');
    t.ok(fs.existsSync(path.join(d, 'g.db.greylist')));
  });

  t.test('openStore chooses by value', async (t) => {
    const d = tmp();
    t.equal((await openStore(path.join(d, 'a.db'))).kind, 'file');
    t.equal((await openStore('memory:')).kind, 'memory');
    await t.rejects(openStore('http://example.com/x'), { code: 'EUSAGE' });
    await t.rejects(openStore(''), StoreError);
    // Unwritable location: a clear store error on write.
    if (process.getuid?.() !== 0) {
      await t.rejects((await openStore('/proc/nope/a.db')).learn('spam', [learnItem(message(1))]), StoreError);
    }
  });
}

const role = process.env.SPAM_STORE_CHILD;
if (role) {
  child(role).then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`${role}: ${(e as Error).stack}\n`);
      process.exit(1);
    },
  );
} else {
  await parent();
}
