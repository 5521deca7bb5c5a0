// lib/dns.ts against a dns2 server on 127.0.0.1 (random port), the only server these
// tests ever ask.
import t from 'tap';
import dns2 from 'dns2';
import {
  caresBackend,
  createResolver,
  isTemporary,
  mapErrorCode,
  parseNameserver,
  type DnsOptions,
  type DnsResult,
} from '../lib/dns.js';

const { Packet } = dns2;
type Resource = dns2.Packet.Resource;

interface Rule {
  rcode?: number;
  /** Answer after this many ms; Infinity = never (the client times out). */
  delayMs?: number;
  A?: { address: string; ttl: number }[];
  AAAA?: { address: string; ttl: number }[];
  PTR?: string[];
  TXT?: string[][];
}

// The zone: name → rule. A name not listed is NXDOMAIN; a listed name without records of
// the asked type is NODATA.
const zone = new Map<string, Rule>([
  ['a.test', { A: [{ address: '192.0.2.1', ttl: 60 }, { address: '192.0.2.2', ttl: 120 }], AAAA: [{ address: '2001:db8::1', ttl: 90 }] }],
  ['v4only.test', { A: [{ address: '192.0.2.3', ttl: 60 }] }],
  ['10.2.0.192.in-addr.arpa', { PTR: ['Mail.Example.ORG', 'mx2.example.org'] }],
  ['1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa', { PTR: ['v6.example.org'] }],
  ['sel._domainkey.example.org', { TXT: [['v=DKIM1; k=rsa; ', 'p=MIIBIjAN', 'BgkqhkiG'], ['second record']] }],
  ['servfail.test', { rcode: Packet.RCODE.SERVFAIL }],
  ['refused.test', { rcode: Packet.RCODE.REFUSED }],
  ['slow.test', { delayMs: Infinity, A: [{ address: '192.0.2.9', ttl: 60 }] }],
  ['late.test', { delayMs: 150, A: [{ address: '192.0.2.8', ttl: 60 }] }],
  ['short.test', { A: [{ address: '192.0.2.4', ttl: 1 }] }],
  ['long.test', { A: [{ address: '192.0.2.5', ttl: 604800 }] }],
]);
for (let i = 0; i < 20; i++) zone.set(`n${i}.bulk.test`, { delayMs: 100, A: [{ address: `198.51.100.${i}`, ttl: 60 }] });

/** Queries seen per "TYPE name", and how many were outstanding at once. */
const seen = new Map<string, number>();
let outstanding = 0;
let maxOutstanding = 0;
const timers = new Set<NodeJS.Timeout>();

function count(key: string): number {
  return seen.get(key) ?? 0;
}

const TYPE_NAMES = new Map<number, string>(Object.entries(Packet.TYPE).map(([k, v]) => [v as number, k]));

const server = dns2.createServer({
  udp: true,
  handle(request, send) {
    const q = request.questions[0]!;
    const name = q.name.toLowerCase();
    const type = TYPE_NAMES.get(q.type) ?? String(q.type);
    seen.set(`${type} ${name}`, count(`${type} ${name}`) + 1);
    const response = Packet.createResponseFromRequest(request);
    const rule = zone.get(name);
    if (!rule) response.header.rcode = Packet.RCODE.NXDOMAIN;
    else if (rule.rcode !== undefined) response.header.rcode = rule.rcode;
    else {
      const rr = (extra: Partial<Resource>, ttl = 60) =>
        response.answers.push({ name: q.name, type: q.type, class: Packet.CLASS.IN, ttl, ...extra } as Resource);
      if (type === 'A') for (const a of rule.A ?? []) rr({ address: a.address }, a.ttl);
      if (type === 'AAAA') for (const a of rule.AAAA ?? []) rr({ address: a.address }, a.ttl);
      if (type === 'PTR') for (const d of rule.PTR ?? []) rr({ domain: d });
      if (type === 'TXT') for (const d of rule.TXT ?? []) rr({ data: d } as unknown as Partial<Resource>);
    }
    const delay = rule?.delayMs ?? 0;
    if (delay === Infinity) return;
    outstanding++;
    maxOutstanding = Math.max(maxOutstanding, outstanding);
    const reply = () => {
      outstanding--;
      void send(response).catch(() => {});
    };
    if (delay === 0) return reply();
    const timer = setTimeout(() => {
      timers.delete(timer);
      reply();
    }, delay);
    timers.add(timer);
  },
});
// dns2's handler type does not include ours exactly; the listen result carries the port.
const bound = await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
const nameserver = `127.0.0.1:${(bound as { udp: { port: number } }).udp.port}`;
t.teardown(async () => {
  for (const tm of timers) clearTimeout(tm);
  await server.close();
});

