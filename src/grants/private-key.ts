// Loads the runner's RSA private key (MANA_AI_PRIVATE_KEY_PEM, PKCS#8 PEM)
// once at start into a non-extractable Web Crypto key. An absent key
// disables grants; an unparseable one disables them with one warning that
// says what to do. It must never crash the start and never put any part of
// the key into a log line or an error message.

import { createHash, createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import type { Logger } from '../log.js';

/** A loaded runner key: the key, its id (CONTRACT.md section 14: runnerKid) and its modulus length in bytes. */
export interface LoadedKey {
  key: webcrypto.CryptoKey;
  kid: string;
  modulusBytes: number;
}

export type PrivateKeyLoad =
  | { status: 'absent' }
  | ({ status: 'loaded' } & LoadedKey)
  | { status: 'unusable'; problem: string };

/** runnerKid: the first 8 bytes of SHA-256 of the public key's SPKI DER, as 16 lowercase hex digits. */
export function runnerKidOf(pkcs8Der: Uint8Array): string {
  const spki = createPublicKey(createPrivateKey({ key: Buffer.from(pkcs8Der), format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest().subarray(0, 8).toString('hex');
}

const PKCS8 = /-----BEGIN PRIVATE KEY-----([\s\S]*?)-----END PRIVATE KEY-----/;

export async function loadPrivateKey(pem: string | undefined): Promise<PrivateKeyLoad> {
  if (pem === undefined || pem.trim() === '') return { status: 'absent' };
  // Compose files and secret stores often carry the PEM on one line with
  // literal "\n"; accept that rather than fail on a formatting detail.
  const text = pem.includes('\\n') ? pem.replaceAll('\\n', '\n') : pem;
  if (text.includes('BEGIN RSA PRIVATE KEY')) {
    return { status: 'unusable', problem: 'the key is PKCS#1 ("BEGIN RSA PRIVATE KEY"); convert it with `openssl pkcs8 -topk8 -nocrypt -in key.pem`' };
  }
  if (text.includes('BEGIN ENCRYPTED PRIVATE KEY')) {
    return { status: 'unusable', problem: 'the key is password-protected; the runner needs an unencrypted PKCS#8 key' };
  }
  const m = PKCS8.exec(text);
  if (!m) return { status: 'unusable', problem: 'no "-----BEGIN PRIVATE KEY-----" block found (PKCS#8 PEM expected)' };
  const der = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  try {
    const key = await webcrypto.subtle.importKey('pkcs8', der, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['decrypt']);
    const bits = (key.algorithm as webcrypto.RsaHashedKeyAlgorithm).modulusLength;
    if (bits < 2048) return { status: 'unusable', problem: `the RSA key has ${bits} bits; at least 2048 are required` };
    return { status: 'loaded', key, kid: runnerKidOf(der), modulusBytes: bits / 8 };
  } catch {
    // The library's message may quote key material; say only what kind of failure it was.
    return { status: 'unusable', problem: 'the PEM block is not an RSA private key in PKCS#8 form' };
  } finally {
    der.fill(0);
  }
}

/** Logs the outcome once, without key material, and returns the key or null. */
export function reportPrivateKey(load: PrivateKeyLoad, log: Logger, name = 'MANA_AI_PRIVATE_KEY_PEM'): LoadedKey | null {
  if (load.status === 'loaded') {
    log.info({ runnerKid: load.kid }, `mission grants enabled (${name} loaded)`);
    return { key: load.key, kid: load.kid, modulusBytes: load.modulusBytes };
  }
  if (load.status === 'absent') {
    if (name === 'MANA_AI_PRIVATE_KEY_PEM') log.info('mission grants disabled: MANA_AI_PRIVATE_KEY_PEM is not set; encrypted inputs are skipped');
    return null;
  }
  log.warn({ problem: load.problem }, `mission grants: ${name} is unusable; grants wrapped for it are skipped until it is fixed`);
  return null;
}
