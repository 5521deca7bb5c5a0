// smtpd-filters stats: what the spam filter's Bayes has learned.
//
//   smtpd-filters stats [--store S] [--user U] [--users] [--json]
//
// Prints the store, the spam and ham messages learned, the tokens, the learned-message
// digests, the time of the last learn, and whether Bayes votes yet (200 spam and 200 ham).
// --users lists the per-user statistics sets. Exit codes: 0 ok, 1 usage, 3 store error.

import { BAYES_DEFAULTS } from '../lib/spam/bayes.js';
import { EXIT, flag, opt, parseArgs } from '../lib/spam/mailbox.js';
import { DEFAULT_STORE, openStore, StoreError, type Store } from '../lib/store/index.js';

const USAGE = `usage: smtpd-filters stats [--store S] [--user U] [--users] [--json]`;

function say(s: string): void {
  process.stderr.write(s + '\n');
}

export async function run(argv: string[]): Promise<number> {
  let a;
  try {
    a = parseArgs(argv, ['user', 'store'], ['json', 'users', 'help']);
  } catch (e) {
    say(`stats: ${(e as Error).message}\n${USAGE}`);
    return EXIT.USAGE;
  }
  if (flag(a, 'help')) {
    say(USAGE);
    return EXIT.OK;
  }
  if (a.positional.length) {
    say(`stats: unexpected argument ${a.positional[0]}\n${USAGE}`);
    return EXIT.USAGE;
  }
  let store: Store;
  try {
    store = await openStore(opt(a, 'store') ?? DEFAULT_STORE);
  } catch (e) {
    say(`stats: ${(e as Error).message}`);
    return e instanceof StoreError && e.code === 'EUSAGE' ? EXIT.USAGE : EXIT.STORE;
  }
  const write = (s: string) => process.stdout.write(s + '\n');
  try {
    const user = opt(a, 'user') || undefined;
    const s = await store.stats(user);
    const ready = s.nspam >= BAYES_DEFAULTS.minSpam && s.nham >= BAYES_DEFAULTS.minHam;
    let users: string[] | undefined;
    if (flag(a, 'users')) {
      const u = store as Store & { users?: () => Promise<string[]> };
      users = u.users ? await u.users() : [];
    }
    if (flag(a, 'json')) {
      write(JSON.stringify({ store: store.location, user: user ?? null, ...s, ready, ...(users ? { users } : {}) }));
    } else {
      write(`store: ${store.location} (${store.kind})${user ? `\nuser: ${user}` : ''}`);
      write(`spam learned: ${s.nspam}`);
      write(`ham learned: ${s.nham}`);
      write(`tokens: ${s.tokens}`);
      write(`messages: ${s.messages}`);
      write(`last learn: ${s.lastLearn ? new Date(s.lastLearn * 1000).toISOString() : 'never'}`);
      write(
        `bayes: ${ready ? 'votes' : `not enough training (needs ${BAYES_DEFAULTS.minSpam} spam and ${BAYES_DEFAULTS.minHam} ham; ${Math.max(0, BAYES_DEFAULTS.minSpam - s.nspam)} spam and ${Math.max(0, BAYES_DEFAULTS.minHam - s.nham)} ham to go)`}`,
      );
      if (users) write(`users: ${users.length ? users.join(' ') : 'none'}`);
    }
    return EXIT.OK;
  } catch (e) {
    say(`stats: ${(e as Error).message}`);
    return EXIT.STORE;
  } finally {
    await store.close();
  }
}
