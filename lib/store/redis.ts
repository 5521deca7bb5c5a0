// The Redis store, for several MX sharing one database. Same semantics as the file store;
// every learn of one message is one Lua script, so it is atomic on the server and
// concurrent learners (CLI on one host, filter autolearn on another) never lose updates.
//
// Keys (prefix default "sf:"; per-user sets under "<prefix>u:<user>:"):
//   <p>tok    hash  token (base-36 hash) → "spam ham lastSeen"
//   <p>seen   hash  message digest → "1" (spam) | "0" (ham)
//   <p>tot    hash  spam, ham, last (newest learn, seconds)
//   <prefix>users   set of users with their own statistics
//   <prefix>g:<key> greylist: first-seen time, expires after the window

import { Redis, type RedisOptions } from 'ioredis';
import { StoreError, type BayesStats, type GreylistOptions, type GreylistVerdict, type LearnItem, type LearnOutcome, type Lookup, type Store, type StoreClass } from './types.js';

const LEARN_LUA = `
local cls = ARGV[1]
local now = ARGV[2]
local digest = ARGV[3]
local prev = redis.call('HGET', KEYS[2], digest)
local function apply(c, sign)
  local spam = (c == '1')
  for i = 4, #ARGV do
    local f = ARGV[i]
    local v = redis.call('HGET', KEYS[1], f)
    local s, h, t = 0, 0, '0'
    if v then
      local a, b, cc = string.match(v, '^(%d+) (%d+) (%d+)$')
      s = tonumber(a) or 0
      h = tonumber(b) or 0
      t = cc or '0'
    end
    if spam then s = s + sign else h = h + sign end
    if s < 0 then s = 0 end
    if h < 0 then h = 0 end
    if s == 0 and h == 0 then
      if v then redis.call('HDEL', KEYS[1], f) end
    else
      if sign > 0 then t = now end
      redis.call('HSET', KEYS[1], f, s .. ' ' .. h .. ' ' .. t)
    end
  end
  local field = spam and 'spam' or 'ham'
  local n = redis.call('HINCRBY', KEYS[3], field, sign)
  if n < 0 then redis.call('HSET', KEYS[3], field, 0) end
end
if cls == '' then
  if not prev then return 'not-learned' end
  apply(prev, -1)
  redis.call('HDEL', KEYS[2], digest)
  return 'forgotten'
end
if prev == cls then return 'already' end
if prev then apply(prev, -1) end
apply(cls, 1)
redis.call('HSET', KEYS[2], digest, cls)
local last = tonumber(redis.call('HGET', KEYS[3], 'last') or '0') or 0
if tonumber(now) > last then redis.call('HSET', KEYS[3], 'last', now) end
if prev then return 'moved' end
return 'learned'
`;

const GREY_LUA = `
local now = tonumber(ARGV[1])
local minDelay = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local v = redis.call('GET', KEYS[1])
if v then
  local first = tonumber(v)
  if first and now >= first and now - first <= window then
    if now - first >= minDelay then return {1, first, 0} end
    return {0, first, minDelay - (now - first)}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', window)
return {0, now, minDelay}
`;

export interface RedisStoreOptions {
  prefix?: string;
  connectTimeout?: number;
}

type Scripted = Redis & {
  sfLearn(tok: string, seen: string, tot: string, ...args: (string | number)[]): Promise<string>;
  sfGrey(key: string, now: number, minDelay: number, window: number): Promise<[number, number, number]>;
};