function resolver(extra: DnsOptions = {}) {
  const r = createResolver({ servers: [nameserver], timeoutMs: 1000, ...extra });
  t.teardown(() => r.close());
  return r;
}

function ok(r: DnsResult): { values: string[]; ttl: number } {
  if (!r.ok) throw new Error(`expected an answer, got ${r.error}: ${r.message}`);
  return r;
}

t.test('A and AAAA with TTLs', async (t) => {
  const r = resolver();
  t.same(await r.a('a.test'), { ok: true, values: ['192.0.2.1', '192.0.2.2'], ttl: 60 }, 'smallest TTL of the RRset');
  t.same(await r.aaaa('A.TEST.'), { ok: true, values: ['2001:db8::1'], ttl: 90 }, 'case and trailing dot ignored');
});

t.test('PTR: every name, lower-cased', async (t) => {
  const r = resolver({ defaultTtl: 123 });
  t.same(await r.ptr('192.0.2.10'), { ok: true, values: ['mail.example.org', 'mx2.example.org'], ttl: 123 });
  t.same(await r.ptr('2001:db8::1'), { ok: true, values: ['v6.example.org'], ttl: 123 });
  t.same(await r.ptr('::ffff:192.0.2.10'), { ok: true, values: ['mail.example.org', 'mx2.example.org'], ttl: 123 },
    'mapped IPv6 asks in-addr.arpa (and hits the cache)');
  t.equal(count('PTR 10.2.0.192.in-addr.arpa'), 1);
});

t.test('TXT: character-strings joined per record', async (t) => {
  const r = resolver();
  const txt = ok(await r.txt('sel._domainkey.example.org'));
  t.same(txt.values.sort(), ['second record', 'v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG']);
  t.equal(txt.ttl, 300, 'TXT TTL unknown to c-ares: default');
});

t.test('negative answers and errors', async (t) => {
  const r = resolver();
  const nx = await r.a('missing.test');
  t.match(nx, { ok: false, error: 'nxdomain', temporary: false });
  t.notOk(isTemporary(nx));
  const nodata = await r.aaaa('v4only.test');
  t.match(nodata, { ok: false, error: 'nodata', temporary: false });
  t.match(await r.ptr('203.0.113.1'), { ok: false, error: 'nxdomain' });
  const sf = await r.a('servfail.test');
  t.match(sf, { ok: false, error: 'servfail', temporary: true });
  t.ok(isTemporary(sf));
  t.match(await r.a('refused.test'), { ok: false, error: 'refused', temporary: true });
  t.notOk(isTemporary(await r.a('a.test')));
});

t.test('bad input is a permanent error, never a throw or a query', async (t) => {
  const r = resolver();
  t.match(await r.ptr('not-an-ip'), { ok: false, error: 'error', temporary: false });
  t.match(await r.a('a..test'), { ok: false, error: 'error', temporary: false });
  t.match(await r.a(`${'x'.repeat(64)}.test`), { ok: false, error: 'error' });
  t.match(await r.a('sp ace.test'), { ok: false, error: 'error' });
  t.equal(r.stats().queriesSent, 0);
});

t.test('a slow server is a timeout at the configured bound', async (t) => {
  const r = resolver({ timeoutMs: 300 });
  const start = performance.now();
  const res = await r.a('slow.test');
  const ms = performance.now() - start;
  t.match(res, { ok: false, error: 'timeout', temporary: true });
  t.comment(`timeout reported after ${ms.toFixed(0)} ms (bound 300 ms)`);
  t.ok(ms < 4000, 'well before c-ares defaults (5 s × 4 tries)');
  t.equal(r.stats().timeouts, 1);
  // Timeouts are not cached: the next lookup asks again.
  const before = count('A slow.test');
  await r.a('slow.test');
  t.ok(count('A slow.test') > before, 'asked again after a timeout');
});

