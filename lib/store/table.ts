// The in-memory token database for learning: an open-addressing hash table (linear probing,
// backward-shift deletion, no tombstones) over parallel typed arrays, so a million tokens
// take ~24 MB and save is a plain array copy. Keys are the tokenizer's 53-bit hashes (never
// 0: 0 marks an empty slot). Scanning uses the smaller CountTable below.

export class TokenTable {
  keys: Float64Array;
  spam: Uint32Array;
  ham: Uint32Array;
  /** Last time the token was learned, seconds since the epoch. */
  seen: Uint32Array;
  size = 0;
  private mask: number;

  constructor(capacity = 1 << 14) {
    let cap = 1 << 10;
    while (cap < capacity) cap <<= 1;
    this.keys = new Float64Array(cap);
    this.spam = new Uint32Array(cap);
    this.ham = new Uint32Array(cap);
    this.seen = new Uint32Array(cap);
    this.mask = cap - 1;
  }

  get capacity(): number {
    return this.keys.length;
  }

  private static norm(key: number): number {
    return key === 0 ? 1 : key;
  }

  private slot(key: number): number {
    // The low 32 bits of cyrb53 are well mixed already.
    return (key >>> 0) & this.mask;
  }

  find(key: number): number {
    key = TokenTable.norm(key);
    const keys = this.keys;
    let i = this.slot(key);
    for (;;) {
      const k = keys[i]!;
      if (k === key) return i;
      if (k === 0) return -1;
      i = (i + 1) & this.mask;
    }
  }

  /** Counts of each token into out arrays (0 when unknown). */
  lookup(tokens: ArrayLike<number>, outSpam: Uint32Array | number[], outHam: Uint32Array | number[]): void {
    for (let t = 0; t < tokens.length; t++) {
      const i = this.find(tokens[t]!);
      outSpam[t] = i < 0 ? 0 : this.spam[i]!;
      outHam[t] = i < 0 ? 0 : this.ham[i]!;
    }
  }

  private grow(): void {
    const old = { keys: this.keys, spam: this.spam, ham: this.ham, seen: this.seen };
    const cap = this.keys.length * 2;
    this.keys = new Float64Array(cap);
    this.spam = new Uint32Array(cap);
    this.ham = new Uint32Array(cap);
    this.seen = new Uint32Array(cap);
    this.mask = cap - 1;
    this.size = 0;
    for (let i = 0; i < old.keys.length; i++) {
      const k = old.keys[i]!;
      if (k !== 0) this.insertNew(k, old.spam[i]!, old.ham[i]!, old.seen[i]!);
    }
  }

  /** Insert a key known to be absent. */
  insertNew(key: number, s: number, h: number, seen: number): void {
    key = TokenTable.norm(key);
    if ((this.size + 1) * 4 > this.keys.length * 3) this.grow();
    let i = this.slot(key);
    while (this.keys[i] !== 0) i = (i + 1) & this.mask;
    this.keys[i] = key;
    this.spam[i] = s;
    this.ham[i] = h;
    this.seen[i] = seen;
    this.size++;
  }

  /** Add ds/dh (may be negative; counts stop at 0). Removes a token whose counts reach 0. */
  add(key: number, ds: number, dh: number, time: number): void {
    key = TokenTable.norm(key);
    const i = this.find(key);
    if (i < 0) {
      if (ds > 0 || dh > 0) this.insertNew(key, Math.max(0, ds), Math.max(0, dh), time);
      return;
    }
    const s = Math.max(0, this.spam[i]! + ds);
    const h = Math.max(0, this.ham[i]! + dh);
    if (s === 0 && h === 0) {
      this.removeAt(i);
      return;
    }
    this.spam[i] = s;
    this.ham[i] = h;
    if (ds > 0 || dh > 0) this.seen[i] = time;
  }

  removeAt(i: number): void {
    const mask = this.mask;
    const keys = this.keys;
    keys[i] = 0;
    this.size--;
    // Backward-shift: move later entries of the cluster into the hole when that keeps them
    // reachable from their home slot.
    let hole = i;
    let j = (i + 1) & mask;
    while (keys[j] !== 0) {
      const home = this.slot(keys[j]!);
      // Is home cyclically in (hole, j]? Then the entry stays.
      const stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!stays) {
        keys[hole] = keys[j]!;
        this.spam[hole] = this.spam[j]!;
        this.ham[hole] = this.ham[j]!;
        this.seen[hole] = this.seen[j]!;
        keys[j] = 0;
        hole = j;
      }
      j = (j + 1) & mask;
    }
  }

  /** Occupied slot indexes. */
  *slots(): IterableIterator<number> {
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== 0) yield i;
  }

  /** Drop the least useful tokens until at most `max` remain: first those learned once,
   *  oldest first, then any token, oldest first (SpamAssassin expires by atime too).
   *  Returns how many were removed. */
  expire(max: number): number {
    if (this.size <= max) return 0;
    const idx: number[] = [];
    for (const i of this.slots()) idx.push(i);
    idx.sort((a, b) => {
      const ra = this.spam[a]! + this.ham[a]! <= 1 ? 0 : 1;
      const rb = this.spam[b]! + this.ham[b]! <= 1 ? 0 : 1;
      return ra - rb || this.seen[a]! - this.seen[b]!;
    });
    const drop = this.size - max;
    const keysToDrop = idx.slice(0, drop).map((i) => this.keys[i]!);
    for (const k of keysToDrop) {
      const i = this.find(k);
      if (i >= 0) this.removeAt(i);
    }
    return drop;
  }
}

