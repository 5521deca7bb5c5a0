// Where the project is, the compiled programs the lab runs, and the proc-exec command
// line of a filter.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  // This file runs from test/lib/ (tap, from source) or dist/test/lib/ (compiled).
  for (let d = dirname(fileURLToPath(import.meta.url)); d !== dirname(d); d = dirname(d)) {
    const pkg = join(d, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'opensmtpd-filters') return d;
  }
  throw new Error('opensmtpd-filters: package.json not found above ' + import.meta.url);
}

/** Absolute path of the project (the directory of package.json). */
export const projectRoot = findRoot();

export const NODE = '/usr/bin/node';

/** The environment of everything the lab starts (smtpd, and so its filters, included):
 * clean, as the reference harness starts smtpd. In particular without tap's
 * NODE_OPTIONS, which would load tap's process-info hook into every helper. */
export const BASE_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin',
  LANG: 'C.UTF-8',
  TZ: 'UTC',
};

/** A compiled helper program: dist/test/lib/<name>.js (run `npm run build` first). */
export function distHelper(name: string): string {
  const p = join(projectRoot, 'dist', 'test', 'lib', name + '.js');
  if (!existsSync(p)) throw new Error(`${p} is missing: run \`npm run build\` first`);
  return p;
}

/** Quote one word for the /bin/sh -c that proc-exec runs. The command sits inside
 * smtpd.conf's double quotes, so it cannot carry a double quote at all. */
export function shellWord(w: string): string {
  if (w.includes('"')) throw new Error(`a filter argument cannot contain a double quote: ${w}`);
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** The proc-exec command of one of our filters: node <root>/dist/filters/<name>/main.js args… */
/** The V8 flags the installed launchers pass (package.json config.nodeFlags): e2e tests run
 * the filters as they ship. */
export const NODE_FLAGS: string[] = (
  (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { config?: { nodeFlags?: string } }).config?.nodeFlags ?? ''
).split(/\s+/).filter(Boolean);

export function filterCommand(name: string, args: string[] = []): string {
  return [NODE, ...NODE_FLAGS, join(projectRoot, 'dist', 'filters', name, 'main.js'), ...args].map(shellWord).join(' ');
}

const readable = new Map<string, boolean>();

/** Can `user` run our compiled code? Not when the project lives under /root (a CI
 * clone); node also reads package.json for "type". */
export function readableBy(user: string): boolean {
  let ok = readable.get(user);
  if (ok === undefined) {
    const [pkg, dist, mods] = ['package.json', 'dist', 'node_modules'].map((p) => join(projectRoot, p));
    const test = ['-r', pkg!, '-a', '-r', dist!, '-a', '-x', dist!, '-a', '-r', mods!, '-a', '-x', mods!];
    try {
      execFileSync('/usr/sbin/runuser', ['-u', user, '--', '/usr/bin/test', ...test], { stdio: 'ignore' });
      ok = true;
    } catch {
      ok = false;
    }
    readable.set(user, ok);
  }
  return ok;
}

let warned = false;

/** Can smtpd's default filter user (opensmtpd) run our compiled code? */
export function opensmtpdCanRead(): boolean {
  const ok = readableBy('opensmtpd');
  if (!ok && !warned) {
    warned = true;
    process.stderr.write(`lab: ${projectRoot} is not readable by user opensmtpd; our filters run as user root\n`);
  }
  return ok;
}
