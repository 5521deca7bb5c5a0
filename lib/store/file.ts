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
// What is kept in memory depends on the use. Lookups and stats need only counts: a
// CountTable (lib/store/table.ts; 12 bytes a slot, no learn times, no digests), refilled in
// place on reload. Learning (and learnedAs) reads the whole set into a BayesDb (TokenTable
// with learn times, the digests), kept while the file does not change; a filter keeps one
// only with -autolearn.
//
// Format (little-endian), version 1:
//   "SFBAYES1" | u32 header length | header JSON {version,nspam,nham,lastLearn,tokens,digests}
//   | f64 keys[tokens] | u32 spam[tokens] | u32 ham[tokens] | u32 seen[tokens]
//   | digests × 32 bytes (SHA-256) | digests × u8 class (1 spam, 0 ham) | u32 CRC-32 of all before

import { promises as fsp, constants as fsc, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { BayesDb, greylistCheck, nowSeconds, SPAM } from './memory.js';
import { FileLock, type LockOptions } from './lock.js';
import { CountTable, TokenTable } from './table.js';
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
  // Node's zlib.crc32 returns 0, not the running value, for an empty view of an empty typed
  // array (no data pointer): the columns of a set without tokens. Files written before this
  // was known carry that CRC; checkFile accepts it.
  for (const b of bufs) if (b.length > 0) c = zlib.crc32(b, c);
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

// ---- reading a store file in small pieces --------------------------------------------
//
// A store file is read in pieces of at most 80 KiB, straight into the table: no buffer of
// the whole file and no copy of each column (together twice the file, 12 MB for 300,000
// tokens, when the filter starts and again whenever a learn replaces the file). Beyond the
// copies themselves, glibc's malloc serves blocks over 128 KiB with mmap, and freeing one
// raises that threshold (and the one under which it gives memory back, to twice as much)
// to the block's size: after one 6 MB buffer was freed, the process kept ~20 MB more of
// freed memory from the traffic that followed (filters/spamscore/README.md, Measured).

/** Records read at a time: 80 KiB of keys and counts, under glibc's mmap threshold. */
const RECORDS = 4096;

interface Header {
  version: number;
  nspam: number;
  nham: number;
  lastLearn: number;
  tokens: number;
  digests: number;
}

interface Layout {
  h: Header;
  keys: number;
  spam: number;
  ham: number;
  seen: number;
  digests: number;
  classes: number;
}

/** Reads `into.length` bytes at `pos` or throws. */
type ReadAt = (into: Uint8Array, pos: number) => void;

function badFile(where: string, why: string): StoreError {
  return new StoreError(`${where}: not a valid store file (${why})`, 'EFORMAT');
}

/** Where each column is, from the first 12 + header-length bytes; checks what can be checked without the CRC. */
function layoutOf(head: Buffer, hlen: number, size: number, where: string): Layout {
  let h: Header;
  try {
    h = JSON.parse(head.toString('utf8', 12, 12 + hlen));
  } catch {
    throw badFile(where, 'bad header');
  }
  if (h.version !== 1) throw badFile(where, `unsupported version ${h.version}`);
  const n = h.tokens, m = h.digests;
  const keys = 12 + hlen;
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(m) || n < 0 || m < 0 || size !== keys + n * 20 + m * 33 + 4) throw badFile(where, 'size mismatch');
  return { h, keys, spam: keys + n * 8, ham: keys + n * 12, seen: keys + n * 16, digests: keys + n * 20, classes: keys + n * 20 + m * 32 };
}

/** Checks magic and CRC of a whole file read in pieces; returns its layout. */
function checkFile(read: ReadAt, size: number, where: string): Layout {
  if (size < 16) throw badFile(where, 'bad magic');
  const piece = Buffer.allocUnsafeSlow(Math.min(RECORDS * 20, size));
  read(piece.subarray(0, 12), 0);
  if (!piece.subarray(0, 8).equals(MAGIC)) throw badFile(where, 'bad magic');
  const hlen = piece.readUInt32LE(8);
  let crc = 0;
  for (let pos = 0; pos < size - 4; ) {
    const len = Math.min(piece.length, size - 4 - pos);
    read(piece.subarray(0, len), pos);
    crc = zlib.crc32(piece.subarray(0, len), crc);
    pos += len;
  }
  read(piece.subarray(0, 4), size - 4);
  const want = piece.readUInt32LE(0);
  if (12 + hlen > size - 4) throw badFile(where, crc >>> 0 !== want ? 'checksum mismatch' : 'bad header');
  const head = Buffer.alloc(12 + hlen);
  read(head, 0);
  if (crc >>> 0 === want) return layoutOf(head, hlen, size, where);
  // A set without tokens written by 0.1.0 (crc32 above): its CRC covers only the digests
  // and classes after the (empty) columns.
  let legacy: Layout | undefined;
  try {
    legacy = layoutOf(head, hlen, size, where);
  } catch {
    /* not that case */
  }
  if (legacy?.h.tokens === 0) {
    let c = 0;
    for (let pos = legacy.digests; pos < size - 4; ) {
      const len = Math.min(piece.length, size - 4 - pos);
      read(piece.subarray(0, len), pos);
      c = zlib.crc32(piece.subarray(0, len), c);
      pos += len;
    }
    if (c >>> 0 === want) return legacy;
  }
  throw badFile(where, 'checksum mismatch');
}

