// The DNS resolver every filter shares: typed results that never throw, a per-query
// timeout we enforce ourselves, a bound on queries in flight, one query per (name, type)
// however many sessions ask, and a TTL-honouring positive and negative cache.
//
// Why each piece exists:
// - smtpd waits for our answer with no timeout of its own (protocol.md §4.7), so a slow
//   resolver must never hold a session longer than timeoutMs.
// - Ten connections from one botnet IP arrive together; they must cost one PTR query, and a
//   quota-limited list (SenderScore) must be asked once per TTL, not once per connection.
// - A flood of distinct clients must not open thousands of sockets at the resolver.

import type { FlagSpec } from './flags.js';
import { LRUCache } from 'lru-cache';
import {
  caresBackend,
  mapErrorCode,
  parseNameserver,
  type DnsBackend,
  type DnsErrorKind,
  type DnsType,
} from './dns-cares.js';
import { parseIp, reverseName } from './net.js';

export { mapErrorCode, parseNameserver, caresBackend } from './dns-cares.js';
export type { DnsBackend, DnsErrorKind, DnsType, RawAnswer } from './dns-cares.js';

/** An answer. ttl (seconds) is what remains of the clamped TTL when served from cache. */
export interface DnsAnswer {
  ok: true;
  values: string[];
  ttl: number;
}

/** A failure; `temporary` decides between a 4xx/temperror and a permanent verdict. */
export interface DnsFailure {
  ok: false;
  error: DnsErrorKind;
  message: string;
  temporary: boolean;
}

export type DnsResult = DnsAnswer | DnsFailure;

/** True for failures worth retrying later (servfail, refused, timeout, transport errors). */
export function isTemporary(result: DnsResult): boolean {
  return !result.ok && result.temporary;
}

export interface DnsOptions {
  /** Nameservers (`ip`, `ip:port`, `[v6]:port`); default: the system resolv.conf. */
  servers?: string[];
  /** Per lookup, including time queued behind maxInFlight; default 2000 ms. */
  timeoutMs?: number;
  /** c-ares tries per query; default 2 (each gets timeoutMs / tries). */
  tries?: number;
  /** Queries outstanding at the backend at once; more wait in a FIFO queue. Default 256 (a burst of connects to a 20 ms resolver must not queue). */
  maxInFlight?: number;
  /** Cache entries; default 10000. */
  cacheSize?: number;
  /** Answer TTLs are clamped to [minTtl, maxTtl] seconds; defaults 10 and 3600. */
  minTtl?: number;
  maxTtl?: number;
  /** TTL for answers whose TTL c-ares hides (PTR, TXT); default 300 s. */
  defaultTtl?: number;
  /**
   * TTL for NXDOMAIN/NODATA; default 300 s. RFC 2308 takes it from the SOA, which c-ares
   * does not return, so it is configuration.
   */
  negativeTtl?: number;
  /**
   * TTL for SERVFAIL, REFUSED and transport errors: a few seconds spares a failing server
   * a retry storm. Default 5 s; 0 disables. Timeouts are never cached: they include our
   * own queueing and say nothing about the name.
   */
  errorTtl?: number;
  /** Clock in ms for cache expiry (tests pass a fake one); default performance.now. */
  now?: () => number;
  /** Where queries go; default the c-ares backend built from servers/timeoutMs/tries. */
  backend?: DnsBackend;
}

/** Counters for logs and benchmarks. */
export interface DnsStats {
  /** Queries handed to the backend. */
  queriesSent: number;
  cacheHits: number;
  cacheMisses: number;
  /** Lookups that joined a query already in flight for the same (name, type). */
  coalesced: number;
  timeouts: number;
  /** Failures other than timeouts, NXDOMAIN and NODATA. */
  errors: number;
  /** Right now: queries at the backend, and lookups waiting for a slot. */
  inFlight: number;
  queued: number;
}

const DEFAULTS = {
  timeoutMs: 2000,
  tries: 2,
  maxInFlight: 256,
  cacheSize: 10000,
  minTtl: 10,
  maxTtl: 3600,
  defaultTtl: 300,
  negativeTtl: 300,
  errorTtl: 5,
};

interface Waiter {
  start: () => void;
  abandoned: boolean;
}