// ---------------------------------------------------------------------------------------
// The scanning filter's table: counts only, looked up by 32-bit fingerprint.
//
// A filter never learns through this table (learning reads the whole file into a TokenTable
// under the lock), so it keeps no learn time and no full key: per slot a 32-bit fingerprint
// and the two counts, interleaved in one Uint32Array (12 bytes a slot, one cache line a
// probe), against 20 bytes in TokenTable. The slot comes from the top bits of the key's low
// 32 bits (multiply-shift, so the capacity need not be a power of two) and the fingerprint
// from the other bits (the key's 21 high bits and its 11 lowest), so entries of one cluster
// have independent fingerprints.
//
// The price is a false match: a token that is not in the table meets an entry with its
// fingerprint with probability 2^-32 per entry compared, ½(1 + 1/(1−α)²) entries on
// average at load α (about 5.1 at the 0.7 the table is built with). At ~1000 tokens a message,
// about 1 message in 800,000 gets one token's counts wrong, one token among the 150 that vote.
// Storing 53-bit keys already merges two tokens whose cyrb53 hashes collide, far less often
// (a message's tokens against 300,000 learned: ~1 in 30 million messages). The file keeps
// full keys: nothing is lost on disk, and test/store-table.test.ts measures the rate.

/** Load at which a CountTable is built, and the range in which a reload keeps its array. */
export const COUNT_LOAD = 0.7;
const COUNT_LOAD_MIN = 0.5;
const COUNT_LOAD_MAX = 0.8;

export class CountTable {
  /** [fingerprint, spam, ham] per slot; fingerprint 0 marks an empty slot. */
  private t: Uint32Array;
  private cap: number;
  size = 0;

  constructor(tokens = 0) {
    this.cap = CountTable.capacityFor(tokens);
    this.t = new Uint32Array(this.cap * 3);
  }

  static capacityFor(tokens: number): number {
    return Math.max(1024, Math.ceil(tokens / COUNT_LOAD));
  }

  get capacity(): number {
    return this.cap;
  }

  get byteLength(): number {
    return this.t.byteLength;
  }

  /** Whether `tokens` entries can be loaded into this table's array as it is (a reload
   *  keeps the array while the load stays between 0.5 and 0.8, so the store's learns do
   *  not allocate and free megabytes each time). */
  fits(tokens: number): boolean {
    return tokens <= this.cap * COUNT_LOAD_MAX && (this.cap === 1024 || tokens >= this.cap * COUNT_LOAD_MIN);
  }

  /** Empty the table, keeping its array. */
  clear(): void {
    this.t.fill(0);
    this.size = 0;
  }

  /** Home slot and fingerprint of a key (53-bit, as TokenTable normalises it: 0 is 1). */
  private static fp(key: number): number {
    const lo = key >>> 0;
    const f = (Math.floor(key / 4294967296) * 2048 + (lo & 0x7ff)) >>> 0;
    return f === 0 ? 1 : f;
  }

  private home(key: number): number {
    return Math.floor(((key >>> 0) / 4294967296) * this.cap);
  }

  /** Insert a key absent from the table (the file holds each key once). */
  insert(key: number, spam: number, ham: number): void {
    if (key === 0) key = 1;
    if (this.size + 1 > this.cap * COUNT_LOAD_MAX) throw new RangeError('CountTable full');
    const t = this.t, cap = this.cap;
    let i = this.home(key);
    while (t[i * 3] !== 0) if (++i === cap) i = 0;
    const j = i * 3;
    t[j] = CountTable.fp(key);
    t[j + 1] = spam;
    t[j + 2] = ham;
    this.size++;
  }

  /** Counts of each token into out arrays (0 when unknown). */
  lookup(tokens: ArrayLike<number>, outSpam: Uint32Array | number[], outHam: Uint32Array | number[]): void {
    const t = this.t, cap = this.cap;
    for (let n = 0; n < tokens.length; n++) {
      let key = tokens[n]!;
      if (key === 0) key = 1;
      const f = CountTable.fp(key);
      let i = Math.floor(((key >>> 0) / 4294967296) * cap);
      let s = 0, h = 0;
      for (;;) {
        const x = t[i * 3]!;
        if (x === f) {
          s = t[i * 3 + 1]!;
          h = t[i * 3 + 2]!;
          break;
        }
        if (x === 0) break;
        if (++i === cap) i = 0;
      }
      outSpam[n] = s;
      outHam[n] = h;
    }
  }
}
