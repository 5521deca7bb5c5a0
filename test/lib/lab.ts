// The end-to-end lab: a network namespace with only loopback, a hermetic DNS, the real
// smtpd 6.8.0p2 with our filters, and SMTP clients, all torn down afterwards. Needs root
// and `npm run build` (it runs dist/test/lib/*.js inside the namespace).
//
//   const lab = await Lab.create();                  t.teardown(() => lab.close());
//   await lab.startDns(zone(host('mail.good.example.org', '127.0.0.10')));
//   const smtpd = await lab.startSmtpd({ filters: [{ name: 'rdns', command: filterCommand('rdns') }] });
//   const r = await lab.smtp({ src: '127.0.0.10', to: ['alice@test.example'], messages: [msg] });
//   t.ok(r.ok, JSON.stringify(r.mismatches));  const [m] = await smtpd.waitDelivered('alice', 1);
//
// API (one line each):
//   Lab.create({ prefix?='osf', keep? }): Promise<Lab>       namespace <prefix>-<pid>-<n>, lo up
//   lab.name, lab.wd, lab.leftovers                           netns name, work dir, what close() had to kill
//   lab.exec(argv, { input?, timeoutMs?, env?, cwd?, inNamespace? }): Promise<ExecResult>
//   lab.spawn(argv, { env?, cwd?, logFile?, stdin?, inNamespace? }): LabProcess   ended by close()
//     (env is added to BASE_ENV: the lab never passes on tap's NODE_OPTIONS)
//   lab.startDns(zone): Promise<LabDns>                       zone server on 127.0.0.1:53; also lab.dns
//     lab.dns.setZone(zone), .queries(), .asked(name, type?), .clearQueries(), .stop()
//   lab.startSmtpd(SmtpdOptions): Promise<Smtpd>              waits for the banner unless waitReady:false
//     smtpd.waitReady({ timeoutMs }), .log(), .alive(), .stop(), .conf, .wd, .leftovers
//     smtpd.delivered(user): Delivered[] ({ data, junk, file }), .waitDelivered(user, n, ms)
//     smtpd.queue(), .waitQueueEmpty(ms)
//   lab.smtp(SessionOptions): Promise<SessionResult>          one session, via dist/test/lib/smtp-client.js
//   lab.smtpMany(SessionOptions[]): Promise<SessionResult[]>  all at once, one client process
//   lab.smtpScript(SessionScript[]): Promise<SessionResult[]> raw steps (smtp-client.ts)
//     result: { ok, codes, timings, replies[{ cmd, code, lines, at, ms }], mismatches, tls?,
//               closedByServer, error?, connectMs, ms }
//   lab.swaks(args, { timeoutMs? }): Promise<ExecResult>      swaks --server 127.0.0.1 unless given
//   lab.close(): Promise<void>                                stop all, kill leftovers, delete netns
//   filterCommand(name, args): string                         node <root>/dist/filters/<name>/main.js …
//   zone(...), host(name, ip), a(name, ...ips), ptr(ip, ...names), txt(name, ...strings), mx(...)
//   startZoneServer(zone, { port: 0 }): Promise<ZoneServer>  the same DNS in-process, for unit tests
//   body(msg), headerBlock(msg), headerValues(msg, name)      reading a Delivered's data
//   inAcceptanceOrder(delivered, replies)                    delivered messages in the order smtpd accepted them
//
// Good to know:
// - waitReady opens one session from PROBE_SRC (127.0.0.254, banner + QUIT): filters see
//   it; lab.dns.queries() leaves out its PTR lookup. smtpd gives no other sign that its
//   filters are ready (it holds sessions, not the listening socket).
// - The session client opens at most 4 connections at a time: smtpd listens with a
//   backlog of 5 (netns.ts explains what overflowing it does).
// - smtpd accepts lines of at most 65,534 bytes before the LF, CR included: 65,533 bytes
//   of content in a CRLF line; longer gets "500 5.0.0 Line too long".
// - Filters run as smtpd's default user opensmtpd. When the project is not readable by
//   it (a clone under /root), filters whose command is under projectRoot get `user root`
//   (logged once).
// - node:dns: Resolver.reverse() reports SERVFAIL and timeouts as ENOTFOUND (use
//   resolvePtr(reverseName(ip))); c-ares 1.34 shortens its timeout to the latency seen
//   (~1 s after a few fast answers, whatever `timeout` says).
//
// Cleanup: close() is the normal path; a process exit or SIGINT/SIGTERM/SIGHUP runs it
// synchronously, and Lab.create first removes namespaces of our prefix whose owner pid is
// dead. OSF_LAB_KEEP=1 (or keep: true) keeps the work dir for post-mortems.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabDns } from './lab-dns.js';
import { LabProcess, type ExitStatus, type SpawnOptions } from './lab-process.js';
import { createNamespace, onProcessExit, removeNamespace, sweepStale } from './netns.js';
import { BASE_ENV, distHelper, NODE } from './project.js';
import { buildSession, type SessionOptions, type SessionResult, type SessionScript } from './smtp-client.js';
import { Smtpd, type SmtpdOptions } from './smtpd.js';
import type { Zone } from './zone.js';

