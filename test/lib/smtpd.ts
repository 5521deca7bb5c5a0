// The real smtpd (Debian 12's OpenSMTPD 6.8.0p2) inside a lab: its work dir, a
// generated smtpd.conf, start/ready/stop, and what it delivered.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Lab } from './lab.js';
import { LabProcess, tail, type ExitStatus } from './lab-process.js';
import { readMaildir, type Delivered } from './maildir.js';
import { cmdline, descendants, killPids, pidAlive } from './netns.js';
import { opensmtpdCanRead, projectRoot } from './project.js';

const SMTPD = '/usr/sbin/smtpd';
const OPENSSL = '/usr/bin/openssl';
const NOBODY = 65534;

/** The source address of waitReady's greeting probe (filters see this session). */
export const PROBE_SRC = '127.0.0.254';

export interface FilterSpec {
  name: string;
  /** what proc-exec runs through /bin/sh -c (no double quotes; see filterCommand) */
  command: string;
  user?: string;
  group?: string;
}

/** smtp: 127.0.0.1:25, smtp6: [::1]:25, submission: 127.0.0.1:587 (STARTTLS + AUTH). */
export type Listener = 'smtp' | 'smtp6' | 'submission';

export interface SmtpdOptions {
  /** A whole smtpd.conf; ${WD} becomes the work dir, which holds tls/tls.{crt,key}
   * (pki), tables/creds, tables/users and maildir/. Otherwise one is built from below. */
  config?: string;
  /** hostname (UTS namespace) and pki name; default mx.test.example */
  hostname?: string;
  /** the domain delivered locally; default test.example (anything else: 550) */
  domain?: string;
  /** proc-exec filters, chained in this order */
  filters?: FilterSpec[];
  /** listeners the filter (chain) is attached to; default all */
  filterOn?: Listener[];
  /** maildir users, delivered as uid 65534; default alice bob carol postmaster */
  users?: string[];
  /** AUTH users of port 587; default alice/secret-alice, bob/secret-bob */
  auth?: Record<string, string>;
  /** `maildir … junk`: messages with X-Spam: Yes go to .Junk */
  junk?: boolean;
  /** lines added before the listeners */
  extraConf?: string;
  /** smtpd -T flags; default ['filters'] */
  trace?: string[];
  /** smtpd's (and so the filters') environment, added to BASE_ENV */
  env?: Record<string, string>;
  /** Directories laid over host paths in smtpd's private mount namespace only, as
   * read-only overlayfs mounts: `dir`'s entries are added to those of `over`, and hide
   * the ones of the same name. test/e2e/package.test.ts shows smtpd an extracted .deb
   * this way; the host's paths never change. Paths cannot contain ':' or ','. */
  overlays?: { dir: string; over: string }[];
  /** wait for the banner (default); false to call waitReady yourself */
  waitReady?: boolean;
  readyTimeoutMs?: number;
}

export class Smtpd {
  readonly hostname: string;
  readonly domain: string;
  readonly conf: string;
  proc!: LabProcess;
  /** processes of this smtpd still alive after it exited (killed by stop) */
  leftovers: string[] = [];

  constructor(readonly lab: Lab, readonly wd: string, private readonly opts: SmtpdOptions) {
    this.hostname = opts.hostname ?? 'mx.test.example';
    this.domain = opts.domain ?? 'test.example';
    this.conf = join(wd, 'smtpd.conf');
  }

  /** Write the work dir and config, start smtpd, and (unless waitReady: false) wait. */
  async start(): Promise<void> {
    this.prepare();
    this.spawn();
    if (this.opts.waitReady !== false) await this.waitReady({ timeoutMs: this.opts.readyTimeoutMs ?? 20_000 });
  }

  private prepare(): void {
    const wd = this.wd;
    for (const d of ['spool', 'run', 'tables', 'home', 'tls']) mkdirSync(join(wd, d), { recursive: true });
    mkdirSync(join(wd, 'maildir'));
    // The MDA runs as the delivery user (nobody) and creates <user>/ itself.
    chmodSync(join(wd, 'maildir'), 0o1777);
    chmodSync(wd, 0o755);
    for (const f of ['tls.crt', 'tls.key']) copyFileSync(join(this.lab.tlsDir(), f), join(wd, 'tls', f));
    // A private key readable by root only, as the reference harness keeps it.
    chmodSync(join(wd, 'tls', 'tls.key'), 0o600);
    const auth = this.opts.auth ?? { alice: 'secret-alice', bob: 'secret-bob' };
    const creds = Object.entries(auth).map(([u, pw]) =>
      `${u} ${execFileSync(OPENSSL, ['passwd', '-6', '-salt', `lab${u}`.slice(0, 16), pw], { encoding: 'utf8' }).trim()}\n`);
    writeFileSync(join(wd, 'tables', 'creds'), creds.join(''), { mode: 0o600 });
    const users = this.opts.users ?? ['alice', 'bob', 'carol', 'postmaster'];
    writeFileSync(join(wd, 'tables', 'users'), users.map((u) => `${u} ${NOBODY}:${NOBODY}:${join(wd, 'home')}\n`).join(''));
    const text = this.opts.config !== undefined ? this.opts.config.replaceAll('${WD}', wd) : this.configText();
    writeFileSync(this.conf, text);
  }

