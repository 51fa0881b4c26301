// Opens the fields of one record under a v2 grant (CONTRACT.md section
// 14): `enc:2:<epoch>:<iv>.<ciphertext‖tag>` with the record key of
// (`<table>:<id>`, epoch) from the grant's key table and the AAD that
// binds the value to user, table, record, field and epoch, so a value
// moved anywhere else fails its tag. Every other `enc:<n>:` value is a
// named failure, never plaintext. The record's owner is the mission's
// user (a grant's records are the owner's personal ones). Never logs.

import { decodeBase64Padded } from '../base64.js';
import { openGcm, type FieldOpener } from '../decrypt.js';
import { fieldAad, MAX_EPOCH } from './canon.js';
import type { UsableGrantV2 } from './unwrap-v2.js';

const ENC2 = /^enc:2:(0|[1-9][0-9]{0,9}):([A-Za-z0-9+/]+={0,2})\.([A-Za-z0-9+/]+={0,2})$/;

export function v2Opener(grant: UsableGrantV2, ref: { userId: string; table: string; recordId: string }): FieldOpener {
  const scopeKey = `${ref.table}:${ref.recordId}`;
  return async (field, value) => {
    if (value.startsWith('enc:1:')) return { ok: false, reason: 'legacy-master-key-ciphertext' };
    if (!value.startsWith('enc:2:')) return { ok: false, reason: 'ciphertext-unsupported-version' };
    const m = ENC2.exec(value);
    const epoch = m ? Number(m[1]) : NaN;
    const iv = m ? decodeBase64Padded(m[2]) : null;
    const data = m ? decodeBase64Padded(m[3]) : null;
    if (!(epoch <= MAX_EPOCH) || !iv || iv.length !== 12 || !data || data.length < 16) return { ok: false, reason: 'ciphertext-malformed' };
    const key = grant.keyFor(scopeKey, epoch);
    if (!key) return { ok: false, reason: 'no-key-for-epoch' };
    return openGcm(key, iv, data, fieldAad(ref.userId, ref.table, ref.recordId, field, epoch));
  };
}
