// smtpd-filters check: score messages the way the filter would.
//
//   smtpd-filters check [--store S] [--user U] [--headers sa|rspamd|both] < message
//   smtpd-filters check --json [--store S] [--user U] --maildir DIR | --mbox FILE
//
// One message: score, action, Bayes and the symbols on stdout (--json: one JSON object).
// Several (Maildir/mbox): one line per message, JSON with --json:
//   {"file":..., "score":..., "required":..., "action":..., "symbols":[{name,score,description}], "bayes":...}
// The client (IP, rDNS, HELO) is recovered from the topmost Received field written from a
// public address that is not one of --trusted (the one our smtpd wrote, for mail read
// back from a mailbox); rules on session facts the copy cannot tell (dynamic rDNS) stay off.
//
// Exit codes: 0 scored, 1 usage, 2 input unreadable or empty, 3 store error,
// 4 some messages of a batch unreadable.

import { renderHeaders, type Dialect } from '../lib/spam/headers.js';
import { EXIT, flag, opt, parseArgs, readMaildir, readMbox, readStdin, type MailboxMessage } from '../lib/spam/mailbox.js';
import { headerFields } from '../lib/spam/mime.js';
import { sessionFromReceived } from '../lib/spam/received.js';
import { SpamScanner, DEFAULT_THRESHOLDS } from '../lib/spam/score.js';
import type { ScanResult } from '../lib/spam/types.js';
import { DEFAULT_STORE, openStore, StoreError, type Store } from '../lib/store/index.js';

const USAGE = `usage: smtpd-filters check [--store S] [--user U] [--json] [--headers sa|rspamd|both] [--maildir DIR | --mbox FILE]
                           [--trusted HOST,...] [--no-bayes] [--greylist N] [--required N] [--reject N]
  reads one message from standard input unless --maildir or --mbox is given`;

function say(s: string): void {
  process.stderr.write(s + '\n');
}

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} needs a number`);
  return n;
}

export function formatResult(r: ScanResult): string {
  const lines = [`score: ${r.score.toFixed(2)} (required ${r.required.toFixed(1)})`, `action: ${r.action}`];
  const nr = r.symbols.find((s) => s.name === 'BAYES_NOT_READY');
  lines.push(r.bayes ? `bayes: ${r.bayes.probability.toFixed(4)} (${r.bayes.tokens} tokens voted)` : `bayes: ${nr ? nr.description.replace(/^Bayes not used: /, 'not used: ') : 'not used'}`);
  lines.push('symbols:');
  const w = Math.max(8, ...r.symbols.map((s) => s.name.length));
  for (const s of [...r.symbols].sort((a, b) => b.score - a.score)) lines.push(`  ${s.name.padEnd(w)} ${s.score.toFixed(3).padStart(8)}  ${s.description}`);
  return lines.join('\n');
}

export async function run(argv: string[]): Promise<number> {
  let a;
  try {
    a = parseArgs(argv, ['user', 'store', 'maildir', 'mbox', 'trusted', 'headers', 'greylist', 'required', 'reject'], ['json', 'help', 'no-bayes']);
  } catch (e) {
    say(`check: ${(e as Error).message}\n${USAGE}`);
    return EXIT.USAGE;
  }
  if (flag(a, 'help')) {
    say(USAGE);
    return EXIT.OK;
  }
  if (a.positional.length) {
    say(`check: unexpected argument ${a.positional[0]}\n${USAGE}`);
    return EXIT.USAGE;
  }
  const maildir = opt(a, 'maildir');
  const mbox = opt(a, 'mbox');
  if (maildir && mbox) {
    say('check: --maildir and --mbox are exclusive');
    return EXIT.USAGE;
  }
  const json = flag(a, 'json');
  const hdr = opt(a, 'headers');
  let dialect: Dialect | 'both' | undefined;
  if (hdr !== undefined) {
    const map: Record<string, Dialect | 'both'> = { sa: 'spamassassin', spamassassin: 'spamassassin', rspamd: 'rspamd', both: 'both' };
    dialect = map[hdr];
    if (!dialect) {
      say(`check: --headers is sa, rspamd or both\n${USAGE}`);
      return EXIT.USAGE;
    }
  }
  let thresholds;
  try {
    thresholds = {
      greylist: num(opt(a, 'greylist'), 'greylist') ?? DEFAULT_THRESHOLDS.greylist,
      addHeader: num(opt(a, 'required'), 'required') ?? DEFAULT_THRESHOLDS.addHeader,
      reject: num(opt(a, 'reject'), 'reject') ?? DEFAULT_THRESHOLDS.reject,
    };
  } catch (e) {
    say(`check: ${(e as Error).message}`);
    return EXIT.USAGE;
  }
  const trustedList = opt(a, 'trusted');
  const trust = trustedList ? { trustedHosts: trustedList.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean) } : {};

  let source: Iterable<MailboxMessage>;
  try {
    if (maildir) source = readMaildir(maildir);
    else if (mbox) source = readMbox(mbox);
    else {
      if (process.stdin.isTTY) {
        say(`check: expecting a message on standard input\n${USAGE}`);
        return EXIT.USAGE;
      }
      const data = await readStdin();
      if (data.toString('latin1').trim() === '') {
        say('check: empty message on standard input');
        return EXIT.INPUT;
      }
      source = [{ name: '-', data }];
    }
  } catch (e) {
    say(`check: cannot read ${maildir ?? mbox ?? 'standard input'}: ${(e as Error).message}`);
    return EXIT.INPUT;
  }

  let store: Store | null = null;
  if (!flag(a, 'no-bayes')) {
    try {
      store = await openStore(opt(a, 'store') ?? DEFAULT_STORE);
    } catch (e) {
      say(`check: ${(e as Error).message}`);
      return e instanceof StoreError && e.code === 'EUSAGE' ? EXIT.USAGE : EXIT.STORE;
    }
  }
  const scanner = new SpamScanner(store, { thresholds });
  const user = opt(a, 'user') || undefined;
  const single = !maildir && !mbox;
  let n = 0, bad = 0;
  const write = (s: string) => process.stdout.write(s + '\n');
  try {
    for (const m of source) {
      n++;
      if (m.data.length === 0) {
        bad++;
        say(`check: ${m.name}: empty, skipped`);
        continue;
      }
      const session = sessionFromReceived(headerFields(m.data), trust);
      const r = await scanner.scan(m.data, session, user);
      if (json) write(JSON.stringify({ file: m.name, score: r.score, required: r.required, action: r.action, symbols: r.symbols, bayes: r.bayes }));
      else if (single) {
        write(formatResult(r));
        if (dialect) write(['headers:', ...renderHeaders(r, dialect, { reject: thresholds.reject })].join('\n'));
      } else write(`${m.name}\t${r.score.toFixed(2)}\t${r.action}\t${r.symbols.map((s) => s.name).join(',')}`);
    }
  } catch (e) {
    say(`check: ${(e as Error).message}`);
    return e instanceof StoreError ? EXIT.STORE : EXIT.INPUT;
  } finally {
    await store?.close();
  }
  if (n === 0) {
    say(`check: no messages in ${maildir ?? mbox}`);
    return EXIT.INPUT;
  }
  return bad ? EXIT.PARTIAL : EXIT.OK;
}
