// The e2e harness itself (test/lib/lab.ts): namespace, hermetic DNS, the real smtpd with
// and without filters, the SMTP client, and cleanup. Needs root and `npm run build`.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Resolver } from 'node:dns/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import dns2 from 'dns2';
import {
  a, headerValues, host, Lab, projectRoot, ptr, reverseName, startZoneServer, txt, zone,
  type SessionResult, type Zone,
} from '../lib/lab.js';
import { cmdline, namespacePids, pidAlive as alive, sweepStale } from '../lib/netns.js';
import { dataPayload } from '../lib/smtp-client.js';

const IP = '/usr/sbin/ip';
const nsList = () => execFileSync(IP, ['netns', 'list'], { encoding: 'utf8' });
const why = (r: SessionResult) => JSON.stringify({ codes: r.codes, mismatches: r.mismatches, error: r.error });

// The fixture world (harness/README.md's client table, on test.example).
const WORLD: Zone = zone(
  host('mx.test.example', '127.0.0.1'),
  host('mail.good.example.org', '127.0.0.10'),
  // .11: no PTR at all (NXDOMAIN)
  ptr('127.0.0.12', 'mail.mismatch.example.org'), a('mail.mismatch.example.org', '127.0.0.99'),
  ptr('127.0.0.17', 'b.multi.example.org', 'a.multi.example.org'),
  a('a.multi.example.org', '127.0.0.17'), a('b.multi.example.org', '127.0.0.98'),
  { '18.0.0.127.in-addr.arpa': { rcode: 'SERVFAIL' } },
  host('slow.example.org', '127.0.0.30'),
  { '30.0.0.127.in-addr.arpa': { delayMs: 1500, for: ['PTR'] } },
  host('v6.good.example.org', '::1'),
  { 'half.example.org': { A: ['127.0.0.40'], drop: true, for: ['AAAA'] } },
);

t.test('zone server in-process, on a random loopback port (no root needed)', async (t) => {
  const z = zone(WORLD, txt('sel._domainkey.test.example', 'v=DKIM1; k=rsa; ', 'p=' + 'A'.repeat(300)),
    { 'gone.example.org': { drop: true }, 'no.example.org': { rcode: 'REFUSED' } });
  const s = await startZoneServer(z, { port: 0 });
  t.teardown(() => s.close());
  t.ok(s.port > 0, `port ${s.port}`);
  // deps.md pitfall: TCP must be bound to 127.0.0.1, not to every address.
  const ss = execFileSync('/usr/bin/ss', ['-Hltn', `sport = :${s.port}`], { encoding: 'utf8' });
  t.same(ss.trim().split('\n').map((l) => l.split(/\s+/)[3]), [`127.0.0.1:${s.port}`], 'TCP on 127.0.0.1 only');

  const r = new Resolver({ timeout: 400, tries: 1 });
  r.setServers([`127.0.0.1:${s.port}`]);
  const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: NodeJS.ErrnoException) => e.code);
  t.same(await r.reverse('127.0.0.17'), ['b.multi.example.org', 'a.multi.example.org'], 'two PTRs, in order');
  t.same(await r.reverse('::1'), ['v6.good.example.org'], 'ip6.arpa nibbles');
  t.same(await r.resolve4('mail.good.example.org', { ttl: true }), [{ address: '127.0.0.10', ttl: 60 }]);
  t.equal(await code(r.resolve6('mail.good.example.org')), 'ENODATA', 'no AAAA: NODATA');
  t.equal(await code(r.resolve4('nowhere.example.org')), 'ENOTFOUND', 'absent: NXDOMAIN');
  // Not reverse(): c-ares reports SERVFAIL and timeouts there as ENOTFOUND, like NXDOMAIN.
  t.equal(await code(r.resolvePtr(reverseName('127.0.0.18'))), 'ESERVFAIL');
  t.equal(await code(r.resolve4('no.example.org')), 'EREFUSED');
  t.equal(await code(r.resolve4('gone.example.org')), 'ETIMEOUT', 'drop: no answer at all');
  t.equal(await code(r.resolveTxt('_domainkey.test.example')), 'ENODATA', 'empty non-terminal: NODATA');
  const [key] = await r.resolveTxt('sel._domainkey.test.example');
  t.same(key!.map((s) => s.length), [16, 255, 47], 'character-strings kept, the 302-byte one split at 255');
  t.equal(await code(r.resolve6('half.example.org')), 'ETIMEOUT', 'drop only for AAAA');
  t.same(await r.resolve4('half.example.org'), ['127.0.0.40'], '… A still answers');

  const slow = new Resolver({ timeout: 5000, tries: 1 });
  slow.setServers([`127.0.0.1:${s.port}`]);
  const t0 = Date.now();
  t.same(await slow.resolvePtr(reverseName('127.0.0.30')), ['slow.example.org']);
  t.ok(Date.now() - t0 >= 1400, `PTR answered after ${Date.now() - t0} ms (delay 1500)`);

  const tcp = dns2.TCPClient({ dns: '127.0.0.1', port: s.port });
  const viaTcp = await tcp('mail.good.example.org', 'A');
  t.equal(viaTcp.answers[0]?.address, '127.0.0.10', 'TCP answers too');

  const q = s.queries();
  t.same(q.filter((e) => e.name === 'half.example.org').map((e) => e.type).sort(), ['A', 'AAAA']);
  t.ok(q.some((e) => e.proto === 'tcp'), 'TCP query logged');
  s.setZone(zone(a('mail.good.example.org', '127.0.0.77')));
  t.same(await r.resolve4('mail.good.example.org'), ['127.0.0.77'], 'setZone applies at once');
});

