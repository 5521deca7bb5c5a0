// A scripted SMTP client for the cases swaks cannot do: exact DATA bytes (8-bit, bare CR,
// 65,534-byte lines, leading dots), anonymous-ECDH STARTTLS, a cut mid-DATA, many
// sessions at once, and a timing for every reply.
//
// In-process: `await runSessions([buildSession({ port, to: […], messages: [buf] })])`.
// As a program (the lab runs it inside its network namespace):
//   node dist/test/lib/smtp-client.js [SCRIPT.json]   (default: the script on stdin)
// SCRIPT is {"sessions":[SessionScript…]}; every session runs at once, over its own
// connection; the answer on stdout is {"sessions":[SessionResult…]}. Exit status 0 unless
// the script itself is unusable.
import { readFileSync, realpathSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { pathToFileURL } from 'node:url';

export type Step =
  /** read one (multi-line) reply: the banner */
  | { read: true; expect?: string }
  /** send a command line (latin1) + CRLF and read its reply */
  | { send: string; expect?: string }
  /** DATA; on 354 the payload (base64), dot-stuffed and ended with "." unless raw (then
   * sent exactly as given, terminator included); `expect` is for the final reply.
   * cutAfter: send only that many payload bytes, then close (`cut`, default fin). */
  | { data: string; raw?: boolean; expect?: string; cutAfter?: number; cut?: 'fin' | 'rst' }
  /** TLS handshake on the connection (after "STARTTLS" got 220); no certificate check */
  | { starttls: true; ciphers?: string }
  /** bytes (base64) exactly as given, no reply read */
  | { sendRaw: string }
  | { sleepMs: number }
  /** close now: fin (end) or rst (reset) */
  | { close: 'fin' | 'rst' };

export interface SessionScript {
  label?: string;
  host?: string;
  port?: number;
  /** source address to bind (127.0.0.x or ::1) */
  src?: string;
  /** per reply; default 60 s */
  timeoutMs?: number;
  steps: Step[];
}

export interface Reply {
  /** the command this answers ("" for the banner, "." for the end of DATA) */
  cmd: string;
  code: number;
  lines: string[];
  /** ms from session start to the command being sent */
  at: number;
  /** ms from the command being sent (for ".", from the last payload byte; for the
   * banner, from the connection being established) to the reply */
  ms: number;
}

export interface SessionResult {
  label?: string;
  src?: string;
  port: number;
  /** every expect matched and no error occurred */
  ok: boolean;
  replies: Reply[];
  codes: number[];
  /** reply times in ms, parallel to codes */
  timings: number[];
  mismatches: string[];
  tls?: { protocol: string; cipher: string };
  closedByServer: boolean;
  error?: string;
  /** ms until the TCP connection was established (a full listen queue shows here) */
  connectMs: number;
  /** whole session, ms */
  ms: number;
}

/** Anonymous ECDH: the only handshake Debian 12's smtpd 6.8.0p2 on OpenSSL 3 completes
 * (its privsep key engine cannot sign, harness/README.md "TLS"); smtpd must allow aNULL. */
export const ANON_CIPHERS = 'AECDH-AES256-SHA:aNULL:@SECLEVEL=0';

const CRLF = Buffer.from('\r\n');

/** The DATA payload on the wire: lines split at LF (a CR before it is dropped, a bare CR
 * inside a line is kept), dot-stuffed (RFC 5321 §4.5.2), CRLF, then ".". */
export function dataPayload(message: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  while (start < message.length) {
    let end = message.indexOf(0x0a, start);
    const next = end === -1 ? message.length : end + 1;
    if (end === -1) end = message.length;
    else if (end > start && message[end - 1] === 0x0d) end--;
    if (message[start] === 0x2e) parts.push(Buffer.from('.'));
    parts.push(message.subarray(start, end), CRLF);
    start = next;
  }
  parts.push(Buffer.from('.\r\n'));
  return Buffer.concat(parts);
}

class Conn {
  sock: net.Socket;
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  eof = false;
  err: Error | null = null;

  constructor(sock: net.Socket) {
    this.sock = sock;
    this.attach(sock);
  }

  attach(sock: net.Socket): void {
    this.sock = sock;
    sock.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.poke(); });
    sock.on('end', () => { this.eof = true; this.poke(); });
    sock.on('close', () => { this.eof = true; this.poke(); });
    sock.on('error', (e) => { this.err = e; this.poke(); });
  }

  detach(): net.Socket {
    for (const ev of ['data', 'end', 'close', 'error']) this.sock.removeAllListeners(ev);
    return this.sock;
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** One line without its CRLF, or null at EOF. */
  private async line(deadline: number): Promise<string | null> {
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl !== -1) {
        const line = this.buf.subarray(0, nl > 0 && this.buf[nl - 1] === 0x0d ? nl - 1 : nl).toString('latin1');
        this.buf = this.buf.subarray(nl + 1);
        return line;
      }
      if (this.err) throw this.err;
      if (this.eof) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timeout');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => { clearTimeout(t); resolve(); };
      });
    }
  }

  /** One reply (RFC 5321 §4.2: "NNN-" continues, "NNN " ends), or null at EOF. */
  async reply(timeoutMs: number): Promise<{ code: number; lines: string[] } | null> {
    const deadline = Date.now() + timeoutMs;
    const lines: string[] = [];
    for (;;) {
      const l = await this.line(deadline);
      if (l === null) return lines.length ? { code: Number(lines[0]!.slice(0, 3)) || 0, lines } : null;
      lines.push(l);
      if (!/^\d{3}-/.test(l)) return { code: Number(l.slice(0, 3)) || 0, lines };
    }
  }

  write(b: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.sock.write(b, (e) => (e ? reject(e) : resolve())));
  }
}

