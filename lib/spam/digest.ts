// The identity of a message for learning (idempotent learn/forget) and greylisting.
//
// SHA-256 over a normalised form, so that the copy a user moves in IMAP, the copy in an
// mbox and the copy the filter scanned give the same digest:
//   - only the Message-ID, Date and From fields of the header (delivery adds Received,
//     Return-Path, X-Spam-*, Dovecot adds Status/X-UID/X-Keywords, we may rewrite Subject);
//   - the body with CRLF → LF, trailing blanks of each line and trailing empty lines
//     removed, mbox ">From " quoting undone, at most the first 1 MiB.
// Using the body and not only Message-ID matters: spam reuses Message-IDs and some
// mailers send none.

import { createHash } from 'node:crypto';
import { parseHeaderBlock } from './mime.js';

export const DIGEST_BODY_LIMIT = 1 << 20;

export function messageDigest(message: Buffer | string): string {
  const s = typeof message === 'string' ? message : message.toString('latin1');
  let start = 0;
  if (s.startsWith('From ') && !/^From:/.test(s)) {
    const nl = s.indexOf('\n');
    start = nl < 0 ? s.length : nl + 1;
  }
  const { headers, body } = parseHeaderBlock(s, start, s.length);
  const h = createHash('sha256');
  for (const name of ['message-id', 'date', 'from']) {
    const f = headers.find((x) => x.lname === name);
    h.update(name + ':' + (f ? f.raw.replace(/\s+/g, ' ').trim() : '') + '\n', 'latin1');
  }
  h.update('\n');
  let b = s.slice(body, body + DIGEST_BODY_LIMIT);
  b = b.replace(/[ \t\r]+$/gm, '').replace(/^>+(From )/gm, '$1').replace(/\n+$/, '');
  h.update(b, 'latin1');
  return h.digest('hex');
}