/** Parse redis://[:pw@]host[:port][/db], rediss://..., unix:///path[?db=N]. */
export function redisOptions(spec: string): RedisOptions {
  const u = new URL(spec);
  const o: RedisOptions = {};
  if (u.protocol === 'unix:' || u.protocol === 'redis+unix:') {
    o.path = decodeURIComponent(u.pathname);
    const db = u.searchParams.get('db');
    if (db) o.db = Number(db);
  } else {
    o.host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
    o.port = u.port ? Number(u.port) : 6379;
    const db = u.pathname.replace(/^\//, '');
    if (db) {
      if (!/^\d+$/.test(db)) throw new StoreError(`bad Redis database number in ${spec}`, 'EUSAGE');
      o.db = Number(db);
    }
    if (u.protocol === 'rediss:') o.tls = {};
  }
  if (u.password) o.password = decodeURIComponent(u.password);
  if (u.username) o.username = decodeURIComponent(u.username);
  return o;
}

function field(token: number): string {
  return token.toString(36);
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly location: string;
  private readonly r: Scripted;
  private readonly prefix: string;
  lastError: Error | null = null;

  constructor(spec: string, opt: RedisStoreOptions = {}) {
    // Never show a password in messages.
    this.location = spec.replace(/\/\/([^@/]*)@/, '//***@');
    this.prefix = opt.prefix ?? 'sf:';
    let base: RedisOptions;
    try {
      base = redisOptions(spec);
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw new StoreError(`bad Redis URL ${this.location}`, 'EUSAGE');
    }
    this.r = new Redis({
      ...base,
      lazyConnect: true,
      connectTimeout: opt.connectTimeout ?? 5000,
      // Fail a command quickly while the server is away (the filter then applies its
      // error policy) but keep reconnecting in the background.
      maxRetriesPerRequest: 1,
      retryStrategy: (times: number) => Math.min(times * 200, 2000),
    }) as Scripted;
    this.r.on('error', (e: Error) => {
      this.lastError = e;
    });
    this.r.defineCommand('sfLearn', { numberOfKeys: 3, lua: LEARN_LUA });
    this.r.defineCommand('sfGrey', { numberOfKeys: 1, lua: GREY_LUA });
  }

  async connect(): Promise<void> {
    try {
      await this.r.connect();
      await this.r.ping();
    } catch (e) {
      this.r.disconnect();
      throw new StoreError(`cannot connect to ${this.location}: ${(e as Error).message}`, 'ECONN');
    }
  }

  private p(user?: string): string {
    return user ? `${this.prefix}u:${user.toLowerCase()}:` : this.prefix;
  }

  private wrap(e: unknown): StoreError {
    return e instanceof StoreError ? e : new StoreError(`${this.location}: ${(e as Error).message}`, 'ECONN');
  }

  async lookup(tokens: ArrayLike<number>, user?: string): Promise<Lookup> {
    const p = this.p(user);
    const fields: string[] = [];
    for (let i = 0; i < tokens.length; i++) fields.push(field(tokens[i]!));
    try {
      const pipe = this.r.pipeline();
      pipe.hmget(p + 'tot', 'spam', 'ham');
      if (fields.length) pipe.hmget(p + 'tok', ...fields);
      const res = (await pipe.exec()) ?? [];
      for (const [err] of res) if (err) throw err;
      const tot = res[0]![1] as (string | null)[];
      const vals = fields.length ? (res[1]![1] as (string | null)[]) : [];
      const spam = new Uint32Array(fields.length), ham = new Uint32Array(fields.length);
      for (let i = 0; i < vals.length; i++) {
        const v = vals[i];
        if (!v) continue;
        const sp = v.indexOf(' ');
        spam[i] = Number(v.slice(0, sp));
        ham[i] = Number(v.slice(sp + 1, v.indexOf(' ', sp + 1)));
      }
      return { nspam: Number(tot[0] ?? 0), nham: Number(tot[1] ?? 0), spam, ham };
    } catch (e) {
      throw this.wrap(e);
    }
  }

  async learn(cls: StoreClass | null, items: LearnItem[], user?: string, time = Math.floor(Date.now() / 1000)): Promise<LearnOutcome[]> {
    const p = this.p(user);
    const c = cls === null ? '' : cls === 'spam' ? '1' : '0';
    try {
      if (user && cls !== null) await this.r.sadd(this.prefix + 'users', user.toLowerCase());
      const pipe = this.r.pipeline() as unknown as { sfLearn: Scripted['sfLearn']; exec(): Promise<[Error | null, unknown][] | null> };
      for (const it of items) {
        const args: (string | number)[] = [c, time, it.digest];
        for (let i = 0; i < it.tokens.length; i++) args.push(field(it.tokens[i]!));
        void pipe.sfLearn(p + 'tok', p + 'seen', p + 'tot', ...args);
      }
      const res = (await pipe.exec()) ?? [];
      return res.map(([err, v]) => {
        if (err) throw err;
        return v as LearnOutcome;
      });
    } catch (e) {
      throw this.wrap(e);
    }
  }

  async learnedAs(digest: string, user?: string): Promise<StoreClass | undefined> {
    try {
      const v = await this.r.hget(this.p(user) + 'seen', digest);
      return v === null ? undefined : v === '1' ? 'spam' : 'ham';
    } catch (e) {
      throw this.wrap(e);
    }
  }

  async stats(user?: string): Promise<BayesStats> {
    const p = this.p(user);
    try {
      const [tot, ntok, nseen] = await Promise.all([this.r.hgetall(p + 'tot'), this.r.hlen(p + 'tok'), this.r.hlen(p + 'seen')]);
      return { nspam: Number(tot['spam'] ?? 0), nham: Number(tot['ham'] ?? 0), tokens: ntok, messages: nseen, lastLearn: Number(tot['last'] ?? 0) };
    } catch (e) {
      throw this.wrap(e);
    }
  }

  async users(): Promise<string[]> {
    try {
      return (await this.r.smembers(this.prefix + 'users')).sort();
    } catch (e) {
      throw this.wrap(e);
    }
  }

  async greylist(key: string, now: number, opt: GreylistOptions): Promise<GreylistVerdict> {
    try {
      const [pass, first, retry] = await this.r.sfGrey(this.prefix + 'g:' + key, now, opt.minDelay, opt.window);
      return { pass: pass === 1, firstSeen: Number(first), retryIn: Number(retry) };
    } catch (e) {
      throw this.wrap(e);
    }
  }

  async close(): Promise<void> {
    try {
      await this.r.quit();
    } catch {
      this.r.disconnect();
    }
  }
}
