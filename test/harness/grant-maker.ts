// The webapp's and mana-auth's side of a Mission Grant, written from the
// contract (section 7) for tests: the runner's RSA key pair, the HKDF
// derivation of the MDK, wrapping it with the runner's public key, and
// `enc:1:` field encryption. Every secret made here is registered for the
// suite's log-leak scan.

import { webcrypto } from 'node:crypto';
import { registerSecret } from './log-capture.js';

const subtle = webcrypto.subtle;
const b64 = (u: Uint8Array | ArrayBuffer) => Buffer.from(u instanceof ArrayBuffer ? new Uint8Array(u) : u).toString('base64');

export interface RunnerKeys {
  pem: string;
  publicKey: webcrypto.CryptoKey;
}

export async function makeRunnerKeys(): Promise<RunnerKeys> {
  const pair = await subtle.generateKey(
    { name: 'RSA-OAEP', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['encrypt', 'decrypt'],
  );
  const der = Buffer.from(await subtle.exportKey('pkcs8', pair.privateKey));
  const body = der.toString('base64').match(/.{1,64}/g)!.join('\n');
  const pem = `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
  for (const line of body.split('\n').slice(1, -1)) registerSecret('private key PEM line', line);
  registerSecret('private key (base64 DER)', der.toString('base64').slice(100, 200));
  return { pem, publicKey: pair.publicKey };
}

export function hkdfInfo(tables: readonly string[], recordIds: readonly string[]): string {
  return `mana-ai-mission-grant:v1:tables=${[...tables].sort().join(',')}:ids=${[...recordIds].sort().join(',')}`;
}

export async function deriveMdk(masterKey: Uint8Array, missionId: string, tables: readonly string[], recordIds: readonly string[]): Promise<Uint8Array> {
  const ikm = await subtle.importKey('raw', masterKey, 'HKDF', false, ['deriveBits']);
  const bits = await subtle.deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: new TextEncoder().encode(missionId), info: new TextEncoder().encode(hkdfInfo(tables, recordIds)) },
    ikm,
    256,
  );
  const mdk = new Uint8Array(bits);
  registerSecret('MDK (hex)', Buffer.from(mdk).toString('hex'));
  registerSecret('MDK (base64)', b64(mdk));
  return mdk;
}

export async function wrapKey(publicKey: webcrypto.CryptoKey, key: Uint8Array): Promise<string> {
  return b64(await subtle.encrypt({ name: 'RSA-OAEP' }, publicKey, key));
}

/** The webapp's field format: enc:1:<base64 iv>.<base64 ciphertext+tag>, plaintext = JSON. */
export async function encryptField(keyBytes: Uint8Array, value: unknown): Promise<string> {
  const key = await subtle.importKey('raw', keyBytes, 'AES-GCM', false, ['encrypt']);
  const iv = webcrypto.getRandomValues(new Uint8Array(12));
  const ct = await subtle.encrypt({ name: 'AES-GCM', iv }, key, new TextEncoder().encode(JSON.stringify(value)));
  if (typeof value === 'string') registerSecret('plaintext of an encrypted field', value);
  return `enc:1:${b64(iv)}.${b64(ct)}`;
}

export interface GrantSpec {
  missionId: string;
  tables: string[];
  recordIds: string[];
  wrappedKey: string;
  issuedAt?: string;
  expiresAt?: unknown;
}

export function grant(g: GrantSpec): Record<string, unknown> {
  return {
    wrappedKey: g.wrappedKey,
    derivation: { version: 'v1', missionId: g.missionId, tables: g.tables, recordIds: g.recordIds },
    issuedAt: g.issuedAt ?? new Date().toISOString(),
    expiresAt: 'expiresAt' in g ? g.expiresAt : new Date(Date.now() + 24 * 3600_000).toISOString(),
  };
}