t.test('dataPayload: CRLF, dot-stuffing, bare CR kept', async (t) => {
  t.equal(dataPayload(Buffer.from('a\n.b\r\n..\nc\rd')).toString('latin1'), 'a\r\n..b\r\n...\r\nc\rd\r\n.\r\n');
  t.equal(dataPayload(Buffer.alloc(0)).toString(), '.\r\n');
});

const root = process.getuid?.() === 0;
t.test('the lab', { skip: root ? false : 'needs root (ip netns, mount, smtpd)' }, async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.close());

  await t.test('namespace: only loopback, our resolv.conf and hosts', async (t) => {
    t.match(lab.name, new RegExp(`^osf-${process.pid}-\\d+$`));
    t.match(nsList(), lab.name);
    t.equal(readFileSync(`/etc/netns/${lab.name}/resolv.conf`, 'utf8'), 'nameserver 127.0.0.1\n');
    const links = (await lab.exec([IP, '-o', 'link'])).stdout.toString().trim().split('\n');
    t.same(links.map((l) => l.split(':')[1]!.trim()), ['lo'], 'only lo');
    const addrs = (await lab.exec([IP, '-o', 'addr'])).stdout.toString();
    t.match(addrs, /inet 127\.0\.0\.1\/8/);
    t.match(addrs, /inet6 ::1\/128/);
    t.equal((await lab.exec(['/bin/cat', '/etc/resolv.conf'])).stdout.toString(), 'nameserver 127.0.0.1\n');
    t.equal((await lab.exec(['/bin/cat', '/etc/hosts'])).stdout.toString(), '127.0.0.1\tlocalhost\n');
  });

  await t.test('DNS inside the namespace', async (t) => {
    await lab.startDns(WORLD);
    // getent: /etc/hosts (only localhost) first, then DNS — reverse lookups reach the zone.
    const ge = await lab.exec(['/usr/bin/getent', 'hosts', '127.0.0.10']);
    t.match(ge.stdout.toString(), /mail\.good\.example\.org/, 'getent reverse lookup via the lab DNS');
    const ask = async (...q: [string, string][]) => {
      // A new Resolver per query: c-ares 1.34 (Node 20.20) shortens its timeout to the
      // latency it has seen (to ~1 s whatever `timeout` says), so a warm one gives up on
      // a 1.5 s answer.
      const script = 'const R = require("node:dns").promises.Resolver;' +
        '(async () => { const out = []; for (const [f, x] of JSON.parse(process.argv[1])) { const t0 = Date.now();' +
        ' const r = new R({ timeout: 3000, tries: 1 });' +
        ' try { out.push({ v: await r[f](x), ms: Date.now() - t0 }); } catch (e) { out.push({ v: e.code, ms: Date.now() - t0 }); } }' +
        ' console.log(JSON.stringify(out)); })()';
      const r = await lab.exec(['/usr/bin/node', '-e', script, JSON.stringify(q)]);
      return JSON.parse(r.stdout.toString()) as { v: unknown; ms: number }[];
    };
    lab.dns!.clearQueries();
    const [p10, a10, nx, sf, slow, half4] = await ask(['reverse', '127.0.0.10'], ['resolve4', 'mail.good.example.org'],
      ['resolvePtr', reverseName('127.0.0.11')], ['resolvePtr', reverseName('127.0.0.18')],
      ['resolvePtr', reverseName('127.0.0.30')], ['resolve4', 'half.example.org']);
    t.same(p10!.v, ['mail.good.example.org']);
    t.same(a10!.v, ['127.0.0.10']);
    t.equal(nx!.v, 'ENOTFOUND');
    t.equal(sf!.v, 'ESERVFAIL');
    t.same(slow!.v, ['slow.example.org']);
    t.ok(slow!.ms >= 1400, `slow PTR took ${slow!.ms} ms`);
    t.same(half4!.v, ['127.0.0.40']);
    t.same(lab.dns!.asked('mail.good.example.org').map((q) => q.type), ['A'], 'asked A only, no AAAA');
    t.same(lab.dns!.asked('11.0.0.127.in-addr.arpa', 'PTR').map((q) => q.rcode), ['NXDOMAIN']);

    await lab.dns!.setZone(zone(WORLD, a('new.example.org', '127.0.0.50')));
    const [n] = await ask(['resolve4', 'new.example.org']);
    t.same(n!.v, ['127.0.0.50'], 'setZone: the server has the new record when it resolves');
    await lab.dns!.setZone(WORLD);
  });

  await t.test('smtpd without a filter', async (t) => {
    const smtpd = await lab.startSmtpd();
    t.ok(smtpd.alive());
    t.match(smtpd.log(), /smtp connected address=127\.0\.0\.254/, 'the readiness probe was greeted');

    await t.test('byte-exact delivery: 8-bit, bare CR, leading dots, the longest lines', async (t) => {
      // Date and Message-ID present, so smtpd appends nothing to the header block.
      const head = 'From: <sender@example.org>\nTo: <alice@test.example>\nSubject: bytes\n' +
        'Date: Sun, 22 Nov 2026 12:00:00 +0000\nMessage-ID: <bytes@example.org>\n\n';
      const msg = Buffer.concat([
        Buffer.from(head), Buffer.from('latin1 \xe9\xff and broken utf-8 \xc3\x28 \x80\n', 'latin1'),
        Buffer.from('bare\rCR inside a line\n.one leading dot\n..two\n.\n... \n'),
        // 65,533 bytes + CRLF: smtpd's limit is 65,534 bytes before the LF, CR included.
        Buffer.alloc(65_533, 'x'), Buffer.from('\nend\n'),
      ]);
      const r = await lab.smtp({ src: '127.0.0.10', to: ['alice@test.example'], messages: [msg] });
      t.ok(r.ok, why(r));
      const [d] = await smtpd.waitDelivered('alice', 1);
      const got = d!.data;
      t.ok(got.subarray(got.length - msg.length).equals(msg), 'the delivered message ends with exactly the bytes sent');
      const added = got.subarray(0, got.length - msg.length).toString('latin1');
      t.match(added, /^Return-Path: <sender@example\.org>\nDelivered-To: alice@test\.example\nReceived: from client\.example \(mail\.good\.example\.org \[127\.0\.0\.10\]\)\n/);
      t.equal(headerValues(got, 'Subject')[0], 'bytes');
      t.notOk(d!.junk);

      const over = Buffer.concat([Buffer.from(head), Buffer.alloc(65_534, 'y'), Buffer.from('\n')]);
      const tooLong = await lab.smtp({ src: '127.0.0.10', messages: [over] });
      t.equal(tooLong.codes.at(-1), 500, '65,534 bytes + CRLF: 500 Line too long');
      // Raw: a line ended by a bare LF may have 65,534 bytes.
      const raw = Buffer.concat([Buffer.from(head.replace(/\n/g, '\r\n')), Buffer.alloc(65_534, 'z'), Buffer.from('\n.\r\n')]);
      const r2 = await lab.smtp({ src: '127.0.0.10', to: ['bob@test.example'], messages: [raw], raw: true });
      t.ok(r2.ok, why(r2));
      const [b] = await smtpd.waitDelivered('bob', 1);
      t.ok(b!.data.includes(Buffer.concat([Buffer.from('\n'), Buffer.alloc(65_534, 'z'), Buffer.from('\n')])), 'raw 65,534-byte line delivered whole');
    });

    await t.test('50 concurrent sessions from one client process', async (t) => {
      const before = { alice: smtpd.delivered('alice').length, carol: smtpd.delivered('carol').length };
      const sessions = Array.from({ length: 50 }, (_, i) => ({
        src: `127.0.0.${100 + i}`, to: [i % 2 ? 'alice@test.example' : 'carol@test.example'],
        messages: [`Subject: concurrent ${i}\nMessage-ID: <c${i}@example.org>\n\nsession ${i}\n`],
      }));
      const t0 = Date.now();
      const rs = await lab.smtpMany(sessions);
      t.comment(`50 sessions in ${Date.now() - t0} ms; slowest ${Math.max(...rs.map((r) => r.ms))} ms`);
      t.equal(rs.filter((r) => r.ok).length, 50, rs.filter((r) => !r.ok).map(why).join('\n'));
      const alice = await smtpd.waitDelivered('alice', before.alice + 25);
      const carol = await smtpd.waitDelivered('carol', before.carol + 25);
      const subjects = [...alice, ...carol].map((d) => headerValues(d.data, 'Subject')[0]).filter((s) => s?.startsWith('concurrent'));
      t.equal(new Set(subjects).size, 50, 'every session delivered its own message');
      await smtpd.waitQueueEmpty();
    });

    await t.test('STARTTLS (anonymous ECDH) and AUTH PLAIN on 587', async (t) => {
      const msg = ['Subject: submitted\n\nhello\n'];
      const r = await lab.smtp({ port: 587, tls: true, auth: { user: 'bob', pass: 'secret-bob' }, to: ['carol@test.example'], messages: msg });
      t.ok(r.ok, why(r));
      t.equal(r.tls?.cipher, 'AECDH-AES256-SHA');
      t.match(r.replies.find((x) => x.cmd.startsWith('AUTH'))!.lines[0], /^235 /);
      const bad = await lab.smtp({ port: 587, tls: true, auth: { user: 'bob', pass: 'wrong' }, messages: [] });
      t.equal(bad.codes.at(-2), 535, 'wrong password: 535');
      const plain = await lab.smtpScript([{ port: 587, steps: [{ read: true }, { send: 'EHLO x' }, { send: 'AUTH PLAIN AGJvYgBzZWNyZXQtYm9i' }, { send: 'MAIL FROM:<a@example.org>' }, { send: 'QUIT' }] }]);
      t.same(plain[0]!.codes, [220, 250, 503, 530, 221], 'no TLS: AUTH 503, MAIL 530');
      const onPort25 = await lab.smtp({ src: '127.0.0.10', tls: true, messages: msg });
      t.ok(onPort25.ok, 'STARTTLS on 25 too: ' + why(onPort25));
    });

    await t.test('swaks, cut mid-DATA, IPv6, NXDOMAIN sender', async (t) => {
      const sw = await lab.swaks(['--local-interface', '127.0.0.10', '--from', 'x@example.org', '--to', 'postmaster@test.example']);
      t.equal(sw.code, 0, sw.stdout.toString());
      const cut = await lab.smtp({ src: '127.0.0.11', messages: ['Subject: cut\n\n' + 'line\n'.repeat(100)], cutAfter: 200, cut: 'rst' });
      t.equal(cut.codes.at(-1), 354);
      const v6 = await lab.smtp({ src: '::1', messages: ['Subject: v6\n\nhi\n'], to: ['postmaster@test.example'] });
      t.ok(v6.ok, why(v6));
      const pm = await smtpd.waitDelivered('postmaster', 2);
      t.match(pm.find((m) => /^Subject: v6$/m.test(m.data.toString()))!.data.toString(), /Received: from client\.example \(v6\.good\.example\.org \[IPv6:::1\]\)|\[::1\]/);
      t.match(smtpd.log(), /smtp connected address=127\.0\.0\.11 host=<unknown>/);
      const rejected = await lab.smtp({ src: '127.0.0.10', to: ['someone@elsewhere.example'], messages: ['x\n'] });
      t.equal(rejected.codes[3], 550, 'other domains: 550');
      t.same(rejected.codes.slice(4), [503, 221], 'DATA refused, so the payload was not sent as commands');
    });

    await smtpd.stop();
    t.notOk(smtpd.alive());
    t.same(smtpd.leftovers, [], 'smtpd left no process behind');
  });

  await t.test('smtpd with filters: rDNS as smtpd reports it, a chain with dkimsign, junk', async (t) => {
    // DKIM key for filter-dkimsign (C peer), published in the lab DNS as split TXT strings.
    const key = join(lab.wd, 'dkim.key');
    execFileSync('/usr/bin/openssl', ['genrsa', '-out', key, '2048'], { stdio: 'ignore' });
    chmodSync(key, 0o644);
    const pub = execFileSync('/usr/bin/openssl', ['rsa', '-in', key, '-pubout', '-outform', 'DER'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString('base64');
    await lab.dns!.setZone(zone(WORLD, txt('lab._domainkey.test.example', 'v=DKIM1; k=rsa; ', 'p=' + pub.slice(0, 200), pub.slice(200))));

    const pass = `/usr/bin/node ${join(projectRoot, 'dist', 'test', 'lib', 'passthrough-filter.js')}`;
    const smtpd = await lab.startSmtpd({
      junk: true,
      filters: [
        { name: 'pass', command: pass },
        { name: 'dkim', command: `filter-dkimsign -d test.example -s lab -k ${key}` },
      ],
    });
    const clients = ['127.0.0.10', '127.0.0.11', '127.0.0.12', '127.0.0.17', '127.0.0.18', '127.0.0.30', '::1'];
    const rs = await lab.smtpMany(clients.map((src) => ({ src, messages: [] })));
    t.equal(rs.filter((r) => r.ok).length, clients.length, rs.map(why).join('\n'));
    const seen = new Map<string, string>();
    for (const m of smtpd.log().matchAll(/pass: link-connect \S+ rdns=(\S*) fcrdns=(\S+) src=(\S+)/g)) {
      seen.set(m[3]!.replace(/:\d+$/, ''), `${m[1]} ${m[2]}`);
    }
    t.same(Object.fromEntries(clients.map((c) => [c, seen.get(c.includes(':') ? `[${c}]` : c)])), {
      '127.0.0.10': 'mail.good.example.org pass',
      '127.0.0.11': '<unknown> fail',
      '127.0.0.12': 'mail.mismatch.example.org fail',
      '127.0.0.17': 'b.multi.example.org fail',
      '127.0.0.18': '<unknown> fail',
      '127.0.0.30': 'slow.example.org pass',
      '::1': 'v6.good.example.org pass',
    }, 'link-connect rdns/fcrdns, as smtpd resolved them through the lab DNS');
    const slow = rs[clients.indexOf('127.0.0.30')]!;
    t.ok(slow.timings[0]! >= 1400 && slow.timings[0]! < 15_000, `banner after the 1500 ms PTR delay: ${slow.timings[0]} ms`);

    const msg = Buffer.from('From: <alice@test.example>\nTo: <bob@test.example>\nSubject: signed\n' +
      'Date: Sun, 22 Nov 2026 12:00:00 +0000\nMessage-ID: <signed@test.example>\n\n.dot\nutf-8 \xc3\xa9\n', 'latin1');
    const r = await lab.smtp({ src: '127.0.0.10', to: ['bob@test.example'], messages: [msg] });
    t.ok(r.ok, why(r));
    const spam = Buffer.from('From: <x@example.org>\nX-Spam: Yes\nSubject: junk\n\nbuy\n');
    t.ok((await lab.smtp({ src: '127.0.0.10', to: ['carol@test.example'], messages: [spam] })).ok);
    const [signed] = await smtpd.waitDelivered('bob', 1);
    t.ok(signed!.data.subarray(signed!.data.length - msg.length).equals(msg), 'the chain passed the body through unchanged');
    t.equal(headerValues(signed!.data, 'DKIM-Signature').length, 1);
    const verify = await lab.exec(['/usr/bin/dkimverify'], { input: signed!.data });
    t.match(verify.stdout.toString(), /signature ok/, 'dkimverify, with the key from the lab DNS');
    t.ok(lab.dns!.asked('lab._domainkey.test.example', 'TXT').length >= 1);
    const [junk] = await smtpd.waitDelivered('carol', 1);
    t.ok(junk!.junk, 'X-Spam: Yes went to .Junk');
    await smtpd.stop();
    t.same(smtpd.leftovers, [], 'both filters exited with smtpd');
  });

  await t.test('waitReady: a filter that never sends register|ready', async (t) => {
    const smtpd = await lab.startSmtpd({ filters: [{ name: 'mute', command: '/bin/sleep 600', user: 'root' }], waitReady: false });
    await t.rejects(smtpd.waitReady({ timeoutMs: 3000 }), /did not greet within 3000 ms[^]*smtpd log ends with/);
    t.ok(smtpd.alive(), 'smtpd itself keeps running');
    await smtpd.stop();
    // sleep ignores its stdin closing; the intermediate smtpd process waits for it.
    t.ok(smtpd.leftovers.some((l) => / \/bin\/sleep 600$/.test(l)), `stop() killed the filter: ${smtpd.leftovers.join(', ')}`);
    t.same(smtpd.leftovers.map((l) => Number(l.split(' ')[0])).filter(alive), [], 'and they are gone');
  });
});

