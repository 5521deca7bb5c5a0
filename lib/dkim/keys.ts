// DKIM private keys: load and check at startup, generate (dkim-keygen).

import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { closeSync, constants, fchmodSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';

export type Algorithm = 'rsa-sha256' | 'ed25519-sha256';
export type KeyType = 'rsa' | 'ed25519';

export const ALGORITHMS: readonly Algorithm[] = ['rsa-sha256', 'ed25519-sha256'];

/** Parse -a. filter-dkimsign takes rsa-<any OpenSSL hash>; DKIM defines only these two
 * (rsa-sha1 is forbidden to signers by RFC 8301). */
export function parseAlgorithm(s: string): Algorithm {
  if (s === 'rsa-sha256' || s === 'ed25519-sha256') return s;
  throw new Error(`invalid algorithm: ${s} (rsa-sha256 or ed25519-sha256)`);
}

export function keyTypeOf(algorithm: Algorithm): KeyType {
  return algorithm === 'rsa-sha256' ? 'rsa' : 'ed25519';
}

export interface LoadedKey {
  path: string;
  key: KeyObject;
  type: KeyType;
  /** RSA modulus length; 256 for Ed25519. */
  bits: number;
  /** File permission bits (mode & 0o777). */
  mode: number;
  /** The file can be read by its group or by everyone: worth a startup warning. */
  groupReadable: boolean;
  worldReadable: boolean;
}

/** Check a private key object against an algorithm; throws a one-line Error naming `what`. */
export function checkKeyType(key: KeyObject, algorithm: Algorithm, what = 'key'): KeyType {
  const actual = key.asymmetricKeyType;
  const wanted = keyTypeOf(algorithm);
  if (actual !== wanted) {
    throw new Error(`${what} is ${actual ?? 'not an asymmetric key'} but -a says ${algorithm}`);
  }
  if (wanted === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    // RFC 8301 §3.2: signers MUST use RSA keys of at least 1024 bits
    if (bits < 1024) throw new Error(`${what} is RSA ${bits} bits; DKIM needs at least 1024`);
  }
  return wanted;
}

/**
 * Load a PEM private key (RSA as PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY", Ed25519 as
 * PKCS#8) for `algorithm`. Throws one clear line for startup: unreadable file, not a key,
 * encrypted key, wrong type ("key /x is ed25519 but -a says rsa-sha256"), RSA under 1024 bits.
 */
export function loadPrivateKey(path: string, algorithm: Algorithm): LoadedKey {
  let pem: Buffer;
  let mode: number;
  try {
    pem = readFileSync(path);
    mode = statSync(path).mode & 0o777;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`can't read key ${path}: ${err.code ?? err.message}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (e) {
    const msg = (e as Error).message;
    const why = /passphrase|encrypted/i.test(msg) || /ENCRYPTED/.test(pem.toString('latin1'))
      ? 'is encrypted (a passphrase is not supported)'
      : 'is not a PEM private key';
    throw new Error(`key ${path} ${why}`);
  }
  const type = checkKeyType(key, algorithm, `key ${path}`);
  return {
    path,
    key,
    type,
    bits: type === 'rsa' ? key.asymmetricKeyDetails?.modulusLength ?? 0 : 256,
    mode,
    groupReadable: (mode & 0o040) !== 0,
    worldReadable: (mode & 0o004) !== 0,
  };
}

export interface GenerateOptions {
  type: KeyType;
  /** RSA only: 1024–4096, default 2048. */
  bits?: number;
}

/** A new private key as PKCS#8 PEM (what filter-dkimsign and we both read). */
export function generateKeyPem(opts: GenerateOptions): string {
  if (opts.type === 'ed25519') {
    return generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  }
  const bits = opts.bits ?? 2048;
  if (!Number.isInteger(bits) || bits < 1024 || bits > 4096) {
    throw new Error(`RSA key size must be 1024 to 4096 bits, not ${bits}`);
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits, publicExponent: 65537 });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/**
 * Generate a key and write it to `path` with mode 0600; never overwrites (O_EXCL): an existing
 * file is an error. Returns the private key object.
 */
export function generateKey(path: string, opts: GenerateOptions): KeyObject {
  const pem = generateKeyPem(opts);
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EEXIST') throw new Error(`${path} exists; not overwriting it`);
    throw new Error(`can't create ${path}: ${err.code ?? err.message}`);
  }
  try {
    fchmodSync(fd, 0o600); // whatever the umask was
    writeSync(fd, pem);
  } finally {
    closeSync(fd);
  }
  return createPrivateKey(pem);
}
