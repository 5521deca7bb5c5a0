// The real smtpd 6.8 recordings of Debian's C filter-dkimsign (test/fixtures/recordings/dkim)
// replayed to our executable with `smtpd-filters replay FILE --expect GOLDEN`, the C filter's
// own command line from each scenario: every answer after the registration must be the C
// filter's, byte for byte (the golden file is its recorded answer with our registration
// block, which is shorter: we do not ask for tx-begin and tx-commit). The -t -x recording is
// replayed too, with t= and x= (and so b=) left out of the comparison.

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DKIM_FIXTURE, OURS, privateKeys, SMTPD_FILTERS } from './fixtures/dkimsign/common.js';

const KEYS = privateKeys();
const dir = mkdtempSync(join(tmpdir(), 'dkimsign-replay-'));
const rec = (p: string): string => DKIM_FIXTURE(`../recordings/dkim/${p}`);

/** Our registration block, as the filter writes it for these flags. */
const REGISTER = ['register|report|smtp-in|link-disconnect', 'register|report|smtp-in|tx-rollback', 'register|filter|smtp-in|data-line', 'register|filter|smtp-in|commit', 'register|ready'];

function replay(input: string, golden: string | undefined, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const expect = golden === undefined ? [] : ['--expect', golden];
    execFile(SMTPD_FILTERS[0]!, [...SMTPD_FILTERS.slice(1), 'replay', input, ...expect, '--', ...OURS, ...args, '-loglevel', 'warn'], { maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** The recorded answers with our registration block instead of the C filter's. */
function golden(out: string): string {
  const answers = readFileSync(rec(out), 'latin1').split('\n').filter((l) => l !== '' && !l.startsWith('register|'));
  const p = join(dir, out.replace(/\//g, '_') + '.golden');
  writeFileSync(p, [...REGISTER, ...answers, ''].join('\n'), 'latin1');
  return p;
}

const cases: [string, string, string[]][] = [
  ['dkim-rsa', 'dkimsign', ['-d', 'hz.test', '-s', 'rsa2048', '-k', KEYS['rsa-sha256']]],
  ['dkim-ed25519', 'dkimsign', ['-a', 'ed25519-sha256', '-d', 'hz.test', '-s', 'ed25519', '-k', KEYS['ed25519-sha256']]],
  ['dkim-chain-both', 'dkimsign_rsa', ['-d', 'hz.test', '-s', 'rsa2048', '-k', KEYS['rsa-sha256']]],
  // the second filter of the chain: the message already carries the first one's signature
  ['dkim-chain-both', 'dkimsign_ed25519', ['-a', 'ed25519-sha256', '-d', 'hz.test', '-s', 'ed25519', '-k', KEYS['ed25519-sha256']]],
  ['dkim-utf8', 'dkimsign', ['-d', 'hz.test', '-s', 'rsa2048', '-k', KEYS['rsa-sha256']]],
  ['dkim-then-null', 'dkimsign', ['-d', 'hz.test', '-s', 'rsa2048', '-k', KEYS['rsa-sha256']]],
];

t.test('smtpd-filters replay --expect: the C filter\'s answers byte for byte', async (t) => {
  for (const [scenario, file, args] of cases) {
    const r = await replay(rec(`${scenario}/${file}.in`), golden(`${scenario}/${file}.out`), args);
    t.equal(r.code, 0, `${scenario}/${file}: ${r.stderr.trim().split('\n').slice(0, 4).join(' / ')}`);
  }
});

t.test('-t -x 3600 -z relaxed/relaxed: the same but for t=, x= and b=', async (t) => {
  const args = ['-c', 'relaxed/relaxed', '-t', '-x', '3600', '-z', '-d', 'hz.test', '-s', 'rsa2048', '-k', KEYS['rsa-sha256']];
  const r = await replay(rec('dkim-relaxed-dots/dkimsign.in'), undefined, args);
  t.equal(r.code, 0, r.stderr);
  const mask = (lines: string[]): string => {
    const data = lines.filter((l) => l.startsWith('filter-dataline|') || l.startsWith('filter-result|')).map((l) => l.split('|').slice(3).join('|'));
    // unfold the signature, then drop what depends on the signing time
    const sigEnd = data.findIndex((l, i) => i > 0 && !l.startsWith('\t'));
    const sig = data.slice(0, sigEnd).join('\r\n').replace(/\r\n\t/g, '').replace(/\b([tx])=\d+;/g, '$1=N;').replace(/b=[A-Za-z0-9+/=]+$/, 'b=');
    return [sig, ...data.slice(sigEnd)].join('\n');
  };
  const recorded = readFileSync(rec('dkim-relaxed-dots/dkimsign.out'), 'latin1').split('\n');
  t.equal(mask(r.stdout.split('\n')), mask(recorded));
});
