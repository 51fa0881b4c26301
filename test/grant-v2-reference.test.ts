// The reference module (grant-v2/, issue 29) against CONTRACT.md section
// 14's test vector, byte for byte, with Web Crypto only: record keys, the
// two `enc:2:` values, the grant's header and key table; the vector's
// wrappedKey and a fresh one unwrap to the grant key with the test key and
// the v2 label, and not without the label. The module imports nothing.

import assert from 'node:assert/strict';
import { createPublicKey, createPrivateKey, privateDecrypt, constants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import * as g from '../grant-v2/index.js';
import { readContractFile } from './harness/contract.js';

const MK = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const VECTOR = JSON.parse(readContractFile('grant-v2-vector.json')) as g.GrantV2;
const PEM = readContractFile('grant-v2-test-key.pem');
const fromHex = (h: string) => Uint8Array.from(h.match(/../g)!.map((b) => parseInt(b, 16)));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const range = (from: number, to: number) => Uint8Array.from({ length: to - from + 1 }, (_, i) => from + i);
const unwrap = (b64: string, label?: string) =>
  privateDecrypt({ key: createPrivateKey(PEM), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', ...(label ? { oaepLabel: Buffer.from(label) } : {}) }, Buffer.from(b64, 'base64'));

describe('grant v2 reference module', () => {
  it('uses Web Crypto only: no import, no require, no Node API in its source', () => {
    const src = readFileSync(new URL('../grant-v2/index.js', import.meta.url), 'utf8');
    assert.doesNotMatch(src, /^\s*import\s|require\(|from ['"]node:|process\.|Buffer\b/m);
  });

  it('derives the vector\'s record keys', async () => {
    const keys = g.createRecordKeys(await g.importRecordKeyRoot(MK));
    assert.equal(toHex(await keys.rawKey({ userId: 'user-1', table: 'notes', recordId: 'n1', epoch: 0 })), 'bf2377bd03852bc0b58674f30271ee00227e5f9976b634b118abc5d200491687');
    assert.equal(toHex(await keys.rawKey({ userId: 'user-1', table: 'tasks', recordId: 't1', epoch: 0 })), '3c359174e05448eb73f1d870f2b466119d71e1e6e5fd8b678515f695dfc5a4f6');
    assert.equal(toHex(await keys.rawKey({ userId: 'user-1', table: 'notes', recordId: 'n1', epoch: 1 })), 'b546bba9971c08c63758bfcc3baf0adba4c995708fc12d884b25daecc5063159');
  });

  it('writes the vector\'s enc:2: values and opens them; a value moved to another field, record, user or epoch fails', async () => {
    const keys = g.createRecordKeys(await g.importRecordKeyRoot(MK));
    const n1 = { userId: 'user-1', table: 'notes', recordId: 'n1' };
    const t1 = { userId: 'user-1', table: 'tasks', recordId: 't1' };
    const a = await g.encryptField(keys, n1, 'content', 'Hallo Welt', 0, fromHex('000102030405060708090a0b'));
    const b = await g.encryptField(keys, t1, 'title', 'Steuererklärung abgeben', 0, fromHex('0c0d0e0f1011121314151617'));
    assert.equal(a, 'enc:2:0:AAECAwQFBgcICQoL.d6GF+Tp9YHLz+R/0Y8XD8QB7zQ3weIxr8t6ZGQ==');
    assert.equal(b, 'enc:2:0:DA0ODxAREhMUFRYX.wqKKv3HCWEQw51RQeLsxUpEy81VMCRFs1ELiWqOGjMMMIdHPTFuN+fin');
    assert.deepEqual(await g.decryptField(keys, n1, 'content', a), { ok: true, value: 'Hallo Welt' });
    for (const [ref, field] of [[n1, 'title'], [{ ...n1, recordId: 'n2' }, 'content'], [{ ...n1, userId: 'user-2' }, 'content']] as const) {
      assert.deepEqual(await g.decryptField(keys, ref, field, a), { ok: false, reason: 'ciphertext-tampered-or-wrong-key' });
    }
    assert.deepEqual(await g.decryptField(keys, n1, 'content', a.replace('enc:2:0:', 'enc:2:1:')), { ok: false, reason: 'ciphertext-tampered-or-wrong-key' });
    assert.deepEqual(await g.decryptField(keys, n1, 'content', 'enc:3:x'), { ok: false, reason: 'ciphertext-unsupported-version' });
    assert.deepEqual(await g.decryptField(keys, n1, 'content', 'enc:2:99999999999:AAECAwQFBgcICQoL.d6GF'), { ok: false, reason: 'ciphertext-malformed' });
  });

  it('builds the vector\'s grant: header and sealed key table byte for byte; its wrappedKey and the vector\'s unwrap to the grant key only with the v2 label', async () => {
    const keys = g.createRecordKeys(await g.importRecordKeyRoot(MK));
    const spki = createPublicKey(createPrivateKey(PEM)).export({ type: 'spki', format: 'der' });
    const runner = await g.importRunnerPublicKey(new Uint8Array(spki));
    assert.equal(runner.kid, 'fae13e4a6b85ae97');
    const header = JSON.parse(VECTOR.header) as { issuedAt: string; grantId: string };
    const grant = await g.buildGrant({
      keys, userId: 'user-1', missionId: 'mission-abc', runner,
      records: [{ table: 'tasks', id: 't1', epoch: 0 }, { table: 'notes', id: 'n1', epoch: 0 }],
      now: Date.parse(header.issuedAt), ttlMs: 7 * 86_400_000, grantId: header.grantId, gwk: range(0xa0, 0xbf), iv: fromHex('101112131415161718191a1b'),
    });
    assert.equal(grant.header, VECTOR.header);
    assert.equal(grant.keys, VECTOR.keys);
    assert.equal(toHex(unwrap(grant.wrappedKey, g.GRANT_LABEL)), toHex(range(0xa0, 0xbf)));
    assert.equal(toHex(unwrap(VECTOR.wrappedKey, g.GRANT_LABEL)), toHex(range(0xa0, 0xbf)));
    assert.throws(() => unwrap(VECTOR.wrappedKey), 'without the v2 label it does not unwrap');
  });

  it('records: all-or-nothing decryption, enc:1: opened with the master key, recordEpoch, an upgrade diff to a new epoch', async () => {
    const keys = g.createRecordKeys(await g.importRecordKeyRoot(MK));
    const legacyKey = await g.importLegacyKey(MK);
    const ref = { userId: 'user-1', table: 'notes', recordId: 'n9' };
    // an old value the webapp wrote under the master key (enc:1:)
    const iv = range(1, 12);
    const aes = await crypto.subtle.importKey('raw', MK, 'AES-GCM', false, ['encrypt']);
    const old = `enc:1:${g.toBase64(iv)}.${g.toBase64(new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, aes, new TextEncoder().encode(JSON.stringify('alt')))))}`;
    const record = await g.encryptRecord(keys, ref, { id: 'n9', title: 'Titel', content: 'neu' }, ['title'], 0);
    const mixed = { ...record, content: old };
    assert.equal(g.recordEpoch(mixed), 0);
    assert.deepEqual(await g.decryptRecord(keys, ref, mixed), { ok: false, field: 'content', reason: 'legacy-master-key-ciphertext' });
    assert.deepEqual(await g.decryptRecord(keys, ref, mixed, { legacyKey }), { ok: true, record: { id: 'n9', title: 'Titel', content: 'alt' } });
    const diff = await g.upgradeDiff(keys, ref, mixed, 1, { legacyKey });
    assert.deepEqual(Object.keys(diff), ['content', 'title']);
    const upgraded = { ...mixed, ...diff };
    assert.equal(g.recordEpoch(upgraded), 1);
    assert.deepEqual(await g.decryptRecord(keys, ref, upgraded), { ok: true, record: { id: 'n9', title: 'Titel', content: 'alt' } });
    assert.deepEqual(await g.upgradeDiff(keys, ref, upgraded, 1), {}, 'nothing left to upgrade');
    assert.equal(g.isEncrypted('enc:7:abc'), true);
    assert.equal(g.isEncrypted('encore'), false);
  });
});