  /** The generated smtpd.conf (harness/README.md "Generated config"). */
  configText(): string {
    const { wd, hostname: h } = this;
    const filters = this.opts.filters ?? [];
    const L = [
      '# generated by test/lib/smtpd.ts',
      `pki ${h} cert "${wd}/tls/tls.crt"`,
      `pki ${h} key "${wd}/tls/tls.key"`,
      `table creds file:${wd}/tables/creds`,
      `table users file:${wd}/tables/users`,
      // Debian's 6.8.0p2 on OpenSSL 3 fails every certificate handshake (its privsep key
      // engine cannot sign); anonymous ECDH needs no signature (harness/README.md "TLS").
      'smtp ciphers "HIGH:aNULL:!MD5:@SECLEVEL=0"',
    ];
    for (const f of filters) L.push(filterLine(f));
    let attach = '';
    if (filters.length === 1) attach = ` filter "${filters[0]!.name}"`;
    if (filters.length > 1) {
      L.push(`filter "lab-chain" chain { ${filters.map((f) => `"${f.name}"`).join(', ')} }`);
      attach = ' filter "lab-chain"';
    }
    if (this.opts.extraConf) L.push(this.opts.extraConf);
    const on = new Set(this.opts.filterOn ?? ['smtp', 'smtp6', 'submission']);
    const f = (l: Listener) => (on.has(l) ? attach : '');
    const common = `pki ${h} hostname ${h}`;
    L.push(
      `listen on 127.0.0.1 port 25 tls ${common}${f('smtp')}`,
      `listen on ::1 port 25 tls ${common}${f('smtp6')}`,
      `listen on 127.0.0.1 port 587 tls-require ${common} auth <creds>${f('submission')}`,
      `action "deliver" maildir "${wd}/maildir/%{user.username}"${this.opts.junk ? ' junk' : ''} userbase <users>`,
      `match from any for domain "${this.domain}" action "deliver"`,
    );
    return L.join('\n') + '\n';
  }

  private spawn(): void {
    // The queue (/var/spool/smtpd) and control socket (/run/smtpd.sock) paths are compiled
    // into 6.8.0p2: give smtpd private bind mounts over them, in the mount namespace that
    // `ip netns exec` creates; the UTS namespace sets the name smtpd greets with.
    const overlays = this.opts.overlays ?? [];
    for (const o of overlays) if (/[:,]/.test(o.dir + o.over)) throw new Error(`overlay paths cannot contain ':' or ',': ${o.dir} ${o.over}`);
    const script = 'hostname "$1" && mount --bind "$2" /var/spool && mount --bind "$3" /run && shift 3 && ' +
      overlays.map(() => 'mount -t overlay -o "lowerdir=$1:$2" lab-overlay "$2" && shift 2 && ').join('') + 'exec "$@"';
    const argv = [SMTPD, '-d', '-v', ...(this.opts.trace ?? ['filters']).flatMap((t) => ['-T', t]), '-f', this.conf];
    this.proc = this.lab.spawn(
      ['/usr/bin/unshare', '--uts', '/bin/sh', '-c', script, 'lab-smtpd', this.hostname,
        join(this.wd, 'spool'), join(this.wd, 'run'), ...overlays.flatMap((o) => [o.dir, o.over]), ...argv],
      { env: this.opts.env, cwd: this.wd, logFile: join(this.wd, 'smtpd.log') },
    );
  }

  /** smtpd's -d -v output so far. */
  log(): string {
    return this.proc.output();
  }

  alive(): boolean {
    return this.proc.alive();
  }

