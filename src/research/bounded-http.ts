// What both research clients (mana-search, mana-research) need from an
// answer they do not trust: its body read up to a byte limit (a larger one
// is refused, never buffered whole), a failed request named as `timeout`
// or `unreachable`, and http(s) as the only link a source may carry. Pure
// helpers and one read; never logs.

import type { Dispatcher } from 'undici';

export type BoundedBody = { ok: true; status: number; text: string } | { ok: false; reason: 'too-large' };

/** The answer's body as text, or `too-large` once more than `maxBytes` arrived (the rest is not read). */
export async function readBounded(res: Dispatcher.ResponseData, maxBytes: number): Promise<BoundedBody> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res.body) {
    size += (c as Buffer).length;
    if (size > maxBytes) {
      res.body.destroy();
      return { ok: false, reason: 'too-large' };
    }
    chunks.push(c as Buffer);
  }
  return { ok: true, status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') };
}

/** A request that threw: `timeout` (a headers or body deadline), else `unreachable (<code>)`. */
export function requestFailure(error: unknown): { timeout: boolean; detail: string } {
  const code = String((error as { code?: string }).code ?? (error as Error).name);
  return /Timeout/i.test(code) ? { timeout: true, detail: 'timeout' } : { timeout: false, detail: `unreachable (${code})` };
}

/** Only http(s) links become sources: a `javascript:` or `ftp:` URL never reaches the prompt. */
export function isHttpUrl(u: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(u).protocol);
  } catch {
    return false;
  }
}
