// An exclusive lock file next to the store (<path>.lock), shared by the CLI and the filter.
//
// Acquire: open(O_CREAT|O_EXCL) and write "pid hostname time token". Held by a live
// process: wait (with jitter) up to a timeout. Stale (its pid is dead on this host, or it is
// older than `staleMs`, which also covers other hosts on a shared file system): break it by
// renaming it away, re-read the renamed copy to check it is still the stale one, and
// retry; if a fresh lock was taken in between, it is put back (link) when possible.
// Release: unlink only if the file still carries our token.

import { promises as fsp } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { StoreError } from './types.js';

export interface LockOptions {
  /** Give up after this long (ms). Default 30 s. */
  timeoutMs?: number;
  /** A lock older than this is stale even if its owner seems alive. Default 10 min. */
  staleMs?: number;
}

const HOST = hostname();

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface LockInfo {
  pid: number;
  host: string;
  time: number;
  token: string;
}

export function parseLock(s: string): LockInfo | null {
  const [pid, host, time, token] = s.trim().split(' ');
  if (!pid || !host || !time || !token) return null;
  return { pid: Number(pid), host, time: Number(time), token };
}

function isStale(info: LockInfo | null, mtimeMs: number, staleMs: number): boolean {
  const age = Date.now() - (info?.time || mtimeMs);
  if (age > staleMs) return true;
  if (!info) return Date.now() - mtimeMs > 5000; // half-written by a crashed process
  return info.host === HOST && info.pid !== process.pid && !alive(info.pid);
}

export class FileLock {
  private token: string | null = null;
  constructor(
    readonly path: string,
    private readonly opt: LockOptions = {},
  ) {}

  get held(): boolean {
    return this.token !== null;
  }

  async acquire(): Promise<void> {
    const timeout = this.opt.timeoutMs ?? 30_000;
    const staleMs = this.opt.staleMs ?? 600_000;
    const token = randomBytes(8).toString('hex');
    const body = `${process.pid} ${HOST} ${Date.now()} ${token}\n`;
    const start = Date.now();
    let wait = 2;
    for (;;) {
      try {
        const fh = await fsp.open(this.path, 'wx', 0o644);
        try {
          await fh.writeFile(body);
        } finally {
          await fh.close();
        }
        this.token = token;
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST') throw new StoreError(`cannot create lock ${this.path}: ${(e as Error).message}`, 'EIO');
      }
      await this.breakIfStale(staleMs);
      if (Date.now() - start > timeout) {
        let owner = '';
        try {
          owner = (await fsp.readFile(this.path, 'utf8')).trim().split(' ').slice(0, 2).join(' on ');
        } catch {
          /* gone meanwhile */
        }
        throw new StoreError(`store is locked (${this.path}${owner ? ', held by pid ' + owner : ''}); gave up after ${timeout} ms`, 'ELOCK');
      }
      await sleep(wait + Math.random() * wait);
      wait = Math.min(wait * 2, 50);
    }
  }

  private async breakIfStale(staleMs: number): Promise<void> {
    let content: string, mtimeMs: number;
    try {
      const st = await fsp.stat(this.path);
      mtimeMs = st.mtimeMs;
      content = await fsp.readFile(this.path, 'utf8');
    } catch {
      return; // released meanwhile
    }
    const info = parseLock(content);
    if (!isStale(info, mtimeMs, staleMs)) return;
    const aside = `${this.path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      await fsp.rename(this.path, aside);
    } catch {
      return; // someone else broke or released it
    }
    let moved = '';
    try {
      moved = await fsp.readFile(aside, 'utf8');
    } catch {
      /* ignore */
    }
    if (moved !== content) {
      // We moved a fresh lock taken after our check: put it back if the name is free.
      try {
        await fsp.link(aside, this.path);
      } catch {
        /* a third process holds it now; the fresh owner will find its token gone */
      }
    }
    await fsp.unlink(aside).catch(() => {});
  }

  async release(): Promise<void> {
    if (!this.token) return;
    const token = this.token;
    this.token = null;
    try {
      const info = parseLock(await fsp.readFile(this.path, 'utf8'));
      if (info?.token === token) await fsp.unlink(this.path);
    } catch {
      /* already gone */
    }
  }

  /** Run fn while holding the lock. */
  async with<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      await this.release();
    }
  }
}
