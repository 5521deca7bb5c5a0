// The file store: one file per statistics set (the global one at <path>, per-user ones at
// <path>.users/<user>), the greylist at <path>.greylist.
//
// Writers (the CLI's learn, the filter's greylist) take <file>.lock (lib/store/lock.ts),
// reload the file if it changed, apply the change, write <file>.tmp.<pid>.<rand>, fsync it,
// rename it over <file> and fsync the directory: readers always see a complete old or new
// file, and concurrent writers never lose each other's updates.
// Readers (the running filter) stat the file before each use and reload it when its inode,
// size or mtime changed, so a learn is picked up without restarting the filter.
//
// Format (little-endian), version 1:
//   "SFBAYES1" | u32 header length | header JSON {version,nspam,nham,lastLearn,tokens,digests}
//   | f64 keys[tokens] | u32 spam[tokens] | u32 ham[tokens] | u32 seen[tokens]
//   | digests × 32 bytes (SHA-256) | digests × u8 class (1 spam, 0 ham) | u32 CRC-32 of all before

import { promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { BayesDb, greylistCheck, nowSeconds, SPAM } from './memory.js';
import { FileLock, type LockOptions } from './lock.js';
import { TokenTable } from './table.js';
import {
  StoreError,
  type BayesStats,
  type GreylistOptions,
  type GreylistVerdict,
  type LearnItem,
  type LearnOutcome,
  type Lookup,
  type Store,
  type StoreClass,
} from './types.js';

const MAGIC = Buffer.from('SFBAYES1', 'latin1');
const GREY_MAGIC = 'SFGREY1';

export interface FileStoreOptions extends LockOptions {
  /** Expire tokens beyond this many per statistics set (least useful first). */
  maxTokens?: number;
}

export const DEFAULT_MAX_TOKENS = 2_000_000;

function crc32(bufs: Buffer[]): number {
  let c = 0;
  for (const b of bufs) c = zlib.crc32(b, c);
  return c >>> 0;
}

export function encodeDb(db: BayesDb): Buffer[] {
  const t = db.table;
  const n = t.size;
  const keys = new Float64Array(n), spam = new Uint32Array(n), ham = new Uint32Array(n), seen = new Uint32Array(n);
  let j = 0;
  for (let i = 0; i < t.keys.length; i++) {
    if (t.keys[i] === 0) continue;
    keys[j] = t.keys[i]!;
    spam[j] = t.spam[i]!;
    ham[j] = t.ham[i]!;
    seen[j] = t.seen[i]!;
    j++;
  }
  const m = db.seen.size;
  const dig = Buffer.alloc(m * 32);
  const cls = Buffer.alloc(m);
  let k = 0;
  for (const [d, c] of db.seen) {
    dig.write(d, k * 32, 32, 'hex');
    cls[k] = c;
    k++;
  }
  const header = Buffer.from(JSON.stringify({ version: 1, nspam: db.nspam, nham: db.nham, lastLearn: db.lastLearn, tokens: n, digests: m }));
  const hlen = Buffer.alloc(4);
  hlen.writeUInt32LE(header.length);
  const parts = [
    MAGIC, hlen, header,
    Buffer.from(keys.buffer, keys.byteOffset, keys.byteLength),
    Buffer.from(spam.buffer, spam.byteOffset, spam.byteLength),
    Buffer.from(ham.buffer, ham.byteOffset, ham.byteLength),
    Buffer.from(seen.buffer, seen.byteOffset, seen.byteLength),
    dig, cls,
  ];
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(crc32(parts));
  parts.push(crc);
  return parts;
}

export function decodeDb(buf: Buffer, where = 'store'): BayesDb {
  const bad = (why: string) => new StoreError(`${where}: not a valid store file (${why})`, 'EFORMAT');
  if (buf.length < 16 || !buf.subarray(0, 8).equals(MAGIC)) throw bad('bad magic');
  const want = buf.readUInt32LE(buf.length - 4);
  if (zlib.crc32(buf.subarray(0, buf.length - 4)) >>> 0 !== want) throw bad('checksum mismatch');
  const hlen = buf.readUInt32LE(8);
  let h: { version: number; nspam: number; nham: number; lastLearn: number; tokens: number; digests: number };
  try {
    h = JSON.parse(buf.toString('utf8', 12, 12 + hlen));
  } catch {
    throw bad('bad header');
  }
  if (h.version !== 1) throw bad(`unsupported version ${h.version}`);
  const n = h.tokens, m = h.digests;
  let off = 12 + hlen;
  if (buf.length !== off + n * 20 + m * 33 + 4) throw bad('size mismatch');
  // Copy into aligned arrays (the buffer offset is not 8-aligned).
  const keys = new Float64Array(n), spam = new Uint32Array(n), ham = new Uint32Array(n), seen = new Uint32Array(n);
  new Uint8Array(keys.buffer).set(buf.subarray(off, off + n * 8));
  off += n * 8;
  new Uint8Array(spam.buffer).set(buf.subarray(off, off + n * 4));
  off += n * 4;
  new Uint8Array(ham.buffer).set(buf.subarray(off, off + n * 4));
  off += n * 4;
  new Uint8Array(seen.buffer).set(buf.subarray(off, off + n * 4));
  off += n * 4;
  const db = new BayesDb(Math.ceil((n * 4) / 3) + 16);
  db.nspam = h.nspam;
  db.nham = h.nham;
  db.lastLearn = h.lastLearn;
  const t: TokenTable = db.table;
  for (let i = 0; i < n; i++) t.insertNew(keys[i]!, spam[i]!, ham[i]!, seen[i]!);
  const digOff = off;
  const clsOff = off + m * 32;
  for (let i = 0; i < m; i++) db.seen.set(buf.toString('hex', digOff + i * 32, digOff + i * 32 + 32), buf[clsOff + i]!);
  return db;
}

interface Snapshot {
  ino: number;
  size: number;
  mtimeMs: number;
}

function same(a: Snapshot | null, b: Snapshot | null): boolean {
  return !!a && !!b && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

async function statOf(file: string): Promise<Snapshot | null> {
  try {
    const st = await fsp.stat(file);
    return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StoreError(`cannot stat ${file}: ${(e as Error).message}`, 'EIO');
  }
}

/** Write a file atomically: temp file, fsync, rename, fsync the directory. */
export async function atomicWrite(file: string, parts: Buffer[] | string): Promise<Snapshot> {
  const dir = path.dirname(file);
  const tmp = `${file}.tmp.${process.pid}.${randomBytes(4).toString('hex')}`;
  let fh: fsp.FileHandle | null = null;
  try {
    fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o644);
    if (typeof parts === 'string') await fh.writeFile(parts);
    else await fh.writev(parts);
    await fh.sync();
    const st = await fh.stat();
    await fh.close();
    fh = null;
    await fsp.rename(tmp, file);
    try {
      const dh = await fsp.open(dir, 'r');
      await dh.sync().catch(() => {});
      await dh.close();
    } catch {
      /* directories cannot be opened everywhere; the rename is still atomic */
    }
    return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
  } catch (e) {
    if (fh) await fh.close().catch(() => {});
    await fsp.unlink(tmp).catch(() => {});
    if (e instanceof StoreError) throw e;
    throw new StoreError(`cannot write ${file}: ${(e as Error).message}`, 'EIO');
  }
}

interface Loaded {
  db: BayesDb;
  snap: Snapshot | null;
}

export class FileStore implements Store {
  readonly kind = 'file' as const;
  private sets = new Map<string, Loaded>();
  /** Reloads in progress, so concurrent scans share one read of a changed file. */
  private loading = new Map<string, Promise<Loaded>>();
  private grey: { map: Map<string, number>; snap: Snapshot | null } | null = null;

  constructor(
    readonly location: string,
    private readonly opt: FileStoreOptions = {},
  ) {}

  /** The file holding a statistics set. Users are %-encoded into file names. */
  fileFor(user?: string): string {
    if (!user) return this.location;
    const safe = encodeURIComponent(user.toLowerCase()).replace(/\./g, '%2E').replace(/\*/g, '%2A');
    return `${this.location}.users/${safe}`;
  }

  private async ensureDir(file: string): Promise<void> {
    await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o755 }).catch((e: Error) => {
      throw new StoreError(`cannot create ${path.dirname(file)}: ${e.message}`, 'EIO');
    });
  }

  /** The current statistics set, reloaded when the file changed on disk. */
  private async current(user?: string): Promise<Loaded> {
    const file = this.fileFor(user);
    const key = user?.toLowerCase() ?? '';
    const cached = this.sets.get(key);
    const snap = await statOf(file);
    if (cached && (same(cached.snap, snap) || (!snap && !cached.snap))) return cached;
    const pending = this.loading.get(key);
    if (pending) return pending;
    const p = this.load(file, key, snap).finally(() => this.loading.delete(key));
    this.loading.set(key, p);
    return p;
  }

  private async load(file: string, key: string, snap: Snapshot | null): Promise<Loaded> {
    let loaded: Loaded;
    if (!snap) loaded = { db: new BayesDb(), snap: null };
    else {
      let buf: Buffer;
      try {
        buf = await fsp.readFile(file);
      } catch (e) {
        throw new StoreError(`cannot read ${file}: ${(e as Error).message}`, 'EIO');
      }
      // The snapshot we read is the one we stat'ed, unless a rename raced us: then the next
      // call sees a different inode and reloads again.
      loaded = { db: decodeDb(buf, file), snap: (await statOf(file)) ?? snap };
    }
    this.sets.set(key, loaded);
    return loaded;
  }

  async lookup(tokens: ArrayLike<number>, user?: string): Promise<Lookup> {
    return (await this.current(user)).db.lookup(tokens);
  }

  async learn(cls: StoreClass | null, items: LearnItem[], user?: string, time = nowSeconds()): Promise<LearnOutcome[]> {
    const file = this.fileFor(user);
    await this.ensureDir(file);
    const lock = new FileLock(file + '.lock', this.opt);
    return lock.with(async () => {
      const cur = await this.current(user);
      const out = items.map((it) => cur.db.learn(cls, it, time));
      if (out.every((o) => o === 'already' || o === 'not-learned')) return out;
      cur.db.table.expire(this.opt.maxTokens ?? DEFAULT_MAX_TOKENS);
      cur.snap = await atomicWrite(file, encodeDb(cur.db));
      return out;
    });
  }

  async learnedAs(digest: string, user?: string): Promise<StoreClass | undefined> {
    const v = (await this.current(user)).db.seen.get(digest);
    return v === undefined ? undefined : v === SPAM ? 'spam' : 'ham';
  }

  async stats(user?: string): Promise<BayesStats> {
    return (await this.current(user)).db.stats();
  }

  /** Users with their own statistics. */
  async users(): Promise<string[]> {
    try {
      const names = await fsp.readdir(this.location + '.users');
      // Dots are %-encoded in user file names, so any name with a dot is a lock or temp file.
      return names.filter((n) => !n.includes('.')).map((n) => decodeURIComponent(n));
    } catch {
      return [];
    }
  }

  private greyFile(): string {
    return this.location + '.greylist';
  }

  private async greyCurrent(): Promise<{ map: Map<string, number>; snap: Snapshot | null }> {
    const file = this.greyFile();
    const snap = await statOf(file);
    if (this.grey && (same(this.grey.snap, snap) || (!snap && !this.grey.snap))) return this.grey;
    const map = new Map<string, number>();
    if (snap) {
      const text = await fsp.readFile(file, 'utf8').catch(() => '');
      const lines = text.split('\n');
      if (lines[0] === GREY_MAGIC) {
        for (let i = 1; i < lines.length; i++) {
          const [k, t] = lines[i]!.split(' ');
          if (k && t) map.set(k, Number(t));
        }
      }
    }
    this.grey = { map, snap };
    return this.grey;
  }

  async greylist(key: string, now: number, opt: GreylistOptions): Promise<GreylistVerdict> {
    // Fast path without the lock: a known key inside its window only needs reading.
    const g0 = await this.greyCurrent();
    const first = g0.map.get(key);
    if (first !== undefined && now >= first && now - first <= opt.window) return greylistCheck(first, now, opt).verdict;
    const file = this.greyFile();
    await this.ensureDir(file);
    return new FileLock(file + '.lock', this.opt).with(async () => {
      const g = await this.greyCurrent();
      const r = greylistCheck(g.map.get(key), now, opt);
      if (r.record !== null) {
        g.map.set(key, r.record);
        for (const [k, t] of g.map) if (now - t > opt.window) g.map.delete(k);
        let text = GREY_MAGIC + '\n';
        for (const [k, t] of g.map) text += `${k} ${t}\n`;
        g.snap = await atomicWrite(file, text);
      }
      return r.verdict;
    });
  }

  async close(): Promise<void> {
    this.sets.clear();
    this.grey = null;
  }
}