t.test('a late answer is reported as timeout but still cached', async (t) => {
  // c-ares may wait 1 s; we give the caller 60 ms. The answer comes at 150 ms.
  const r = resolver({ timeoutMs: 60, backend: caresBackend({ servers: [nameserver], timeoutMs: 1000 }) });
  t.match(await r.a('late.test'), { ok: false, error: 'timeout' });
  t.equal(r.stats().inFlight, 1, 'the slot stays taken until the backend settles');
  await new Promise((res) => setTimeout(res, 250));
  t.equal(r.stats().inFlight, 0);
  t.same(await r.a('late.test'), { ok: true, values: ['192.0.2.8'], ttl: 60 });
  t.equal(count('A late.test'), 1, 'the late answer was cached');
  t.match(r.stats(), { queriesSent: 1, timeouts: 1, cacheHits: 1 });
});

t.test('10 concurrent lookups of one name: 1 query at the server', async (t) => {
  zone.set('co.test', { delayMs: 100, A: [{ address: '192.0.2.77', ttl: 60 }] });
  const r = resolver();
  const results = await Promise.all(Array.from({ length: 10 }, () => r.a('co.test')));
  t.equal(count('A co.test'), 1);
  for (const res of results) t.same(res, { ok: true, values: ['192.0.2.77'], ttl: 60 });
  ok(results[0]!).values.push('mutated');
  t.same(ok(results[1]!).values, ['192.0.2.77'], 'callers get their own arrays');
  t.match(r.stats(), { queriesSent: 1, coalesced: 9, cacheMisses: 1 });
  // Concurrent failures coalesce too.
  const sf0 = count('A servfail.test');
  const fails = await Promise.all(Array.from({ length: 10 }, () => r.a('servfail.test')));
  t.equal(count('A servfail.test'), sf0 + 1);
  for (const f of fails) t.match(f, { ok: false, error: 'servfail' });
});

t.test('cache: TTL expiry with a fake clock, clamping, negative and error TTLs', async (t) => {
  let now = 1_000_000;
  const r = resolver({ now: () => now, minTtl: 10, maxTtl: 3600, negativeTtl: 120, errorTtl: 5 });
  const q0 = count('A a.test');
  t.same(await r.a('a.test'), { ok: true, values: ['192.0.2.1', '192.0.2.2'], ttl: 60 });
  now += 20_000;
  t.same(await r.a('a.test'), { ok: true, values: ['192.0.2.1', '192.0.2.2'], ttl: 40 }, 'remaining TTL from cache');
  t.equal(count('A a.test'), q0 + 1, 'served from cache');
  now += 40_001;
  t.same(await r.a('a.test'), { ok: true, values: ['192.0.2.1', '192.0.2.2'], ttl: 60 }, 'expired: asked again');
  t.equal(count('A a.test'), q0 + 2);

  t.equal(ok(await r.a('short.test')).ttl, 10, 'TTL 1 raised to minTtl');
  now += 9_000;
  await r.a('short.test');
  t.equal(count('A short.test'), 1, 'still cached at 9 s');
  t.equal(ok(await r.a('long.test')).ttl, 3600, 'a week lowered to maxTtl');

  await r.a('nowhere.test');
  now += 119_000;
  t.match(await r.a('nowhere.test'), { error: 'nxdomain' });
  t.equal(count('A nowhere.test'), 1, 'NXDOMAIN cached for negativeTtl');
  now += 2_000;
  await r.a('nowhere.test');
  t.equal(count('A nowhere.test'), 2, 'then asked again');

  const sf0 = count('A servfail.test');
  await r.a('servfail.test');
  now += 4_000;
  await r.a('servfail.test');
  t.equal(count('A servfail.test'), sf0 + 1, 'SERVFAIL cached for errorTtl');
  now += 2_000;
  await r.a('servfail.test');
  t.equal(count('A servfail.test'), sf0 + 2);
  t.ok(r.stats().cacheHits >= 4);
});

t.test('errorTtl 0: temporary errors are not cached', async (t) => {
  const r = resolver({ errorTtl: 0 });
  const sf0 = count('A refused.test');
  await r.a('refused.test');
  await r.a('refused.test');
  t.equal(count('A refused.test'), sf0 + 2);
});