/** A counting semaphore with a FIFO queue; abandoned waiters are skipped, never run. */
class Limiter {
  active = 0;
  private readonly queue: Waiter[] = [];

  constructor(private readonly max: number) {}

  get queued(): number {
    return this.queue.length;
  }

  /** Runs start() now or when a slot frees; the caller must call release() once after. */
  acquire(start: () => void): Waiter {
    const w: Waiter = { start, abandoned: false };
    if (this.active < this.max) {
      this.active++;
      start();
    } else {
      this.queue.push(w);
    }
    return w;
  }

  release(): void {
    this.active--;
    let next = this.queue.shift();
    while (next?.abandoned) next = this.queue.shift();
    if (next) {
      this.active++;
      next.start();
    }
  }

  /** Drops a waiter that timed out before its turn, so the queue does not grow unbounded. */
  abandon(w: Waiter): void {
    w.abandoned = true;
    const i = this.queue.indexOf(w);
    if (i >= 0) this.queue.splice(i, 1);
  }

  drain(): Waiter[] {
    return this.queue.splice(0);
  }
}

/** RFC 1035 §2.3.4 limits; rejecting early keeps junk PTR names out of the cache. */
function normalizeName(name: string): string | null {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (n.length === 0 || n.length > 253) return null;
  for (const label of n.split('.')) {
    if (label.length === 0 || label.length > 63) return null;
  }
  if (/[\s\x00-\x1f\x7f]/.test(n)) return null;
  return n;
}

function fail(error: DnsErrorKind, message: string, temporary: boolean): DnsFailure {
  return { ok: false, error, message, temporary };
}

export class DnsResolver {
  private readonly opts: typeof DEFAULTS;
  private readonly backend: DnsBackend;
  private readonly cache: LRUCache<string, DnsResult>;
  private readonly inflight = new Map<string, Promise<DnsResult>>();
  private readonly limiter: Limiter;
  /** finish() of every lookup whose caller is still waiting, for close(). */
  private readonly pending = new Set<(r: DnsResult) => void>();
  private readonly counters = { queriesSent: 0, cacheHits: 0, cacheMisses: 0, coalesced: 0, timeouts: 0, errors: 0 };

  constructor(options: DnsOptions = {}) {
    const o = { ...DEFAULTS };
    for (const k of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
      const v = options[k];
      if (v !== undefined) {
        if (!Number.isFinite(v) || v < 0) throw new Error(`dns: ${k} must be a non-negative number`);
        o[k] = v;
      }
    }
    if (o.maxInFlight < 1) throw new Error('dns: maxInFlight must be at least 1');
    if (o.minTtl > o.maxTtl) throw new Error('dns: minTtl must not exceed maxTtl');
    this.opts = o;
    this.backend = options.backend ?? caresBackend({ servers: options.servers, timeoutMs: o.timeoutMs, tries: o.tries });
    this.limiter = new Limiter(o.maxInFlight);
    this.cache = new LRUCache<string, DnsResult>({
      max: Math.max(1, o.cacheSize),
      // Read the clock on every check; the default 1 ms memo would fight a fake clock.
      ttlResolution: 0,
      perf: { now: options.now ?? (() => performance.now()) },
    });
  }

  /** All PTR names of an IP (lower-case, no trailing dot), from in-addr.arpa / ip6.arpa. */
  async ptr(ip: string): Promise<DnsResult> {
    if (parseIp(ip) === null) return fail('error', `not an IP address: ${JSON.stringify(ip)}`, false);
    return this.lookup('PTR', reverseName(ip));
  }

  a(name: string): Promise<DnsResult> {
    return this.lookup('A', name);
  }

  aaaa(name: string): Promise<DnsResult> {
    return this.lookup('AAAA', name);
  }

  /** TXT records, each record's character-strings joined into one value. */
  txt(name: string): Promise<DnsResult> {
    return this.lookup('TXT', name);
  }

