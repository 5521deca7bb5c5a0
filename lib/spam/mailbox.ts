// Reading messages for the CLI: standard input, a Maildir, an mbox.
//
// Maildir: the files of cur/ and new/ (tmp/ holds deliveries in progress), or the files of
// the directory itself when it has no cur/new (a plain directory of messages, as in the
// SpamAssassin corpus). Dovecot's dovecot-* and subfolders (".Name") are skipped.
// mbox: messages start at lines "From " at the start of the file or after an empty line
// (mboxo/mboxrd); ">From " quoting is undone one level (mboxrd), the "From " line itself
// is kept (the parser skips it). Messages are read as bytes, never decoded.

import fs from 'node:fs';
import path from 'node:path';

export interface MailboxMessage {
  /** File path (Maildir), "FILE:N" (mbox, 1-based), or "-" (stdin). */
  name: string;
  data: Buffer;
}

export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function maildirFiles(dir: string): string[] {
  const st = fs.statSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  const subs = ['cur', 'new'].map((s) => path.join(dir, s)).filter((p) => fs.existsSync(p) && fs.statSync(p).isDirectory());
  const dirs = subs.length ? subs : [dir];
  const out: string[] = [];
  for (const d of dirs) {
    for (const f of fs.readdirSync(d).sort()) {
      if (f.startsWith('.') || f.startsWith('dovecot') || f === 'maildirfolder' || f === 'subscriptions') continue;
      const p = path.join(d, f);
      const s = fs.statSync(p);
      if (s.isFile()) out.push(p);
    }
  }
  return out;
}

export function* readMaildir(dir: string): Generator<MailboxMessage> {
  for (const p of maildirFiles(dir)) yield { name: p, data: fs.readFileSync(p) };
}

/** Split an mbox into messages. */
export function splitMbox(buf: Buffer): Buffer[] {
  const s = buf.toString('latin1');
  const starts: number[] = [];
  if (s.startsWith('From ')) starts.push(0);
  const re = /\n\r?\nFrom /g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) starts.push(m.index + m[0].length - 5);
  if (starts.length === 0 && s.trim().length) starts.push(0); // a single message without separator
  const out: Buffer[] = [];
  for (let i = 0; i < starts.length; i++) {
    let end = i + 1 < starts.length ? starts[i + 1]! : s.length;
    // Drop the empty line that separates messages.
    if (i + 1 < starts.length) {
      end--;
      if (s.charCodeAt(end - 1) === 13) end--;
    }
    const text = s.slice(starts[i], end).replace(/^>(>*From )/gm, '$1');
    out.push(Buffer.from(text, 'latin1'));
  }
  return out;
}

export function* readMbox(file: string): Generator<MailboxMessage> {
  const msgs = splitMbox(fs.readFileSync(file));
  for (let i = 0; i < msgs.length; i++) yield { name: `${file}:${i + 1}`, data: msgs[i]! };
}

// ---------------------------------------------------------------------------------------
// Argument parsing shared by the learn/check/stats subcommands.

export class UsageError extends Error {}

export interface ParsedArgs {
  positional: string[];
  options: Map<string, string | true>;
}

/** Parse "--name value", "--name=value", "-name value" (filter-style) and flags. */
export function parseArgs(argv: string[], withValue: string[], flags: string[]): ParsedArgs {
  const positional: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.replace(/^--?/, '').slice(0, eq < 0 ? undefined : eq - (a.startsWith('--') ? 2 : 1));
    if (withValue.includes(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new UsageError(`option --${name} needs a value`);
      options.set(name, v);
    } else if (flags.includes(name) && eq < 0) options.set(name, true);
    else throw new UsageError(`unknown option ${a}`);
  }
  return { positional, options };
}

export function opt(a: ParsedArgs, name: string): string | undefined {
  const v = a.options.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function flag(a: ParsedArgs, name: string): boolean {
  return a.options.get(name) === true;
}

/** Exit codes of the learn/check/stats subcommands. */
export const EXIT = {
  OK: 0,
  /** Bad arguments. */
  USAGE: 1,
  /** Input unreadable or empty (stdin, Maildir, mbox). */
  INPUT: 2,
  /** Store unusable: cannot open, read, lock, write, or connect. */
  STORE: 3,
  /** Some messages of a batch failed, the others were processed. */
  PARTIAL: 4,
} as const;
