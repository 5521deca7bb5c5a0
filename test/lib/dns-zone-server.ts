// A hermetic DNS server for tests: serves a Zone (zone.ts) over UDP and TCP with dns2,
// logs every query, and can answer late, fail or stay silent per name.
//
// In-process (unit tests; filters get `-nameserver 127.0.0.1:PORT`):
//   const dns = await startZoneServer(zone(host('a.example', '127.0.0.10')), { port: 0 });
//   … dns.port, dns.queries(), dns.setZone(z), await dns.close();
//
// As a program (the lab runs it inside a network namespace, on 127.0.0.1:53):
//   node dist/test/lib/dns-zone-server.js --zone zone.json [--log queries.jsonl]
//        [--host 127.0.0.1] [--port 53]
// It prints {"listening":PORT} once both sockets are bound, re-reads the zone file on
// SIGHUP and then prints {"reloaded":N}, and exits on SIGTERM.
import { appendFileSync, readFileSync, realpathSync } from 'node:fs';
import { isIPv6, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import dns2 from 'dns2';
import { canonicalName, type RecordType, type Zone, type ZoneEntry } from './zone.js';

const { Packet } = dns2;
type Resource = dns2.Packet.Resource;

/** Answered TXT "ok" and never logged: the lab asks it to know the server is up. */
export const HEALTH_NAME = '_health.osf-lab.invalid';

export interface QueryLogEntry {
  /** Unix time in ms when the query arrived. */
  t: number;
  name: string;
  type: string;
  proto: 'udp' | 'tcp';
  rcode: string;
  answers: number;
  delayMs?: number;
  dropped?: boolean;
}

export interface ZoneServer {
  host: string;
  port: number;
  setZone(zone: Zone): void;
  /** Every query so far, oldest first. */
  queries(): QueryLogEntry[];
  clearQueries(): void;
  close(): Promise<void>;
}

export interface ZoneServerOptions {
  /** 0 (default) picks a free port; UDP and TCP share it. */
  port?: number;
  host?: string;
  /** Also append each query as one JSON line to this file. */
  logFile?: string;
}

const TYPE_NAMES = new Map<number, string>(Object.entries(Packet.TYPE).map(([k, v]) => [v, k]));
const RCODE_NAMES = new Map<number, string>(
  Object.entries(Packet.RCODE).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]),
);
const ANSWER_TYPES: RecordType[] = ['A', 'AAAA', 'PTR', 'TXT', 'MX', 'CNAME'];

interface Answer {
  rcode: number;
  answers: Resource[];
  delayMs: number;
  drop: boolean;
}

/** What the zone says for (qname, qtype); pure, exported for tests of the zone itself. */
export function lookup(z: Zone, qname: string, qtype: number): Answer {
  const typeName = TYPE_NAMES.get(qtype) ?? String(qtype);
  const res: Answer = { rcode: Packet.RCODE.NOERROR, answers: [], delayMs: 0, drop: false };
  let name = canonicalName(qname);
  let entry: ZoneEntry | undefined = z[name];
  if (!entry) {
    // RFC 8020: a name with names below it exists (NODATA), anything else is NXDOMAIN.
    const below = Object.keys(z).some((k) => k.endsWith('.' + name));
    if (!below) res.rcode = Packet.RCODE.NXDOMAIN;
    return res;
  }
  if (!entry.for || entry.for.includes(typeName as RecordType)) {
    res.delayMs = entry.delayMs ?? 0;
    res.drop = entry.drop ?? false;
    if (entry.rcode) {
      res.rcode = Packet.RCODE[entry.rcode];
      return res;
    }
  }
  // Follow CNAMEs inside the zone, as a recursive resolver would (8 hops at most).
  for (let hop = 0; entry && hop < 8; hop++) {
    const want = qtype === Packet.TYPE.ANY ? ANSWER_TYPES : [typeName as RecordType];
    if (entry.CNAME && qtype !== Packet.TYPE.CNAME && qtype !== Packet.TYPE.ANY) {
      res.answers.push(record(name, 'CNAME', entry.CNAME, entry.ttl));
      name = canonicalName(entry.CNAME);
      entry = z[name];
      if (!entry) res.rcode = Packet.RCODE.NXDOMAIN;
      continue;
    }
    for (const t of want) for (const v of values(entry, t)) res.answers.push(record(name, t, v, entry.ttl));
    break;
  }
  return res;
}

function values(e: ZoneEntry, t: RecordType): unknown[] {
  if (t === 'CNAME') return e.CNAME ? [e.CNAME] : [];
  return (e[t] as unknown[] | undefined) ?? [];
}

function record(name: string, t: RecordType, v: unknown, ttl = 60): Resource {
  const r = { name, type: Packet.TYPE[t], class: Packet.CLASS.IN, ttl } as Resource;
  if (t === 'A' || t === 'AAAA') r.address = v as string;
  else if (t === 'PTR' || t === 'CNAME') r.domain = v as string;
  else if (t === 'MX') Object.assign(r, v);
  else r.data = (v as string[]).flatMap(splitCharacterString) as unknown as string[];
  return r;
}

