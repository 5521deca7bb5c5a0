// The Bayes database in memory (totals, token table, learned digests) and its learn/forget
// semantics; the file store persists exactly this, the memory store just keeps it.

import { TokenTable } from './table.js';
import type { BayesStats, GreylistOptions, GreylistVerdict, LearnItem, LearnOutcome, Lookup, Store, StoreClass } from './types.js';

export const SPAM = 1;
export const HAM = 0;

export class BayesDb {
  nspam = 0;
  nham = 0;
  lastLearn = 0;
  table: TokenTable;
  /** Learned message digests → SPAM | HAM. */
  seen = new Map<string, number>();

  constructor(capacity?: number) {
    this.table = new TokenTable(capacity);
  }

  lookup(tokens: ArrayLike<number>): Lookup {
    const spam = new Uint32Array(tokens.length);
    const ham = new Uint32Array(tokens.length);
    this.table.lookup(tokens, spam, ham);
    return { nspam: this.nspam, nham: this.nham, spam, ham };
  }

  private apply(cls: number, tokens: ArrayLike<number>, sign: 1 | -1, time: number): void {
    const ds = cls === SPAM ? sign : 0;
    const dh = cls === HAM ? sign : 0;
    for (let i = 0; i < tokens.length; i++) this.table.add(tokens[i]!, ds, dh, time);
    if (cls === SPAM) this.nspam = Math.max(0, this.nspam + sign);
    else this.nham = Math.max(0, this.nham + sign);
  }

  /**
   * Learn `cls` (or forget when null). Idempotent per digest: the same message learned twice
   * counts once; learned with the other class it moves; forget removes it. Forgetting uses
   * the tokens given (the message is tokenized again), so counts stop at 0 if the tokenizer
   * changed since the message was learned.
   */
  learn(cls: StoreClass | null, item: LearnItem, time: number): LearnOutcome {
    const prev = this.seen.get(item.digest);
    const want = cls === null ? undefined : cls === 'spam' ? SPAM : HAM;
    if (want === undefined) {
      if (prev === undefined) return 'not-learned';
      this.apply(prev, item.tokens, -1, time);
      this.seen.delete(item.digest);
      return 'forgotten';
    }
    if (prev === want) return 'already';
    if (prev !== undefined) this.apply(prev, item.tokens, -1, time);
    this.apply(want, item.tokens, 1, time);
    this.seen.set(item.digest, want);
    this.lastLearn = Math.max(this.lastLearn, time);
    return prev === undefined ? 'learned' : 'moved';
  }

  stats(): BayesStats {
    return { nspam: this.nspam, nham: this.nham, tokens: this.table.size, messages: this.seen.size, lastLearn: this.lastLearn };
  }
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export function greylistCheck(firstSeen: number | undefined, now: number, opt: GreylistOptions): { verdict: GreylistVerdict; record: number | null } {
  if (firstSeen === undefined || now - firstSeen > opt.window || now < firstSeen) {
    return { verdict: { pass: false, firstSeen: now, retryIn: opt.minDelay }, record: now };
  }
  const age = now - firstSeen;
  if (age >= opt.minDelay) return { verdict: { pass: true, firstSeen, retryIn: 0 }, record: null };
  return { verdict: { pass: false, firstSeen, retryIn: opt.minDelay - age }, record: null };
}

/** A store that lives only in this process (tests, benchmark). */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  readonly location = 'memory:';
  private dbs = new Map<string, BayesDb>();
  private grey = new Map<string, number>();

  db(user?: string): BayesDb {
    const k = user ?? '';
    let d = this.dbs.get(k);
    if (!d) this.dbs.set(k, (d = new BayesDb()));
    return d;
  }

  async lookup(tokens: ArrayLike<number>, user?: string): Promise<Lookup> {
    return this.db(user).lookup(tokens);
  }

  async learn(cls: StoreClass | null, items: LearnItem[], user?: string, time = nowSeconds()): Promise<LearnOutcome[]> {
    const d = this.db(user);
    return items.map((it) => d.learn(cls, it, time));
  }

  async learnedAs(digest: string, user?: string): Promise<StoreClass | undefined> {
    const v = this.db(user).seen.get(digest);
    return v === undefined ? undefined : v === SPAM ? 'spam' : 'ham';
  }

  async stats(user?: string): Promise<BayesStats> {
    return this.db(user).stats();
  }

  async greylist(key: string, now: number, opt: GreylistOptions): Promise<GreylistVerdict> {
    const r = greylistCheck(this.grey.get(key), now, opt);
    if (r.record !== null) this.grey.set(key, r.record);
    return r.verdict;
  }

  async close(): Promise<void> {}
}
