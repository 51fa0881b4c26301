// Strict base64 for grant material: Buffer.from(s, 'base64') silently skips
// characters it does not know, which would turn a corrupt grant into a
// different key instead of a clear `malformed`. Accepts the standard and the
// URL-safe alphabet (the webapp's btoa writes the standard one), padding
// optional. Never logs or echoes its input.

const STANDARD = /^[A-Za-z0-9+/]*={0,2}$/;
const URL_SAFE = /^[A-Za-z0-9_-]*={0,2}$/;

export function decodeBase64Strict(s: unknown): Uint8Array | null {
  if (typeof s !== 'string' || s.length === 0) return null;
  if (!STANDARD.test(s) && !URL_SAFE.test(s)) return null;
  const unpadded = s.replace(/=+$/, '');
  if (unpadded.length % 4 === 1) return null;
  const buf = Buffer.from(s, URL_SAFE.test(s) && /[-_]/.test(s) ? 'base64url' : 'base64');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Standard padded base64 and nothing else (CONTRACT.md section 14: grant
 * v2 and `enc:2:` values): the length a multiple of four, and the text
 * exactly what the decoded bytes encode to, so no value has two spellings.
 */
export function decodeBase64Padded(s: unknown): Uint8Array | null {
  if (typeof s !== 'string' || s.length === 0 || s.length % 4 !== 0 || !STANDARD.test(s)) return null;
  const buf = Buffer.from(s, 'base64');
  if (buf.toString('base64') !== s) return null;
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