/** Calls `each` with the records, RECORDS at a time, in file order (aligned copies; little-endian, as written). */
function forRecords(
  read: ReadAt,
  L: Layout,
  withSeen: boolean,
  each: (keys: Float64Array, spam: Uint32Array, ham: Uint32Array, seen: Uint32Array, count: number) => void,
): void {
  const buf = new ArrayBuffer(RECORDS * 20);
  const keys = new Float64Array(buf, 0, RECORDS);
  const spam = new Uint32Array(buf, RECORDS * 8, RECORDS);
  const ham = new Uint32Array(buf, RECORDS * 12, RECORDS);
  const seen = new Uint32Array(buf, RECORDS * 16, RECORDS);
  const bytes = (a: Float64Array | Uint32Array, count: number) => new Uint8Array(a.buffer, a.byteOffset, count * a.BYTES_PER_ELEMENT);
  for (let i = 0; i < L.h.tokens; i += RECORDS) {
    const count = Math.min(RECORDS, L.h.tokens - i);
    read(bytes(keys, count), L.keys + i * 8);
    read(bytes(spam, count), L.spam + i * 4);
    read(bytes(ham, count), L.ham + i * 4);
    if (withSeen) read(bytes(seen, count), L.seen + i * 4);
    each(keys, spam, ham, seen, count);
  }
}

/** The whole statistics set (for learning): totals, a TokenTable with learn times, the digests. */
function readDb(read: ReadAt, L: Layout): BayesDb {
  const n = L.h.tokens, m = L.h.digests;
  const db = new BayesDb(Math.ceil((n * 4) / 3) + 16);
  db.nspam = L.h.nspam;
  db.nham = L.h.nham;
  db.lastLearn = L.h.lastLearn;
  const t: TokenTable = db.table;
  forRecords(read, L, true, (keys, spam, ham, seen, count) => {
    for (let i = 0; i < count; i++) t.insertNew(keys[i]!, spam[i]!, ham[i]!, seen[i]!);
  });
  const per = 2048;
  const dig = Buffer.allocUnsafeSlow(per * 32);
  const cls = Buffer.allocUnsafeSlow(per);
  for (let i = 0; i < m; i += per) {
    const count = Math.min(per, m - i);
    read(dig.subarray(0, count * 32), L.digests + i * 32);
    read(cls.subarray(0, count), L.classes + i);
    for (let k = 0; k < count; k++) db.seen.set(dig.toString('hex', k * 32, k * 32 + 32), cls[k]!);
  }
  return db;
}

function bufferReader(buf: Buffer): ReadAt {
  return (into, pos) => {
    if (pos + into.length > buf.length) throw new RangeError('read past the end');
    into.set(buf.subarray(pos, pos + into.length));
  };
}

function fdReader(fd: number, file: string): ReadAt {
  return (into, pos) => {
    let done = 0;
    while (done < into.length) {
      let n: number;
      try {
        n = readSync(fd, into, done, into.length - done, pos + done);
      } catch (e) {
        throw new StoreError(`cannot read ${file}: ${(e as Error).message}`, 'EIO');
      }
      if (n === 0) throw new StoreError(`cannot read ${file}: shorter than when opened`, 'EIO');
      done += n;
    }
  };
}

export function decodeDb(buf: Buffer, where = 'store'): BayesDb {
  const read = bufferReader(buf);
  return readDb(read, checkFile(read, buf.length, where));
}

/** What a scanning filter keeps of a statistics set: totals and a CountTable. */
export interface CountSet {
  nspam: number;
  nham: number;
  lastLearn: number;
  /** Learned messages (digests in the file; the digests themselves are not kept). */
  messages: number;
  table: CountTable;
}

/**
 * Reads a store file into `reuse`'s table when it fits (a reload keeps the same array),
 * else into a new one. The file is checked whole (CRC) before the table is touched, and the
 * table is then filled in one synchronous step, so a lookup never sees it half filled and a
 * corrupt file leaves the old counts in place.
 */
function readCounts(read: ReadAt, size: number, where: string, reuse?: CountTable): CountSet {
  const L = checkFile(read, size, where);
  let table: CountTable;
  if (reuse && reuse.fits(L.h.tokens)) {
    table = reuse;
    table.clear();
  } else table = new CountTable(L.h.tokens);
  forRecords(read, L, false, (keys, spam, ham, _seen, count) => {
    for (let i = 0; i < count; i++) table.insert(keys[i]!, spam[i]!, ham[i]!);
  });
  return { nspam: L.h.nspam, nham: L.h.nham, lastLearn: L.h.lastLearn, messages: L.h.digests, table };
}

/** A store file's counts, as the filter keeps them (tests, measurements). */
export function decodeCounts(buf: Buffer, where = 'store'): CountSet {
  return readCounts(bufferReader(buf), buf.length, where);
}

