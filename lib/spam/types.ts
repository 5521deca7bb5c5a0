// Types shared by the spam engine, its stores and its callers.

/** What smtpd told us about the SMTP session (link-connect, link-identify, link-auth). */
export interface SessionFacts {
  /** Client IP address (no port). */
  ip?: string;
  /** Reverse DNS name of the client; null when it has none; undefined when unknown. */
  rdns?: string | null;
  /** smtpd's forward-confirmed rDNS verdict. */
  fcrdns?: 'pass' | 'fail' | 'error';
  /** The rDNS name looks like a dynamic/residential pool (lib/dynrdns.ts classifyRdns). */
  rdnsDynamic?: boolean;
  /** HELO/EHLO argument. */
  helo?: string;
  /** The client authenticated (submission): session rules do not apply. */
  authenticated?: boolean;
  /** Our own host names and addresses, for "HELO claims to be us". */
  localNames?: string[];
  /** Envelope sender and recipients. */
  mailFrom?: string;
  rcptTo?: string[];
  /** Time the message arrived (ms since epoch); defaults to now. */
  time?: number;
}

export type SpamAction = 'no action' | 'greylist' | 'add header' | 'rewrite subject' | 'reject';

export interface SymbolHit {
  name: string;
  score: number;
  description: string;
}

export interface BayesResult {
  /** Chi-square combined spam probability (0 = ham, 1 = spam). */
  probability: number;
  /** Number of tokens that voted. */
  tokens: number;
}

export interface ScanResult {
  score: number;
  required: number;
  action: SpamAction;
  symbols: SymbolHit[];
  /** null when Bayes did not vote (not enough training, or no store). */
  bayes: BayesResult | null;
}

export type SpamClass = 'spam' | 'ham';
