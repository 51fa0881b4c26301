// CONTRACT.md section 14's canonical encoding: canon(parts) =
// UTF-8(JSON.stringify(parts)), each part a string or an integer
// 0..2^31-1. The info of a record key and the AAD of an `enc:2:` value are
// built with it; a byte of difference is a different key or a failed tag,
// so this must match the reference module (grant-v2/index.js) exactly. Pure.

export const MAX_EPOCH = 2 ** 31 - 1;

const te = new TextEncoder();

export function canon(parts: readonly (string | number)[]): Uint8Array {
  for (const p of parts) {
    if (typeof p === 'string') continue;
    if (!Number.isInteger(p) || p < 0 || p > MAX_EPOCH) throw new RangeError('canon: a part is neither a string nor an integer 0..2^31-1');
  }
  return te.encode(JSON.stringify(parts));
}

/** The AAD of an `enc:2:` value: canon(["mana-enc", 2, user, table, record, field, epoch]). */
export const fieldAad = (userId: string, table: string, recordId: string, field: string, epoch: number): Uint8Array =>
  canon(['mana-enc', 2, userId, table, recordId, field, epoch]);
