// The in-memory token database: an open-addressing hash table (linear probing,
// backward-shift deletion, no tombstones) over parallel typed arrays, so a million tokens
// take ~24 MB and load/save are plain array copies. Keys are the tokenizer's 53-bit hashes
// (never 0: 0 marks an empty slot).

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