/** A character-string carries at most 255 bytes (RFC 1035 §3.3); dns2 would silently
 * write a wrong length byte, so longer strings become several. */
function splitCharacterString(s: string): Buffer[] {
  const b = Buffer.from(s, 'utf8');
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += 255) out.push(b.subarray(i, i + 255));
  return out.length ? out : [Buffer.alloc(0)];
}

export async function startZoneServer(initial: Zone, opts: ZoneServerOptions = {}): Promise<ZoneServer> {
  const host = opts.host ?? '127.0.0.1';
  let z = initial;
  let log: QueryLogEntry[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const conns = new Set<Socket>();

  const handle = (proto: 'udp' | 'tcp') => (request: dns2.Packet, send: (r: dns2.Packet) => Promise<Buffer>) => {
    const q = request.questions[0];
    const response = Packet.createResponseFromRequest(request);
    // Look like the recursive resolver that resolv.conf points at.
    response.header.aa = 1;
    response.header.ra = 1;
    if (!q) {
      response.header.rcode = Packet.RCODE.FORMERR;
      void send(response).catch(() => {});
      return;
    }
    const ans: Answer = canonicalName(q.name) === HEALTH_NAME
      ? { rcode: 0, answers: [record(q.name, 'TXT', ['ok'])], delayMs: 0, drop: false }
      : lookup(z, q.name, q.type);
    response.header.rcode = ans.rcode;
    response.answers = ans.answers.map((r) => ({ ...r, name: q.name }) as Resource);
    if (canonicalName(q.name) !== HEALTH_NAME) {
      const entry: QueryLogEntry = {
        t: Date.now(), name: q.name, type: TYPE_NAMES.get(q.type) ?? String(q.type), proto,
        rcode: RCODE_NAMES.get(ans.rcode) ?? String(ans.rcode), answers: ans.answers.length,
      };
      if (ans.delayMs) entry.delayMs = ans.delayMs;
      if (ans.drop) entry.dropped = true;
      log.push(entry);
      if (opts.logFile) appendFileSync(opts.logFile, JSON.stringify(entry) + '\n');
    }
    if (ans.drop) return;
    const reply = () => void send(response).catch(() => {});
    if (!ans.delayMs) return reply();
    const timer = setTimeout(() => { timers.delete(timer); reply(); }, ans.delayMs);
    timers.add(timer);
  };

  const { udp, tcp } = await listenPair(host, opts.port ?? 0);
  udp.on('request', handle('udp'));
  tcp.on('request', handle('tcp'));
  tcp.on('connection', (s: Socket) => { conns.add(s); s.on('close', () => conns.delete(s)); });
  const port = udp.address().port;

  return {
    host,
    port,
    setZone(next) { z = next; },
    queries: () => [...log],
    clearQueries() { log = []; },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of conns) s.destroy();
      await Promise.all([
        new Promise<void>((r) => udp.close(() => r())),
        new Promise<void>((r) => tcp.close(() => r())),
      ]);
    },
  };
}

/** A UDP and a TCP server on the same port; with port 0, retry when the TCP twin of the
 * random UDP port is taken. */
async function listenPair(host: string, port: number): Promise<{ udp: dns2.UDPServer; tcp: dns2.TCPServer }> {
  for (let attempt = 0; ; attempt++) {
    const udp = dns2.createUDPServer({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    const tcp = dns2.createTCPServer();
    // Undecodable packets must not crash a test.
    udp.on('requestError', () => {});
    tcp.on('requestError', () => {});
    await udp.listen(port, host);
    try {
      // deps.md: `host`, not `address`: net.Server ignores `address` and would bind ::.
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ port: udp.address().port, host }, () => { tcp.off('error', reject); resolve(); });
      });
      return { udp, tcp };
    } catch (err) {
      await new Promise<void>((r) => udp.close(() => r()));
      if (port !== 0 || attempt >= 20) throw err;
    }
  }
}

function readZone(file: string): Zone {
  return JSON.parse(readFileSync(file, 'utf8')) as Zone;
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      zone: { type: 'string' }, log: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '53' },
    },
  });
  if (!v.zone) throw new Error('usage: dns-zone-server --zone FILE [--log FILE] [--host H] [--port P]');
  const zoneFile = v.zone;
  const opts: ZoneServerOptions = { host: v.host!, port: Number(v.port) };
  if (v.log) opts.logFile = v.log;
  const server = await startZoneServer(readZone(zoneFile), opts);
  let generation = 0;
  process.on('SIGHUP', () => {
    try {
      server.setZone(readZone(zoneFile));
      process.stdout.write(JSON.stringify({ reloaded: ++generation }) + '\n');
    } catch (err) {
      process.stdout.write(JSON.stringify({ reloadError: String(err) }) + '\n');
    }
  });
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(JSON.stringify({ listening: server.port }) + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`dns-zone-server: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