export { BASE_ENV, filterCommand, opensmtpdCanRead, projectRoot } from './project.js';
export { a, host, mx, ptr, reverseName, txt, zone, type Zone, type ZoneEntry } from './zone.js';
export { startZoneServer, type QueryLogEntry, type ZoneServer } from './dns-zone-server.js';
export { body, headerBlock, headerValues, inAcceptanceOrder, type Delivered } from './maildir.js';
export { dataPayload, type SessionOptions, type SessionResult, type SessionScript, type Step } from './smtp-client.js';
export { PROBE_SRC, Smtpd, type FilterSpec, type Listener, type SmtpdOptions } from './smtpd.js';
export { LabDns } from './lab-dns.js';
export { LabProcess } from './lab-process.js';

const IP = '/usr/sbin/ip';

export interface ExecOptions {
  input?: Buffer | string;
  /** default 120 s; then the process group is killed and timedOut is set */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** default true: run through `ip netns exec <ns>` */
  inNamespace?: boolean;
}

export interface ExecResult extends ExitStatus {
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
}

let counter = 0;
const swept = new Set<string>();

export class Lab {
  dns: LabDns | undefined;
  readonly smtpds: Smtpd[] = [];
  /** processes found in the namespace by close(), killed there */
  leftovers: string[] = [];
  private readonly procs = new Set<LabProcess>();
  private closed = false;
  private unhook: () => void = () => {};
  private tls: string | undefined;

  private constructor(readonly name: string, readonly wd: string, readonly keep: boolean) {}

  static async create(opts: { prefix?: string; keep?: boolean } = {}): Promise<Lab> {
    if (process.getuid?.() !== 0) throw new Error('Lab needs root (ip netns, mount, smtpd)');
    const prefix = opts.prefix ?? 'osf';
    if (!swept.has(prefix)) {
      swept.add(prefix);
      sweepStale(prefix);
    }
    const name = `${prefix}-${process.pid}-${++counter}`;
    const wd = mkdtempSync(join(tmpdir(), name + '-'));
    // Filters run as opensmtpd and read files from here (keys, their own config).
    chmodSync(wd, 0o755);
    const lab = new Lab(name, wd, opts.keep ?? process.env.OSF_LAB_KEEP === '1');
    lab.unhook = onProcessExit(() => lab.closeSync());
    try {
      createNamespace(name);
    } catch (e) {
      lab.closeSync();
      throw e;
    }
    return lab;
  }

