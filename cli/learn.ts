// smtpd-filters learn: teach the spam filter's Bayes.
//
//   smtpd-filters learn spam|ham [--user U] [--store S] < message
//   smtpd-filters learn --forget [--user U] [--store S] < message
//   smtpd-filters learn spam|ham [--user U] [--store S] --maildir DIR | --mbox FILE
//
// Idempotent per message (SHA-256 of the normalised message, lib/spam/digest.ts): learning
// a message twice counts once, learning it as the other class moves it, --forget removes
// it. A whole Maildir/mbox is learned in batches (one locked store write per 1000 messages).
// The summary goes to stderr; nothing is printed on stdout.
//
// Exit codes: 0 done (including "already learned" / "was not learned"), 1 usage,
// 2 input unreadable or empty, 3 store error, 4 some messages of a batch unreadable.

import { learnItem } from '../lib/spam/score.js';
import { EXIT, flag, opt, parseArgs, readMaildir, readMbox, readStdin, type MailboxMessage } from '../lib/spam/mailbox.js';
import { DEFAULT_STORE, openStore, StoreError, type LearnOutcome, type Store } from '../lib/store/index.js';

const USAGE = `usage: smtpd-filters learn spam|ham [--user U] [--store S] [--maildir DIR | --mbox FILE] [--trusted HOST,...] [--verbose]
       smtpd-filters learn --forget [--user U] [--store S] [--maildir DIR | --mbox FILE]
  --store S     a file path or redis://host:port/db (default ${DEFAULT_STORE})
  --user U      per-user statistics (e.g. the recipient address)
  --trusted H   comma-separated host names/domains of your own relays, skipped when the
                client is recovered from Received fields
  reads one message from standard input unless --maildir or --mbox is given`;

const BATCH = 1000;

function say(s: string): void {
  process.stderr.write(s + '\n');
}

export async function run(argv: string[]): Promise<number> {
  let a;
  try {
    a = parseArgs(argv, ['user', 'store', 'maildir', 'mbox', 'trusted'], ['forget', 'verbose', 'help', 'quiet']);
  } catch (e) {
    say(`learn: ${(e as Error).message}\n${USAGE}`);
    return EXIT.USAGE;
  }
  if (flag(a, 'help')) {
    say(USAGE);
    return EXIT.OK;
  }
  const forget = flag(a, 'forget');
  let cls: 'spam' | 'ham' | null = null;
  if (forget) {
    if (a.positional.length > 0) {
      say(`learn: --forget takes no class\n${USAGE}`);
      return EXIT.USAGE;
    }
  } else {
    const c = a.positional[0];
    if (a.positional.length !== 1 || (c !== 'spam' && c !== 'ham')) {
      say(`learn: say "spam" or "ham" (or --forget)\n${USAGE}`);
      return EXIT.USAGE;
    }
    cls = c;
  }
  const maildir = opt(a, 'maildir');
  const mbox = opt(a, 'mbox');
  if (maildir && mbox) {
    say('learn: --maildir and --mbox are exclusive');
    return EXIT.USAGE;
  }
  const user = opt(a, 'user') || undefined;
  const trustedList = opt(a, 'trusted');
  const trust = trustedList ? { trustedHosts: trustedList.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean) } : {};
  const verbose = flag(a, 'verbose');
  const quiet = flag(a, 'quiet');

  // Read the input first: a usage/input problem must not touch the store.
  let source: Iterable<MailboxMessage>;
  try {
    if (maildir) source = readMaildir(maildir);
    else if (mbox) source = readMbox(mbox);
    else {
      if (process.stdin.isTTY) {
        say(`learn: expecting a message on standard input\n${USAGE}`);
        return EXIT.USAGE;
      }
      const data = await readStdin();
      if (data.length === 0 || data.toString('latin1').trim() === '') {
        say('learn: empty message on standard input');
        return EXIT.INPUT;
      }
      source = [{ name: '-', data }];
    }
  } catch (e) {
    say(`learn: cannot read ${maildir ?? mbox ?? 'standard input'}: ${(e as Error).message}`);
    return EXIT.INPUT;
  }

  let store: Store;
  try {
    store = await openStore(opt(a, 'store') ?? DEFAULT_STORE);
  } catch (e) {
    say(`learn: ${(e as Error).message}`);
    return e instanceof StoreError && e.code === 'EUSAGE' ? EXIT.USAGE : EXIT.STORE;
  }
  const counts: Record<LearnOutcome, number> = { learned: 0, already: 0, moved: 0, forgotten: 0, 'not-learned': 0 };
  let bad = 0;
  let total = 0;
  const t0 = Date.now();
  try {
    let batch: { name: string; item: { digest: string; tokens: number[] } }[] = [];
    const flush = async () => {
      if (!batch.length) return;
      const res = await store.learn(cls, batch.map((b) => b.item), user);
      res.forEach((r, i) => {
        counts[r]++;
        if (verbose) say(`${batch[i]!.name}: ${r}`);
      });
      batch = [];
    };
    try {
      for (const m of source) {
        total++;
        if (m.data.length === 0) {
          bad++;
          say(`learn: ${m.name}: empty, skipped`);
          continue;
        }
        batch.push({ name: m.name, item: learnItem(m.data, { trust }) });
        if (batch.length >= BATCH) await flush();
      }
    } catch (e) {
      if (e instanceof StoreError) throw e;
      await flush();
      say(`learn: cannot read ${maildir ?? mbox}: ${(e as Error).message}`);
      return EXIT.INPUT;
    }
    await flush();
  } catch (e) {
    say(`learn: ${(e as Error).message}`);
    return EXIT.STORE;
  } finally {
    await store.close();
  }
  if (total === 0) {
    say(`learn: no messages in ${maildir ?? mbox}`);
    return EXIT.INPUT;
  }
  if (!quiet) {
    const what = forget ? 'forget' : cls!;
    const parts = Object.entries(counts)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${n} ${k}`);
    const secs = (Date.now() - t0) / 1000;
    say(`learn ${what}: ${parts.join(', ') || 'nothing'}${bad ? `, ${bad} unreadable` : ''} (${total} message${total === 1 ? '' : 's'}, ${secs.toFixed(1)} s) in ${store.location}${user ? ` for ${user}` : ''}`);
  }
  return bad ? EXIT.PARTIAL : EXIT.OK;
}
