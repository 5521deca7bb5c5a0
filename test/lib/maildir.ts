// Reading what smtpd's maildir MDA delivered. The MDA writes each message with LF line
// ends, prefixed by Return-Path and Delivered-To (filters never see those two); with
// `maildir … junk`, a message carrying "X-Spam: Yes" goes to the .Junk folder.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface Delivered {
  data: Buffer;
  /** delivered to .Junk/ */
  junk: boolean;
  /** path of the file */
  file: string;
}

/** Messages of one maildir (new/ and cur/, then .Junk/), oldest first. */
export function readMaildir(dir: string): Delivered[] {
  const out: (Delivered & { mtime: number })[] = [];
  for (const [sub, junk] of [['', false], ['.Junk', true]] as const) {
    for (const leaf of ['new', 'cur']) {
      const d = join(dir, sub, leaf);
      let names: string[];
      try {
        names = readdirSync(d);
      } catch {
        continue;
      }
      for (const n of names) {
        const file = join(d, n);
        out.push({ data: readFileSync(file), junk, file, mtime: statSync(file).mtimeMs });
      }
    }
  }
  out.sort((x, y) => x.mtime - y.mtime || (x.file < y.file ? -1 : 1));
  return out.map(({ data, junk, file }) => ({ data, junk, file }));
}

/**
 * The delivered messages in the order smtpd accepted them (the "250 2.0.0 <id> Message
 * accepted for delivery" replies to "."), matched by the queue id smtpd writes in its
 * Received field ("… id <id> …"). Delivery order (readMaildir's, by mtime) is not that
 * order: smtpd hands queued messages to the MDA in parallel, and two messages of one session
 * can land either way round. Messages without a matching reply keep their place at the end.
 */
export function inAcceptanceOrder(delivered: Delivered[], replies: readonly { cmd: string; code: number; lines: string[] }[]): Delivered[] {
  const ids = replies
    .filter((r) => r.cmd === '.' && r.code === 250)
    .map((r) => /^250[ -]2\.0\.0 ([0-9a-f]{8})\b/.exec(r.lines[0] ?? '')?.[1])
    .filter((x): x is string => x !== undefined);
  const idOf = (d: Delivered): string | undefined => {
    const received = d.data.toString('latin1').split(/\n(?![ \t])/).find((l) => /^received:/i.test(l));
    return received ? /\bid ([0-9a-f]{8})\b/.exec(received)?.[1] : undefined;
  };
  const rank = (d: Delivered): number => {
    const i = ids.indexOf(idOf(d) ?? '');
    return i < 0 ? ids.length : i;
  };
  return [...delivered].sort((x, y) => rank(x) - rank(y));
}

/** Offset of the body: just past the first empty line. */
function bodyStart(msg: Buffer): number {
  if (msg[0] === 0x0a) return 1;
  const i = msg.indexOf('\n\n');
  return i === -1 ? msg.length : i + 2;
}

/** The header block as latin1 text (one char per byte), without the empty line. */
export function headerBlock(msg: Buffer): string {
  return msg.subarray(0, Math.max(0, bodyStart(msg) - 1)).toString('latin1');
}

export function body(msg: Buffer): Buffer {
  return msg.subarray(bodyStart(msg));
}

/** Unfolded values of every header field called name (case-insensitive), in order. */
export function headerValues(msg: Buffer, name: string): string[] {
  const fields = headerBlock(msg).replace(/\r?\n(?=[ \t])/g, '').split('\n');
  const prefix = name.toLowerCase() + ':';
  return fields.filter((f) => f.toLowerCase().startsWith(prefix)).map((f) => f.slice(prefix.length).trim());
}