t.test('bounded in flight: N+5 distinct names, max N → never more than N at the server', async (t) => {
  const N = 4;
  const r = resolver({ maxInFlight: N });
  outstanding = 0;
  maxOutstanding = 0;
  const names = Array.from({ length: N + 5 }, (_, i) => `n${i}.bulk.test`);
  const pending = names.map((n) => r.a(n));
  t.match(r.stats(), { inFlight: N, queued: 5 });
  const results = await Promise.all(pending);
  t.equal(results.filter((x) => x.ok).length, N + 5, 'every lookup answered');
  t.equal(maxOutstanding, N, `server saw at most ${N} outstanding`);
  t.match(r.stats(), { inFlight: 0, queued: 0, queriesSent: N + 5 });
});

t.test('the timeout includes time queued; a lookup that timed out in the queue is never sent', async (t) => {
  const r = resolver({ maxInFlight: 1, timeoutMs: 300 });
  const before = count('A a.test');
  const [first, second] = await Promise.all([r.a('slow.test'), r.a('a.test')]);
  t.match(first, { error: 'timeout' });
  t.match(second, { error: 'timeout' }, 'waited behind the slow query');
  t.equal(r.stats().queued, 0, 'abandoned waiter left the queue');
  // Once c-ares gives up on slow.test the slot frees; a.test was abandoned, not sent.
  await new Promise((res) => setTimeout(res, 400));
  t.equal(count('A a.test'), before, 'abandoned lookup never reached the server');
  t.same(ok(await r.a('a.test')).values, ['192.0.2.1', '192.0.2.2'], 'resolver usable afterwards');
});

t.test('close(): waiting callers get a timeout result', async (t) => {
  const r = createResolver({ servers: [nameserver], timeoutMs: 5000 });
  const p = r.a('slow.test');
  r.close();
  t.match(await p, { ok: false, error: 'timeout', message: 'resolver closed' });
});

t.test('injected backend', async (t) => {
  let calls = 0;
  const r = createResolver({
    backend: {
      async query(type, name) {
        calls++;
        if (name === 'boom.test') throw Object.assign(new Error('x'), { code: 'ECONNREFUSED' });
        return { values: [`${type}:${name}`] };
      },
      cancel() {},
    },
  });
  t.same(await r.txt('x.test'), { ok: true, values: ['TXT:x.test'], ttl: 300 });
  t.match(await r.a('boom.test'), { ok: false, error: 'error', temporary: true });
  t.equal(calls, 2);
});

t.test('mapErrorCode', async (t) => {
  t.same(mapErrorCode('ENOTFOUND'), { error: 'nxdomain', temporary: false });
  t.same(mapErrorCode('ENODATA'), { error: 'nodata', temporary: false });
  t.same(mapErrorCode('ESERVFAIL'), { error: 'servfail', temporary: true });
  t.same(mapErrorCode('EREFUSED'), { error: 'refused', temporary: true });
  t.same(mapErrorCode('ETIMEOUT'), { error: 'timeout', temporary: true });
  t.same(mapErrorCode('ECANCELLED'), { error: 'timeout', temporary: true });
  t.same(mapErrorCode('EBADNAME'), { error: 'error', temporary: false });
  t.same(mapErrorCode('ECONNREFUSED'), { error: 'error', temporary: true });
  t.same(mapErrorCode(undefined), { error: 'error', temporary: true });
});

t.test('parseNameserver', async (t) => {
  t.equal(parseNameserver('127.0.0.1'), '127.0.0.1');
  t.equal(parseNameserver('127.0.0.1:5353'), '127.0.0.1:5353');
  t.equal(parseNameserver('::1'), '::1');
  t.equal(parseNameserver('[::1]'), '::1');
  t.equal(parseNameserver('[2001:db8::53]:5353'), '[2001:db8::53]:5353');
  for (const bad of ['', 'localhost', '127.0.0.1:0', '127.0.0.1:70000', '127.0.0.1:x', '[::1', '[::1]x', '[1.2.3.4]:53', '2001:db8::53:']) {
    t.throws(() => parseNameserver(bad), /^bad nameserver/, JSON.stringify(bad));
  }
  t.throws(() => createResolver({ servers: ['dns.example'] }), /bad nameserver "dns\.example"/);
  t.throws(() => createResolver({ maxInFlight: 0 }), /maxInFlight/);
  t.throws(() => createResolver({ timeoutMs: -1 }), /timeoutMs/);
});
