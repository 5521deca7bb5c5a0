// DKIM signing engine: see signer.ts for the streaming signer, keys.ts and record.ts for keys.
export * from './canon.js';
export * from './header.js';
export * from './keys.js';
export * from './record.js';
export * from './signature.js';
export * from './signer.js';