/** smtpd 6.8 listens with a backlog of 5: a burst of connects overflows it, the kernel
 * drops SYNs and clients retry 1, 3, 7 s later. So at most CONNECTING handshakes run at
 * once, each keeping its slot a few ms past the handshake for smtpd to accept();
 * sessions are fully concurrent once connected. */
const CONNECTING = 4;
const ACCEPT_GRACE_MS = 10;
let connecting = 0;
const waitingToConnect: (() => void)[] = [];

async function connectSlot<T>(fn: () => Promise<T>): Promise<T> {
  if (connecting >= CONNECTING) await new Promise<void>((r) => waitingToConnect.push(r));
  else connecting++;
  try {
    return await fn();
  } finally {
    setTimeout(() => {
      const next = waitingToConnect.shift();
      if (next) next(); // hand the slot over
      else connecting--;
    }, ACCEPT_GRACE_MS);
  }
}

function connect(s: SessionScript, timeoutMs: number): Promise<net.Socket> {
  const host = s.host ?? (s.src && net.isIPv6(s.src) ? '::1' : '127.0.0.1');
  const opts: net.NetConnectOpts = { host, port: s.port ?? 25 };
  if (s.src) opts.localAddress = s.src;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`connect: no handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    const sock = net.connect(opts, () => { clearTimeout(timer); sock.off('error', reject); resolve(sock); });
    sock.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

export async function runSession(s: SessionScript): Promise<SessionResult> {
  const t0 = Date.now();
  const timeoutMs = s.timeoutMs ?? 60_000;
  const res: SessionResult = {
    label: s.label, src: s.src, port: s.port ?? 25,
    ok: false, replies: [], codes: [], timings: [], mismatches: [], closedByServer: false, connectMs: 0, ms: 0,
  };
  let conn: Conn | null = null;

  const check = (cmd: string, expect: string | undefined, code: number | null) => {
    if (expect === undefined || expect === '*') return;
    if (code === null || !String(code).startsWith(expect)) {
      res.mismatches.push(`${cmd || 'banner'}: expected ${expect}, got ${code ?? 'connection closed'}`);
    }
  };
  /** Read the reply to cmd; false when the server has closed the connection. */
  const read = async (c: Conn, cmd: string, at: number, sentAt: number, expect?: string) => {
    const r = await c.reply(timeoutMs).catch((e: NodeJS.ErrnoException) => {
      throw Object.assign(new Error(`${e.message} waiting for the reply to ${cmd || 'the banner'}`), { code: e.code });
    });
    check(cmd, expect, r?.code ?? null);
    if (!r) { res.closedByServer = true; return null; }
    res.replies.push({ cmd, code: r.code, lines: r.lines, at, ms: Date.now() - sentAt });
    return r;
  };

  try {
    conn = new Conn(await connectSlot(() => connect(s, timeoutMs)));
    res.connectMs = Date.now() - t0;
    const c = conn;
    steps: for (const step of s.steps) {
      const at = Date.now() - t0;
      if ('read' in step) {
        if (!(await read(c, '', at, t0 + res.connectMs, step.expect))) break;
      } else if ('send' in step) {
        await c.write(Buffer.from(step.send + '\r\n', 'latin1'));
        if (!(await read(c, step.send, at, Date.now(), step.expect))) break;
      } else if ('data' in step) {
        await c.write(Buffer.from('DATA\r\n'));
        const r = await read(c, 'DATA', at, Date.now());
        if (!r) break;
        // Only a 354 lets the payload go out: anything else means its lines would be
        // read as commands.
        if (r.code !== 354) {
          if (step.expect !== undefined) res.mismatches.push(`DATA: expected 354, got ${r.code}`);
          continue;
        }
        const msg = Buffer.from(step.data, 'base64');
        const wire = step.raw ? msg : dataPayload(msg);
        if (step.cutAfter !== undefined) {
          await c.write(wire.subarray(0, step.cutAfter));
          close(c.sock, step.cut ?? 'fin');
          break steps;
        }
        await c.write(wire);
        if (!(await read(c, '.', Date.now() - t0, Date.now(), step.expect))) break;
      } else if ('starttls' in step) {
        const raw = c.detach();
        const secure = tls.connect({
          socket: raw, rejectUnauthorized: false, ciphers: step.ciphers ?? ANON_CIPHERS, maxVersion: 'TLSv1.2',
        });
        await new Promise<void>((resolve, reject) => {
          secure.once('secureConnect', resolve);
          secure.once('error', reject);
        });
        c.attach(secure);
        res.tls = { protocol: secure.getProtocol() ?? '', cipher: secure.getCipher().name };
      } else if ('sendRaw' in step) {
        await c.write(Buffer.from(step.sendRaw, 'base64'));
      } else if ('sleepMs' in step) {
        await new Promise((r) => setTimeout(r, step.sleepMs));
      } else if ('close' in step) {
        close(c.sock, step.close);
        break;
      }
    }
  } catch (e) {
    res.error = e instanceof Error ? e.message : String(e);
    // A write can lose the race with the server's close (a 550 disconnect, say): the
    // server closed the connection all the same.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPIPE' || code === 'ECONNRESET') res.closedByServer = true;
  } finally {
    conn?.sock.destroy();
  }
  res.codes = res.replies.map((r) => r.code);
  res.timings = res.replies.map((r) => r.ms);
  res.ok = !res.error && res.mismatches.length === 0;
  res.ms = Date.now() - t0;
  return res;
}

function close(sock: net.Socket, how: 'fin' | 'rst'): void {
  if (how === 'rst') sock.resetAndDestroy();
  else sock.end();
}

export function runSessions(scripts: SessionScript[]): Promise<SessionResult[]> {
  return Promise.all(scripts.map(runSession));
}

export interface SessionOptions {
  label?: string;
  src?: string;
  host?: string;
  port?: number;
  timeoutMs?: number;
  /** EHLO/HELO name; default client.example */
  helo?: string;
  /** HELO instead of EHLO */
  useHelo?: boolean;
  tls?: boolean;
  /** AUTH PLAIN (after STARTTLS when tls is set: smtpd offers AUTH only then) */
  auth?: { user: string; pass: string };
  /** default sender@example.org */
  from?: string;
  /** default alice@test.example */
  to?: string[];
  /** one transaction each */
  messages?: (Buffer | string)[];
  /** send messages exactly as given (no dot-stuffing, no "." added) */
  raw?: boolean;
  /** cut the connection after this many bytes of the first message's payload */
  cutAfter?: number;
  cut?: 'fin' | 'rst';
  /** default true; false closes the connection (FIN) without QUIT */
  quit?: boolean;
}

/** The usual session as steps, each with the reply a plain smtpd gives. */
export function buildSession(o: SessionOptions): SessionScript {
  const steps: Step[] = [{ read: true, expect: '220' }];
  const hello = `${o.useHelo ? 'HELO' : 'EHLO'} ${o.helo ?? 'client.example'}`;
  steps.push({ send: hello, expect: '250' });
  if (o.tls) steps.push({ send: 'STARTTLS', expect: '220' }, { starttls: true }, { send: hello, expect: '250' });
  if (o.auth) {
    const plain = Buffer.from(`\0${o.auth.user}\0${o.auth.pass}`).toString('base64');
    steps.push({ send: `AUTH PLAIN ${plain}`, expect: '235' });
  }
  for (const [i, m] of (o.messages ?? []).entries()) {
    steps.push({ send: `MAIL FROM:<${o.from ?? 'sender@example.org'}>`, expect: '250' });
    for (const rcpt of o.to ?? ['alice@test.example']) steps.push({ send: `RCPT TO:<${rcpt}>`, expect: '250' });
    const data: Step = { data: Buffer.from(m).toString('base64'), expect: '250' };
    if (o.raw) data.raw = true;
    if (i === 0 && o.cutAfter !== undefined) {
      steps.push({ ...data, cutAfter: o.cutAfter, cut: o.cut ?? 'fin' });
      break;
    }
    steps.push(data);
  }
  if (o.cutAfter === undefined) steps.push(o.quit === false ? { close: 'fin' } : { send: 'QUIT', expect: '221' });
  return { label: o.label, src: o.src, host: o.host, port: o.port, timeoutMs: o.timeoutMs, steps };
}

async function main(): Promise<void> {
  const file = process.argv[2];
  const text = file && file !== '-' ? readFileSync(file, 'utf8') : readFileSync(0, 'utf8');
  const script = JSON.parse(text) as { sessions: SessionScript[] };
  if (!Array.isArray(script.sessions)) throw new Error('script: {"sessions":[…]} expected');
  const sessions = await runSessions(script.sessions);
  process.stdout.write(JSON.stringify({ sessions }) + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`smtp-client: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  });
}
