// The Redis store against a real redis-server started here on 127.0.0.1 (random port) and
// on a UNIX socket, stopped at the end: same semantics as the file store, concurrent
// learners through separate connections, greylist, per-user sets, errors.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { RedisStore, redisOptions } from '../lib/store/redis.js';
import { openStore } from '../lib/store/index.js';
import { learnItem, SpamScanner } from '../lib/spam/score.js';
import { messageDigest } from '../lib/spam/digest.js';

const REDIS = ['/usr/bin/redis-server', '/usr/sbin/redis-server', '/usr/local/bin/redis-server'].find((p) => fs.existsSync(p));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function startRedis(dir: string): Promise<{ port: number; socket: string; proc: ChildProcess }> {
  const socket = path.join(dir, 'redis.sock');
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const proc = spawn(REDIS!, ['--port', String(port), '--bind', '127.0.0.1', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const ok = await new Promise<boolean>((resolve) => {
      let out = '';
      const timer = setTimeout(() => resolve(false), 10_000);
      proc.stdout!.on('data', (d) => {
        out += d;
        if (/Ready to accept connections/.test(out)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      proc.on('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ok) return { port, socket, proc };
    proc.kill('SIGKILL');
  }
  throw new Error('could not start redis-server');
}

const message = (n: number) =>
  Buffer.from(`From: s${n}@example.com\nTo: u@example.org\nSubject: offer ${n}\nMessage-ID: <r${n}@example.com>\n\ncommon words plus unique${n}\n`);

t.test('Redis store', { skip: REDIS ? false : 'redis-server not installed' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'storeredis-'));
  const { port, socket, proc } = await startRedis(dir);
  t.teardown(async () => {
    proc.kill('SIGTERM');
    await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.on('exit', r)));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const url = `redis://127.0.0.1:${port}/3`;

  t.test('URL forms', async (t) => {
    t.same(redisOptions('redis://127.0.0.1:6380/2'), { host: '127.0.0.1', port: 6380, db: 2 });
    t.same(redisOptions('redis://:s3cret@h/0'), { host: 'h', port: 6379, db: 0, password: 's3cret' });
    t.same(redisOptions('unix:///run/redis.sock?db=4'), { path: '/run/redis.sock', db: 4 });
    t.throws(() => redisOptions('redis://h/x'), { code: 'EUSAGE' });
    t.equal(new RedisStore('redis://:pw@127.0.0.1:1/0').location, 'redis://***@127.0.0.1:1/0', 'password hidden');
  });

  t.test('learn, idempotency, move, forget, per-user', async (t) => {
    const store = await openStore(url);
    t.teardown(() => store.close());
    t.equal(store.kind, 'redis');
    const s = new SpamScanner(store);
    const m = message(1);
    const tokens = learnItem(m).tokens;
    t.equal(await s.learn(m, 'spam'), 'learned');
    t.equal(await s.learn(m, 'spam'), 'already');
    let l = await store.lookup(tokens);
    t.same([l.nspam, l.nham], [1, 0]);
    t.ok(Array.from(l.spam).every((c) => c === 1));
    t.equal(await s.learn(m, 'ham'), 'moved');
    l = await store.lookup(tokens);
    t.same([l.nspam, l.nham], [0, 1]);
    t.ok(Array.from(l.ham).every((c) => c === 1) && Array.from(l.spam).every((c) => c === 0));
    t.equal(await store.learnedAs(messageDigest(m)), 'ham');
    t.equal(await s.learn(m, null), 'forgotten');
    t.equal(await s.learn(m, null), 'not-learned');
    const st = await store.stats();
    t.same([st.nspam, st.nham, st.tokens, st.messages], [0, 0, 0, 0]);
    t.equal(await s.learn(message(2), 'spam', 'Bob@Example.org'), 'learned');
    t.equal((await store.stats('bob@example.org')).nspam, 1, 'user keys are case-insensitive');
    t.equal((await store.stats()).nspam, 0);
    t.same(await (store as RedisStore).users(), ['bob@example.org']);
    t.same(await store.lookup([]), { nspam: 0, nham: 0, spam: new Uint32Array(0), ham: new Uint32Array(0) });
  });

  t.test('several connections learn at once: counts add up exactly', async (t) => {
    const clients = await Promise.all(Array.from({ length: 4 }, () => openStore(`redis://127.0.0.1:${port}/5`)));
    t.teardown(() => Promise.all(clients.map((c) => c.close())));
    await Promise.all(
      clients.map(async (c, k) => {
        for (let i = 0; i < 25; i++) await c.learn('spam', [learnItem(message(k * 100 + i))]);
        // Everyone also learns the same message: it must count once.
        await c.learn('spam', [learnItem(message(9999))]);
      }),
    );
    const st = await clients[0]!.stats();
    t.equal(st.nspam, 4 * 25 + 1);
    t.equal(st.messages, 101);
    const l = await clients[1]!.lookup(learnItem(message(5)).tokens);
    t.equal(Math.max(...l.spam), 101, 'shared tokens counted once per message');
    // Batch learn returns per-message outcomes.
    t.same(await clients[2]!.learn('ham', [learnItem(message(1)), learnItem(message(424242))]), ['moved', 'learned']);
  });

  t.test('UNIX socket and greylist', async (t) => {
    const store = await openStore(`unix://${socket}?db=6`);
    t.teardown(() => store.close());
    const opt = { minDelay: 300, window: 86400 };
    t.same(await store.greylist('abc', 1000, opt), { pass: false, firstSeen: 1000, retryIn: 300 });
    t.same(await store.greylist('abc', 1200, opt), { pass: false, firstSeen: 1000, retryIn: 100 });
    t.same(await store.greylist('abc', 1300, opt), { pass: true, firstSeen: 1000, retryIn: 0 });
    t.same(await store.greylist('abc', 1000 + 90000, opt), { pass: false, firstSeen: 91000, retryIn: 300 });
  });

  t.test('a server that is not there is a clear error', async (t) => {
    const port2 = await freePort();
    await t.rejects(openStore(`redis://127.0.0.1:${port2}/0`, { connectTimeout: 1000 }), { code: 'ECONN', message: /cannot connect to redis:\/\/127\.0\.0\.1/ });
  });
});
