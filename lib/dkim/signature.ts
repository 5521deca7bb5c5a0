// The DKIM-Signature header text, byte for byte as filter-dkimsign 0.5 writes it: tag order
// `v=1; a=…; c=…; s=…; [z=…;] [t=…;] [x=…;] bh=…; h=…; d=…; b=…`, folded at 78 columns with
// CRLF TAB. Ported from dkim_signature_printf, dkim_signature_normalize and
// dkim_signature_printheader in its main.c (Martijn van Duren, revision 74).

/** filter-dkimsign's DKIM_SIGNATURE_LINELEN. */
export const LINE_LENGTH = 78;

const CR = 0x0d;
const LF = 0x0a;
const TAB = 0x09;
const SP = 0x20;
const SEMI = 0x3b;
const COLON = 0x3a;
const EQ = 0x3d;
const B = 0x62;
const H = 0x68;
const Z = 0x7a;
const BH = -1; // the "bh" tag (the C code uses 'B')

/**
 * Fold a DKIM-Signature text the way dkim_signature_normalize does. Tabs count to the next
 * multiple of 8. When a line would pass 78 columns it is broken after the last checkpoint, the
 * white space there replaced by CRLF TAB: checkpoints are the colon after the field name, each
 * ";", every character of the b=, bh= and z= values (so those break anywhere, even inside a
 * z= "=XX" escape, as the C filter does), and each ":" in h=. Text already folded (CRLF) is
 * kept, so folding is idempotent; a line with no checkpoint stays longer than 78 columns.
 */
export function foldSignature(text: string): string {
  // The C code edits a char array in place; here the string is rebuilt at each break (a
  // signature has a handful), which costs a fraction of copying it into an array of numbers.
  let sig = text;
  let linelen = 0;
  let checkpoint = 0;
  let headername = true;
  let tag = 0;
  for (let i = 0; i < sig.length; i++) {
    let c = sig.charCodeAt(i);
    if (c === CR && sig.charCodeAt(i + 1) === LF) {
      i++;
      checkpoint = 0;
      linelen = 0;
      continue;
    }
    if (c === TAB) linelen = (linelen + 8) & ~7;
    else linelen++;
    if (headername) {
      if (c === COLON) {
        headername = false;
        checkpoint = i;
      }
      continue;
    }
    if (linelen > LINE_LENGTH && checkpoint !== 0) {
      let skip = 0;
      for (;;) {
        const w = sig.charCodeAt(checkpoint + 1 + skip);
        if (w !== SP && w !== TAB) break;
        skip++;
      }
      sig = `${sig.slice(0, checkpoint + 1)}\r\n\t${sig.slice(checkpoint + 1 + skip)}`;
      linelen = 8;
      i = checkpoint + 3;
      checkpoint = 0;
      c = TAB;
    }
    if (c === SEMI) {
      checkpoint = i;
      tag = 0;
      continue;
    }
    if (tag === B || tag === BH || tag === Z) checkpoint = i;
    else if (tag === H && c === COLON) checkpoint = i;
    if (tag === 0 && c !== SP && c !== TAB) {
      if (c === B && sig.charCodeAt(i + 1) === H && sig.charCodeAt(i + 2) === EQ) {
        tag = BH;
        linelen += 2;
        i += 2;
      } else {
        tag = c;
      }
    }
  }
  return sig;
}

function safeInZ(c: number): boolean {
  return (c >= 0x21 && c <= 0x3a) || c === 0x3c || (c >= 0x3e && c <= 0x7b) || (c >= 0x7d && c <= 0x7e);
}

const HEX = '0123456789ABCDEF';

/**
 * One header line as filter-dkimsign copies it into z= (dkim_signature_printheader):
 * DKIM-Quoted-Printable (RFC 6376 §2.11: SP, ";", "=", "|", controls and 8-bit bytes as =XX),
 * followed by "=0D=0A", and preceded by "|" when it starts a field that is not the first.
 */
export function zCopyLine(line: string, first: boolean): string {
  let out = '';
  const c0 = line.charCodeAt(0);
  if (!first && line.length > 0 && c0 !== SP && c0 !== TAB) out += '|';
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i) & 0xff;
    out += safeInZ(c) ? line[i] : `=${HEX[c >> 4]}${HEX[c & 15]}`;
  }
  return `${out}=0D=0A`;
}

/** The z= value for header lines in message order. */
export function zValue(lines: readonly string[]): string {
  return lines.map((l, i) => zCopyLine(l, i === 0)).join('');
}

export interface SignatureTags {
  algorithm: string; // a=
  canonicalization: string; // c=, "header/body"
  selector: string; // s=
  copiedHeaders?: string; // z= value (already quoted)
  timestamp?: bigint | number; // t=
  expiration?: bigint | number; // x=
  bodyHash: string; // bh=
  headers: readonly string[]; // h=
  domain: string; // d=
}

/** The unfolded text up to and including "b=" (dkim_message_new + dkim_sign, before b=). */
export function signatureText(t: SignatureTags): string {
  let s = `DKIM-Signature: v=1; a=${t.algorithm}; c=${t.canonicalization}; s=${t.selector}; `;
  if (t.copiedHeaders !== undefined) s += `z=${t.copiedHeaders}; `;
  if (t.timestamp !== undefined) s += `t=${t.timestamp}; `;
  if (t.expiration !== undefined) s += `x=${t.expiration}; `;
  s += `bh=${t.bodyHash}; h=${t.headers.join(':')}; d=${t.domain}; b=`;
  return s;
}

/** Split folded text (CRLF-separated, optionally CRLF-terminated) into lines. */
export function foldedLines(folded: string): string[] {
  const lines = folded.split('\r\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}