t.test('cleanup', { skip: root ? false : 'needs root' }, async (t) => {
  await t.test('close() removes namespace, /etc/netns dir, work dir and every process', async (t) => {
    const lab = await Lab.create();
    await lab.startDns(WORLD);
    const smtpd = await lab.startSmtpd({ filters: [{ name: 'mute', command: '/bin/sleep 600' }], waitReady: false });
    // smtpd is started: wait for it to have forked the filter.
    for (let i = 0; i < 200 && !namespacePids(lab.name).some((p) => cmdline(p) === '/bin/sleep 600'); i++) await sleep(50);
    const pids = namespacePids(lab.name);
    t.ok(pids.some((p) => cmdline(p) === '/bin/sleep 600'), `${pids.length} processes in the namespace, the filter among them`);
    await lab.close();
    t.notMatch(nsList(), lab.name);
    t.notOk(existsSync(`/etc/netns/${lab.name}`));
    t.notOk(existsSync(lab.wd));
    t.same(pids.filter(alive), [], 'all of them ended');
    t.notOk(smtpd.alive());
  });

  // A test process that dies: by a signal (its exit handler cleans up), or by SIGKILL
  // (nothing runs; the next Lab.create of the prefix sweeps).
  const child = (prefix: string) => {
    const script = `import { Lab } from ${JSON.stringify(join(projectRoot, 'dist/test/lib/lab.js'))};` +
      `const lab = await Lab.create({ prefix: ${JSON.stringify(prefix)} }); await lab.startDns({});` +
      'console.log(lab.name + " " + lab.wd); setInterval(() => {}, 1000);';
    const dir = mkdtempSync(join(tmpdir(), 'lab-child-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'child.mjs');
    writeFileSync(file, script);
    // Under tap's environment (NODE_OPTIONS, signal-exit), as a real test process is.
    const p = spawn('/usr/bin/node', [file], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => { if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL'); });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const closed = new Promise<string>((resolve) => {
      const timer = setTimeout(() => { p.kill('SIGKILL'); resolve('still running after 15 s'); }, 15_000);
      p.once('close', (code, signal) => { clearTimeout(timer); resolve(`exit ${code ?? signal}`); });
    });
    return new Promise<{ p: typeof p; name: string; wd: string; closed: Promise<string> }>((resolve, reject) => {
      p.stdout.once('data', (d: Buffer) => {
        const [name, wd] = d.toString().trim().split(' ') as [string, string];
        resolve({ p, name, wd, closed });
      });
      void closed.then((how) => reject(new Error(`child ended before its lab was up (${how}): ${err}`)));
    });
  };

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    await t.test(`${sig} to the test process: its exit handler removes the lab`, async (t) => {
      const { p, name, wd, closed } = await child(`osfsig${sig.slice(3).toLowerCase()}${process.pid}`);
      const pids = namespacePids(name);
      t.ok(pids.length >= 1);
      p.kill(sig);
      t.equal(await closed, `exit ${sig}`, 'it died of the signal');
      t.notMatch(nsList(), name);
      t.notOk(existsSync(`/etc/netns/${name}`));
      t.notOk(existsSync(wd));
      t.same(pids.filter(alive), []);
    });
  }

  await t.test('SIGKILL: the stale namespace is swept by owner pid', async (t) => {
    const { p, name, wd, closed } = await child(`osfkill${process.pid}`);
    const pids = namespacePids(name);
    p.kill('SIGKILL');
    await closed;
    t.match(nsList(), name, 'left behind');
    t.same(sweepStale(`osfkill${process.pid}`), [name]);
    t.notMatch(nsList(), name);
    t.notOk(existsSync(`/etc/netns/${name}`));
    t.notOk(existsSync(wd));
    t.same(pids.filter(alive), [], 'its DNS server was killed');
  });
});