  /** Cached, coalesced, bounded lookup of (type, name). Never rejects. */
  lookup(type: DnsType, name: string): Promise<DnsResult> {
    const qname = normalizeName(name);
    if (qname === null) return Promise.resolve(fail('error', `invalid DNS name: ${JSON.stringify(name)}`, false));
    const key = `${type} ${qname}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.counters.cacheHits++;
      if (!hit.ok) return Promise.resolve({ ...hit });
      const remaining = Math.ceil(this.cache.getRemainingTTL(key) / 1000);
      return Promise.resolve({ ok: true, values: [...hit.values], ttl: Math.max(0, remaining) });
    }
    const running = this.inflight.get(key);
    if (running) {
      this.counters.coalesced++;
      // Each joiner gets its own copy: callers may mutate values.
      return running.then((r) => (r.ok ? { ...r, values: [...r.values] } : { ...r }));
    }
    this.counters.cacheMisses++;
    const p = this.run(type, qname, key);
    this.inflight.set(key, p);
    // Leave the map when the caller-visible result is known (answer or our timeout); a late
    // answer still lands in the cache.
    void p.then(() => {
      if (this.inflight.get(key) === p) this.inflight.delete(key);
    });
    return p;
  }

  private run(type: DnsType, qname: string, key: string): Promise<DnsResult> {
    return new Promise<DnsResult>((resolve) => {
      let settled = false;
      const finish = (r: DnsResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.pending.delete(finish);
        if (!r.ok && r.error === 'timeout') this.counters.timeouts++;
        resolve(r);
      };
      this.pending.add(finish);
      const timer = setTimeout(() => {
        this.limiter.abandon(waiter);
        finish(fail('timeout', `${type} ${qname}: no answer within ${this.opts.timeoutMs} ms`, true));
      }, this.opts.timeoutMs);
      const waiter = this.limiter.acquire(() => {
        this.counters.queriesSent++;
        // Through a then() so that a backend throwing synchronously still ends as a result.
        Promise.resolve().then(() => this.backend.query(type, qname)).then(
          (raw) => {
            const values = type === 'PTR' ? raw.values.map((v) => v.toLowerCase().replace(/\.$/, '')) : raw.values;
            const ttl = this.clampTtl(raw.ttl ?? this.opts.defaultTtl);
            const answer: DnsAnswer = { ok: true, values, ttl };
            this.cache.set(key, answer, { ttl: ttl * 1000 });
            finish({ ...answer, values: [...values] });
          },
          (err: unknown) => {
            const code = (err as { code?: unknown } | null)?.code;
            const kind = mapErrorCode(typeof code === 'string' ? code : undefined);
            const detail = typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
            const r = fail(kind.error, `${type} ${qname}: ${detail}`, kind.temporary);
            this.remember(key, r);
            finish(r);
          },
        ).finally(() => this.limiter.release());
      });
    });
  }

  private remember(key: string, r: DnsFailure): void {
    if (r.error === 'timeout') return;
    if (r.error === 'nxdomain' || r.error === 'nodata') {
      if (this.opts.negativeTtl > 0) this.cache.set(key, r, { ttl: this.opts.negativeTtl * 1000 });
      return;
    }
    this.counters.errors++;
    if (this.opts.errorTtl > 0) this.cache.set(key, r, { ttl: this.opts.errorTtl * 1000 });
  }

  private clampTtl(ttl: number): number {
    return Math.min(this.opts.maxTtl, Math.max(this.opts.minTtl, ttl));
  }

  stats(): DnsStats {
    return { ...this.counters, inFlight: this.limiter.active, queued: this.limiter.queued };
  }

  /** Forget every cached answer (e.g. on SIGHUP). */
  clearCache(): void {
    this.cache.clear();
  }

  /** Cancel everything outstanding (callers get `timeout`) and empty the cache. */
  close(): void {
    for (const w of this.limiter.drain()) w.abandoned = true;
    for (const finish of [...this.pending]) finish(fail('timeout', 'resolver closed', true));
    this.backend.cancel();
    this.cache.clear();
  }
}

/** The resolver a filter builds once at startup, typically from its `-nameserver` flag. */
export function createResolver(options: DnsOptions = {}): DnsResolver {
  return new DnsResolver(options);
}

/**
 * The `-nameserver ip[:port]` flag of the filters that look things up
 * (repeatable; checked at startup): a resolver instead of resolv.conf's.
 */
export function nameserverFlag(help: string): FlagSpec {
  return {
    name: 'nameserver',
    kind: 'string',
    arg: 'ip[:port]',
    repeat: true,
    help,
    check: (v) => {
      try {
        parseNameserver(String(v));
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
  };
}
