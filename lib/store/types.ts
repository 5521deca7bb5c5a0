// The store interface shared by the spam filter's Bayes database and its greylist, with
// two implementations: a single file (lib/store/file.ts) and Redis (lib/store/redis.ts).

export type StoreClass = 'spam' | 'ham';

/** One message to learn: its digest (lib/spam/digest.ts) and its unique token hashes. */
export interface LearnItem {
  digest: string;
  tokens: ArrayLike<number>;
}

/**
 * learned     first time this message is learned
 * already     learned before with the same class: nothing changed (idempotent)
 * moved       learned before with the other class: its tokens moved to this class
 * forgotten   forget: the message's tokens were removed
 * not-learned forget of a message never learned: nothing changed
 */
export type LearnOutcome = 'learned' | 'already' | 'moved' | 'forgotten' | 'not-learned';

export interface Lookup {
  nspam: number;
  nham: number;
  /** Counts aligned with the tokens asked for. */
  spam: Uint32Array;
  ham: Uint32Array;
}

export interface BayesStats {
  nspam: number;
  nham: number;
  tokens: number;
  /** Learned message digests. */
  messages: number;
  /** Newest learn, seconds since the epoch (0: never). */
  lastLearn: number;
}

export interface GreylistOptions {
  /** A retry is accepted only after this many seconds. */
  minDelay: number;
  /** ... and before this many seconds after first sight; later it starts over. */
  window: number;
}

export interface GreylistVerdict {
  /** true: let it through. false: answer 451. */
  pass: boolean;
  /** When first seen (seconds since the epoch). */
  firstSeen: number;
  /** Seconds until a retry would pass (0 when passing). */
  retryIn: number;
}

export interface BayesStore {
  /** Token counts and message totals. `user` selects per-user statistics. */
  lookup(tokens: ArrayLike<number>, user?: string): Promise<Lookup>;
  /** Learn (cls) or forget (null) messages atomically: all items or none. */
  learn(cls: StoreClass | null, items: LearnItem[], user?: string, time?: number): Promise<LearnOutcome[]>;
  /** Class a message digest was learned as, if any. */
  learnedAs(digest: string, user?: string): Promise<StoreClass | undefined>;
  stats(user?: string): Promise<BayesStats>;
}

export interface GreylistStore {
  /** Record/check a greylist key at time `now` (seconds). */
  greylist(key: string, now: number, opt: GreylistOptions): Promise<GreylistVerdict>;
}

export interface Store extends BayesStore, GreylistStore {
  readonly kind: 'file' | 'redis' | 'memory';
  /** Human-readable location (path or URL). */
  readonly location: string;
  close(): Promise<void>;
}

export class StoreError extends Error {
  constructor(message: string, readonly code: 'EUSAGE' | 'ELOCK' | 'EFORMAT' | 'EIO' | 'ECONN') {
    super(message);
    this.name = 'StoreError';
  }
}
