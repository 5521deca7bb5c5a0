// Finds the client's address written into its PTR name, the surest sign of a generic
// (pool-assigned) name: ISPs generate one name per address from the address itself.
//
// Everything here scans the host part once or a fixed number of times; no regular
// expression has a quantified group, so time is linear in the name's length.

import type { IpBytes } from './net.js';

/** A maximal run of digits in the host part, with what separates it from the previous run. */
interface DigitRun {
  text: string;
  value: number;
  /** The characters between the previous run and this one ('' for the first). */
  gap: string;
}

function digitRuns(host: string): DigitRun[] {
  const runs: DigitRun[] = [];
  let prevEnd = 0;
  for (const m of host.matchAll(/[0-9]+/g)) {
    runs.push({ text: m[0], value: m[0].length <= 3 ? Number(m[0]) : NaN, gap: host.slice(prevEnd, m.index) });
    prevEnd = m.index + m[0].length;
  }
  return runs;
}

/** Does `seq` occur as consecutive runs (at most 3 digits each, zero padding allowed)? */
function hasSequence(runs: DigitRun[], seq: number[]): boolean {
  outer: for (let i = 0; i + seq.length <= runs.length; i++) {
    for (let j = 0; j < seq.length; j++) if (runs[i + j]!.value !== seq[j]) continue outer;
    return true;
  }
  return false;
}

/** Evidence found; `strong` ones mark a name generic by themselves. */
export interface IpEvidence {
  strong: string[];
  /** Two octets in a row: common in mail servers' names too (m228-4.mailgun.net). */
  partial: boolean;
}

/**
 * The client's IPv4 in the host part as: dotted or dashed octets in order
 * (`c-73-15-22-101`), reversed (`101.12.24.109.rev…`), zero-padded (`dslb-092-072-012-034`),
 * three octets of it in either order (`12.red-83-45-67`, `modemcable012.34-56-78`),
 * one run of digits (`softbank126012034056`), or eight hex digits (`p5dc3a1b2`).
 */
export function findIpv4(host: string, labels: string[], ip: IpBytes): IpEvidence {
  const o = Array.from(ip.bytes);
  const rev = [...o].reverse();
  const runs = digitRuns(host);
  const strong: string[] = [];
  if (hasSequence(runs, o)) strong.push('ip:in-order');
  else if (hasSequence(runs, rev)) strong.push('ip:reversed');
  else if ([o.slice(0, 3), o.slice(1), rev.slice(0, 3), rev.slice(1)].some((s) => hasSequence(runs, s))) {
    strong.push('ip:three-octets');
  }
  const padded = o.map((x) => String(x).padStart(3, '0')).join('');
  const plain = o.join('');
  if (runs.some((r) => r.text.includes(padded) || (plain.length >= 8 && r.text === plain))) strong.push('ip:digits');
  const hex = o.map((x) => x.toString(16).padStart(2, '0')).join('');
  if (labels.some((l) => l.includes(hex))) strong.push('ip:hex');
  const partial = strong.length > 0 || [o.slice(0, 2), o.slice(2), rev.slice(0, 2)].some((s) => hasSequence(runs, s));
  return { strong, partial };
}

/**
 * The client's IPv6 in the host part: all 32 nibbles or the /64 prefix as hex
 * (`p200300c5a71b….dip0.t-ipconnect.de`, `2a01cb0012345678.ipv6.abo.wanadoo.fr`), or the
 * first four groups written out (`2001-b011-4007-1a2b-0-0-0-1.dynamic-ip6…`).
 */
export function findIpv6(labels: string[], ip: IpBytes): IpEvidence {
  const strong: string[] = [];
  let nibbles = '';
  for (const b of ip.bytes) nibbles += b.toString(16).padStart(2, '0');
  if (labels.some((l) => l.includes(nibbles))) strong.push('ip6:hex');
  else if (labels.some((l) => l.includes(nibbles.slice(0, 16)))) strong.push('ip6:prefix-hex');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip.bytes[i]! << 8) | ip.bytes[i + 1]!).toString(16));
  const parts = labels.join('.').split(/[-.]/).map((p) => p.replace(/^0+(?=.)/, ''));
  const prefix = groups.slice(0, 4);
  for (let i = 0; i + 4 <= parts.length; i++) {
    if (prefix.every((g, j) => parts[i + j] === g)) {
      strong.push('ip6:groups');
      break;
    }
  }
  return { strong, partial: strong.length > 0 };
}

/**
 * Four numbers 0–255 separated by single dots, dashes or underscores (`198-51-100-7`,
 * `12.34-201-109`): an address, even when it is not the client's own.
 */
export function hasIpShape(host: string): boolean {
  const runs = digitRuns(host);
  let streak = 0;
  for (const r of runs) {
    const octet = r.text.length <= 3 && r.value <= 255;
    const joined = r.gap.length === 1 && '.-_'.includes(r.gap);
    streak = octet ? (streak > 0 && joined ? streak + 1 : 1) : 0;
    if (streak >= 4) return true;
  }
  return false;
}

/** Numbers enough to suggest a generated name: three or more runs, or one of 5+ digits. */
export function isNumberHeavy(host: string): boolean {
  const runs = digitRuns(host);
  return runs.length >= 3 || runs.some((r) => r.text.length >= 5);
}