  /** Start argv (inside the namespace unless inNamespace: false); close() ends it. */
  spawn(argv: string[], opts: SpawnOptions & { inNamespace?: boolean } = {}): LabProcess {
    if (this.closed) throw new Error(`lab ${this.name} is closed`);
    const full = opts.inNamespace === false ? argv : [IP, 'netns', 'exec', this.name, ...argv];
    const p = new LabProcess(full, { ...opts, env: { ...BASE_ENV, ...opts.env } });
    this.procs.add(p);
    void p.exited.finally(() => this.procs.delete(p)).catch(() => {});
    return p;
  }

  /** Run argv to completion; never rejects for a non-zero exit (look at code). */
  async exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const p = this.spawn(argv, { env: opts.env, cwd: opts.cwd, stdin: true, inNamespace: opts.inNamespace });
    p.child.stdin!.on('error', () => {}); // a program that exits without reading its input
    p.child.stdin!.end(opts.input ?? '');
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; void p.stop(1000); }, opts.timeoutMs ?? 120_000);
    const status = await p.exited;
    clearTimeout(timer);
    return { ...status, stdout: p.stdout(), stderr: p.stderr(), timedOut };
  }

  async startDns(z: Zone): Promise<LabDns> {
    if (this.dns?.proc.alive()) throw new Error('the lab DNS is running already: use lab.dns.setZone()');
    this.dns = await LabDns.start(this, z);
    return this.dns;
  }

  async startSmtpd(opts: SmtpdOptions = {}): Promise<Smtpd> {
    const wd = join(this.wd, `smtpd-${this.smtpds.length + 1}`);
    mkdirSync(wd);
    const s = new Smtpd(this, wd, opts);
    this.smtpds.push(s);
    await s.start();
    return s;
  }

  /** A self-signed certificate for smtpd's pki (only anonymous ECDH works anyway). */
  tlsDir(): string {
    if (!this.tls) {
      const dir = join(this.wd, 'tls');
      mkdirSync(dir);
      execFileSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
        '-nodes', '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt'), '-days', '30',
        '-subj', '/CN=mx.test.example'], { stdio: 'ignore' });
      this.tls = dir;
    }
    return this.tls;
  }

  async smtp(o: SessionOptions): Promise<SessionResult> {
    return (await this.smtpMany([o]))[0]!;
  }

  async smtpMany(list: SessionOptions[]): Promise<SessionResult[]> {
    return this.smtpScript(list.map(buildSession));
  }

  async smtpScript(sessions: SessionScript[], timeoutMs = 600_000): Promise<SessionResult[]> {
    const r = await this.exec([NODE, distHelper('smtp-client'), '-'], { input: JSON.stringify({ sessions }), timeoutMs });
    try {
      return (JSON.parse(r.stdout.toString()) as { sessions: SessionResult[] }).sessions;
    } catch {
      throw new Error(`smtp-client failed (${JSON.stringify({ code: r.code, signal: r.signal, timedOut: r.timedOut })}): ${r.stderr.toString()}`);
    }
  }

  async swaks(args: string[], { timeoutMs = 120_000 } = {}): Promise<ExecResult> {
    const server = args.some((a) => a === '--server' || a === '-s') ? [] : ['--server', '127.0.0.1'];
    return this.exec(['/usr/bin/swaks', ...server, ...args], { timeoutMs });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const s of [...this.smtpds].reverse()) if (s.proc) await s.stop();
    await this.dns?.stop();
    this.closed = true;
    await Promise.all([...this.procs].map((p) => p.stop(2000)));
    this.closeSync();
  }

  /** The part of close() that may run from an exit handler: kill, delete, remove. */
  private closeSync(): void {
    this.closed = true;
    for (const p of this.procs) p.signal('SIGKILL');
    this.leftovers.push(...removeNamespace(this.name));
    this.unhook();
    if (!this.keep) rmSync(this.wd, { recursive: true, force: true });
    else if (existsSync(this.wd)) process.stderr.write(`lab: kept ${this.wd}\n`);
  }
}
