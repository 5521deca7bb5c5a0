// Greylisting for scores in the greylist band (rspamd's default: 4 <= score < 6): the first
// time a message is seen it gets a 451; a retry after `minDelay` and within `window`
// passes. Real MTAs retry; most spam software does not.
//
// Key (default "message"): SHA-256 of the message digest (lib/spam/digest.ts: Message-ID,
// Date, From and the normalised body), the envelope sender and the sorted recipients. The
// client address is left out on purpose: large senders retry from another address of
// their pool, and a retry carries the same message, so the digest recognises it where an
// IP triplet would greylist it again. The "triplet" key (client /24 or /64, sender,
// recipients) is there for content that changes between retries (postgrey's model).
//
// Defaults: minDelay 300 s and window 24 h, as rspamd's greylist module (timeout 5 min,
// expire 1 day) and postgrey (--delay=300); a shorter delay (60 s) lets more spamware
// through, which retries quickly when it retries at all.

import { createHash } from 'node:crypto';
import type { GreylistOptions } from '../store/types.js';

export const GREYLIST_DEFAULTS: Readonly<GreylistOptions> = Object.freeze({ minDelay: 300, window: 86_400 });

export interface GreylistInput {
  /** messageDigest() of the message (mode "message"). */
  digest?: string;
  mailFrom?: string;
  rcptTo?: string[];
  /** Client IP (mode "triplet"). */
  ip?: string;
}

/** /24 of an IPv4 address, /64 of an IPv6 one. */
export function clientNetwork(ip: string): string {
  if (ip.includes(':')) {
    // Expand "::" to get the first four groups right.
    const [head, tail] = ip.toLowerCase().split('::') as [string, string | undefined];
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...new Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
    return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':') + '::/64';
  }
  const p = ip.split('.');
  return p.slice(0, 3).join('.') + '.0/24';
}

export function greylistKey(i: GreylistInput, mode: 'message' | 'triplet' = 'message'): string {
  const h = createHash('sha256');
  const from = (i.mailFrom ?? '').toLowerCase();
  const rcpts = (i.rcptTo ?? []).map((r) => r.toLowerCase()).sort().join(',');
  if (mode === 'message') {
    if (!i.digest) throw new Error('greylistKey: mode "message" needs the message digest');
    h.update(`m\n${i.digest}\n${from}\n${rcpts}`);
  } else {
    if (!i.ip) throw new Error('greylistKey: mode "triplet" needs the client IP');
    h.update(`t\n${clientNetwork(i.ip)}\n${from}\n${rcpts}`);
  }
  return h.digest('hex');
}
