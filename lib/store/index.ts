// Open a store from the value of the filter's -store / the CLI's --store:
//   redis://[:password@]host[:port][/db]   a Redis server (several MX sharing statistics)
//   rediss://...                             the same over TLS
//   unix:///path/to/redis.sock[?db=N]       Redis over a UNIX socket
//   anything else                            a file path (lib/store/file.ts)
// Default: a file under /var/lib/opensmtpd-filters/.

import { FileStore, type FileStoreOptions } from './file.js';
import { MemoryStore } from './memory.js';
import { StoreError, type Store } from './types.js';

export type { Store, BayesStore, GreylistStore, LearnItem, LearnOutcome, Lookup, BayesStats, GreylistOptions, GreylistVerdict, StoreClass } from './types.js';
export { StoreError } from './types.js';
export { FileStore } from './file.js';
export { MemoryStore } from './memory.js';

export const DEFAULT_STORE = '/var/lib/opensmtpd-filters/spamscore.db';

export interface OpenOptions extends FileStoreOptions {
  /** Redis: key prefix (default "sf:"). */
  prefix?: string;
  /** Redis: connect timeout in ms (default 5000). */
  connectTimeout?: number;
}

export function isRedisSpec(spec: string): boolean {
  return /^(rediss?|unix|redis\+unix):\/\//i.test(spec);
}

export async function openStore(spec: string = DEFAULT_STORE, opt: OpenOptions = {}): Promise<Store> {
  if (!spec) throw new StoreError('empty store value', 'EUSAGE');
  if (spec === 'memory:') return new MemoryStore();
  if (isRedisSpec(spec)) {
    const { RedisStore } = await import('./redis.js');
    const s = new RedisStore(spec, opt);
    await s.connect();
    return s;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) throw new StoreError(`unsupported store URL ${spec} (use a path or redis://host:port/db)`, 'EUSAGE');
  return new FileStore(spec, opt);
}