/** Opens `file` and runs `fn` on a reader of it and its fstat (what was read, whatever is renamed over it meanwhile). */
async function withFile<T>(file: string, fn: (read: ReadAt, st: Snapshot) => T): Promise<T> {
  let fh: fsp.FileHandle;
  let st: Snapshot;
  try {
    fh = await fsp.open(file, 'r');
  } catch (e) {
    throw new StoreError(`cannot read ${file}: ${(e as Error).message}`, 'EIO');
  }
  try {
    const s = await fh.stat();
    st = { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
    return fn(fdReader(fh.fd, file), st);
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw new StoreError(`cannot read ${file}: ${(e as Error).message}`, 'EIO');
  } finally {
    await fh.close().catch(() => {});
  }
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
    // Synchronous: one stat(2) of a local file takes microseconds, while fsp.stat's trip
    // through libuv's thread pool cost ~80 µs of CPU on every scan (a tenth of one).
    const st = statSync(file);
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

/** A statistics set as read from its file (null: no file, empty). */
interface Loaded<T> {
  value: T;
  snap: Snapshot | null;
}

export class FileStore implements Store {
  readonly kind = 'file' as const;
  /** What lookups and stats read: counts only (scanning never needs more). */
  private sets = new Map<string, Loaded<CountSet>>();
  /** Reloads in progress, so concurrent scans share one read of a changed file. */
  private loading = new Map<string, Promise<Loaded<CountSet>>>();
  /** Whole statistics sets (learn times, digests), read only by learn and learnedAs. */
  private dbs = new Map<string, Loaded<BayesDb>>();
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

  /** The current counts of a statistics set, reloaded when the file changed on disk. */
  private async current(user?: string): Promise<Loaded<CountSet>> {
    const file = this.fileFor(user);
    const key = user?.toLowerCase() ?? '';
    const cached = this.sets.get(key);
    const snap = await statOf(file);
    if (cached && (same(cached.snap, snap) || (!snap && !cached.snap))) return cached;
    const pending = this.loading.get(key);
    if (pending) return pending;
    const p = this.load(file, key, snap, cached).finally(() => this.loading.delete(key));
    this.loading.set(key, p);
    return p;
  }

  private async load(file: string, key: string, snap: Snapshot | null, old: Loaded<CountSet> | undefined): Promise<Loaded<CountSet>> {
    let loaded: Loaded<CountSet>;
    if (!snap) loaded = { value: { nspam: 0, nham: 0, lastLearn: 0, messages: 0, table: new CountTable() }, snap: null };
    else {
      // The snapshot is the opened file's own: if a rename raced us, the next call sees a
      // different inode and reloads again.
      loaded = await withFile(file, (read, st) => ({ value: readCounts(read, st.size, file, old?.value.table), snap: st }));
    }
    this.sets.set(key, loaded);
    return loaded;
  }

  /** The whole statistics set as on disk now (the cached one if the file did not change). */
  private async currentDb(user?: string): Promise<BayesDb> {
    const file = this.fileFor(user);
    const key = user?.toLowerCase() ?? '';
    const cached = this.dbs.get(key);
    const snap = await statOf(file);
    if (cached && (same(cached.snap, snap) || (!snap && !cached.snap))) return cached.value;
    const loaded: Loaded<BayesDb> = snap
      ? await withFile(file, (read, st) => ({ value: readDb(read, checkFile(read, st.size, file)), snap: st }))
      : { value: new BayesDb(), snap: null };
    this.dbs.set(key, loaded);
    return loaded.value;
  }

  async lookup(tokens: ArrayLike<number>, user?: string): Promise<Lookup> {
    const c = (await this.current(user)).value;
    const spam = new Uint32Array(tokens.length);
    const ham = new Uint32Array(tokens.length);
    c.table.lookup(tokens, spam, ham);
    return { nspam: c.nspam, nham: c.nham, spam, ham };
  }

  async learn(cls: StoreClass | null, items: LearnItem[], user?: string, time = nowSeconds()): Promise<LearnOutcome[]> {
    const file = this.fileFor(user);
    await this.ensureDir(file);
    const lock = new FileLock(file + '.lock', this.opt);
    return lock.with(async () => {
      const db = await this.currentDb(user);
      const out = items.map((it) => db.learn(cls, it, time));
      if (out.every((o) => o === 'already' || o === 'not-learned')) return out;
      db.table.expire(this.opt.maxTokens ?? DEFAULT_MAX_TOKENS);
      const snap = await atomicWrite(file, encodeDb(db));
      this.dbs.set(user?.toLowerCase() ?? '', { value: db, snap });
      return out;
    });
  }

  async learnedAs(digest: string, user?: string): Promise<StoreClass | undefined> {
    const v = (await this.currentDb(user)).seen.get(digest);
    return v === undefined ? undefined : v === SPAM ? 'spam' : 'ham';
  }

  async stats(user?: string): Promise<BayesStats> {
    const c = (await this.current(user)).value;
    return { nspam: c.nspam, nham: c.nham, tokens: c.table.size, messages: c.messages, lastLearn: c.lastLearn };
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
    this.dbs.clear();
    this.grey = null;
  }
}
