// The key table of a v2 Mission Grant (CONTRACT.md section 14), step 11
// of the unwrap, pure: magic "MKT2", u16 n (1..1024), per entry u16 len
// (1..512), the scope key (UTF-8, one of header.scope), u32 epoch, 32
// bytes of record key; no trailing bytes; (scope key, epoch) unique; every
// scope entry has at least one key. The entries are views into the table,
// so the caller zeroes one buffer and every raw key is gone; this module
// never copies key bytes.

import { MAX_EPOCH } from './canon.js';

export interface KeyEntry {
  scopeKey: string;
  epoch: number;
  /** a view into the table: zeroed with it */
  rk: Uint8Array;
}

const MAGIC = [0x4d, 0x4b, 0x54, 0x32];
const td = new TextDecoder('utf-8', { fatal: true });

/** The entries, or null when the table does not parse or does not match the scope (`malformed`). */
export function parseKeyTable(table: Uint8Array, scope: readonly string[]): KeyEntry[] | null {
  if (table.length < 6 || MAGIC.some((b, i) => table[i] !== b)) return null;
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const n = view.getUint16(4);
  if (n < 1 || n > 1024) return null;
  const inScope = new Set(scope);
  const seen = new Set<string>();
  const covered = new Set<string>();
  const out: KeyEntry[] = [];
  let at = 6;
  for (let i = 0; i < n; i++) {
    if (at + 2 > table.length) return null;
    const len = view.getUint16(at);
    if (len < 1 || len > 512 || at + 2 + len + 4 + 32 > table.length) return null;
    let scopeKey: string;
    try {
      scopeKey = td.decode(table.subarray(at + 2, at + 2 + len));
    } catch {
      return null;
    }
    const epoch = view.getUint32(at + 2 + len);
    if (!inScope.has(scopeKey) || epoch > MAX_EPOCH) return null;
    const id = `${epoch}:${scopeKey}`;
    if (seen.has(id)) return null;
    seen.add(id);
    covered.add(scopeKey);
    out.push({ scopeKey, epoch, rk: table.subarray(at + 6 + len, at + 6 + len + 32) });
    at += 6 + len + 32;
  }
  if (at !== table.length || covered.size !== inScope.size) return null;
  return out;
}