  /** Wait until every listener is bound, then until smtpd greets a probe session from
   * PROBE_SRC. smtpd binds its sockets before its filters are ready, but holds every
   * session (no banner) until all of them have sent register|ready. */
  async waitReady({ timeoutMs = 20_000 } = {}): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const fail = (why: string) =>
      new Error(`smtpd ${why} (config ${this.conf}); smtpd log ends with:\n${tail(this.log(), 40)}`);
    const want = listenAddresses(this.conf);
    for (;;) {
      if (!this.alive()) throw fail(`exited (${JSON.stringify(this.proc.status)}) before listening`);
      const ss = (await this.lab.exec(['/usr/bin/ss', '-Hltn'])).stdout.toString();
      if (want.every((w) => ss.includes(` ${w} `))) break;
      if (Date.now() > deadline) throw fail(`is not listening on ${want.join(' ')} after ${timeoutMs} ms`);
      await sleep(50);
    }
    const [host, port] = splitHostPort(want[0] ?? '127.0.0.1:25');
    const src = host === '::1' ? '::1' : PROBE_SRC;
    const left = Math.max(1000, deadline - Date.now());
    const [probe] = await this.lab.smtpScript([{ label: 'ready-probe', host, port, src, timeoutMs: left, steps: [{ read: true }, { send: 'QUIT' }] }]);
    if (!probe?.replies.length) {
      const why = probe?.error ?? (probe?.closedByServer ? 'connection closed' : 'no reply');
      throw fail(`did not greet within ${timeoutMs} ms (${why}); a filter that never sends register|ready blocks the banner`);
    }
  }

  /** SIGTERM smtpd alone, as an admin would: it ends its own processes and closes the
   * filters' stdin. Its processes still running 2 s after that (a filter that ignores
   * EOF) are recorded in leftovers and killed. */
  async stop(graceMs = 10_000): Promise<ExitStatus> {
    // Taken before the tree falls apart: proc-exec forks each filter from an
    // intermediate smtpd process that calls setsid(), so neither group nor session
    // finds the filters once smtpd is gone.
    const tree = descendants(this.lab.name, this.proc.pid);
    const status = await this.proc.stop(graceMs, false);
    const mine = () => tree.filter(pidAlive);
    for (let i = 0; i < 40 && mine().length; i++) await sleep(50);
    const left = mine();
    this.leftovers.push(...left.map((p) => `${p} ${cmdline(p)}`));
    killPids(this.lab.name, left);
    return status;
  }

  maildir(user: string): string {
    return join(this.wd, 'maildir', user);
  }

  delivered(user: string): Delivered[] {
    return readMaildir(this.maildir(user));
  }

  async waitDelivered(user: string, n: number, timeoutMs = 20_000): Promise<Delivered[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = this.delivered(user);
      if (got.length >= n) return got;
      if (Date.now() > deadline || !this.alive()) {
        throw new Error(`${got.length} of ${n} messages delivered to ${user} after ${timeoutMs} ms` +
          `${this.alive() ? '' : ' (smtpd exited)'}; smtpd log ends with:\n${tail(this.log(), 30)}`);
      }
      await sleep(50);
    }
  }

  /** `smtpctl show queue`, in smtpd's mount namespace (its private /run holds the socket). */
  async queue(): Promise<string> {
    const r = await this.lab.exec(['/usr/bin/nsenter', '-t', String(this.proc.pid), '-m', '-n', '/usr/sbin/smtpctl', 'show', 'queue'], { inNamespace: false });
    if (r.code !== 0) throw new Error(`smtpctl show queue: ${r.stderr.toString()}`);
    return r.stdout.toString();
  }

  /** The MDA writes the maildir file before the envelope leaves the queue. */
  async waitQueueEmpty(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let q = await this.queue();
    for (; q !== ''; q = await this.queue()) {
      if (Date.now() > deadline) throw new Error(`queue not empty after ${timeoutMs} ms:\n${q}`);
      await sleep(100);
    }
  }
}

function filterLine(f: FilterSpec): string {
  if (f.command.includes('"')) throw new Error(`filter ${f.name}: the command cannot contain a double quote`);
  let user = f.user;
  // Our compiled filters must be readable by the user they run as (default opensmtpd).
  if (user === undefined && f.command.includes(projectRoot) && !opensmtpdCanRead()) user = 'root';
  return `filter "${f.name}" proc-exec "${f.command}"${user ? ` user ${user}` : ''}${f.group ? ` group ${f.group}` : ''}`;
}

/** "127.0.0.1:25", "[::1]:25" for every `listen on <address> … [port N]` (ss notation). */
function listenAddresses(conf: string): string[] {
  const text = readFileSync(conf, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*listen on (\S+)(.*)$/gm)) {
    const addr = m[1]!;
    const port = /\bport (\d+)/.exec(m[2]!)?.[1] ?? '25';
    if (/^[\d.]+$/.test(addr)) out.push(`${addr}:${port}`);
    else if (addr.includes(':')) out.push(`[${addr}]:${port}`);
  }
  return out;
}

function splitHostPort(hp: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(hp)!;
  return [m[1]!, Number(m[2])];
}

