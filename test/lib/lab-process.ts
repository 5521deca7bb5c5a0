// A process the lab started: its own session and process group (so everything it forks
// can be ended by group), its output kept in memory and in a log file, and waits on both.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** also write stdout+stderr to this file */
  logFile?: string;
  /** keep stdin open as a pipe (default: /dev/null) */
  stdin?: boolean;
}

export class LabProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
  status: ExitStatus | null = null;
  private readonly out: Buffer[] = [];
  private readonly err: Buffer[] = [];
  private readonly both: Buffer[] = [];
  private readonly log: WriteStream | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(readonly argv: string[], opts: SpawnOptions = {}) {
    // detached: setsid(), so pid = process group id = session id of all its descendants.
    // tap's process-info hook puts its --import into NODE_OPTIONS of every child it sees
    // spawned, whatever env we pass; a filter started from there as another user (opensmtpd,
    // Dovecot's mail user) then fails to read a checkout under /root. env -u drops it, then
    // execs the program (same pid).
    const clean = ['/usr/bin/env', '-u', 'NODE_OPTIONS', ...argv];
    this.child = spawn(clean[0]!, clean.slice(1), {
      detached: true,
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    this.log = opts.logFile ? createWriteStream(opts.logFile) : undefined;
    const keep = (into: Buffer[]) => (d: Buffer) => {
      into.push(d);
      this.both.push(d);
      this.log?.write(d);
      for (const w of this.waiters) w();
    };
    this.child.stdout!.on('data', keep(this.out));
    this.child.stderr!.on('data', keep(this.err));
    this.exited = new Promise((resolve, reject) => {
      this.child.once('error', reject);
      this.child.once('close', (code, signal) => {
        this.status = { code, signal };
        this.log?.end();
        for (const w of this.waiters) w();
        resolve(this.status);
      });
    });
    // A failed spawn is reported by exited; keep it from being an unhandled rejection.
    this.exited.catch(() => {});
    this.pid = this.child.pid ?? -1;
  }

  stdout(): Buffer { return Buffer.concat(this.out); }
  stderr(): Buffer { return Buffer.concat(this.err); }
  /** stdout and stderr as they came */
  output(): string { return Buffer.concat(this.both).toString('utf8'); }

  alive(): boolean { return this.status === null && this.pid > 0; }

  /** Resolve with the first match of re in the output (from character `from` on);
   * reject when the process exits or timeoutMs passes, quoting the output's tail. */
  waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`timeout (${timeoutMs} ms) waiting for ${re}`)), timeoutMs);
      const check = () => {
        const m = re.exec(this.output().slice(from));
        if (m) done(null, m);
        else if (!this.alive()) done(new Error(`${this.argv[0]} exited (${JSON.stringify(this.status)}) before ${re}`));
      };
      const done = (err: Error | null, m?: RegExpExecArray) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (err) reject(new Error(`${err.message}; output ends with:\n${tail(this.output(), 30)}`));
        else resolve(m!);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Signal the whole process group (the process itself only with group=false). */
  signal(sig: NodeJS.Signals, group = true): void {
    if (!this.alive()) return;
    try {
      process.kill(group ? -this.pid : this.pid, sig);
    } catch {
      // already gone
    }
  }

  /** SIGTERM, then SIGKILL after graceMs, to the group (or with group=false to the
   * process only: then its descendants are left for the caller to judge). */
  async stop(graceMs = 5000, group = true): Promise<ExitStatus> {
    if (this.alive()) {
      this.signal('SIGTERM', group);
      const timer = setTimeout(() => this.signal('SIGKILL', group), graceMs);
      await this.exited.catch(() => {});
      clearTimeout(timer);
    }
    if (group) {
      try {
        process.kill(-this.pid, 'SIGKILL'); // descendants that outlived it
      } catch {
        // none left
      }
    }
    return this.status ?? { code: null, signal: null };
  }
}

export function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines - 1).join('\n');
}
