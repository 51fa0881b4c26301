// The grant's pure parts with real keys: the contract's test vector,
// every unwrap reason, field decryption, the known gap (a value encrypted
// under the master key does not open with the MDK), and key loading.

import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { describe, it } from 'node:test';
import { decryptRecord, decryptValue, v1Opener } from '../src/grants/decrypt.js';
import { loadPrivateKey } from '../src/grants/private-key.js';
import { unwrapGrant } from '../src/grants/unwrap.js';
import { deriveMdk, encryptField, grant, hkdfInfo, makeRunnerKeys, wrapKey } from './harness/grant-maker.js';

const MASTER = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const now = Date.now();

async function privateKeyOf(pem: string) {
  const load = await loadPrivateKey(pem);
  assert.equal(load.status, 'loaded');
  return (load as { key: webcrypto.CryptoKey }).key;
}

describe('grant derivation', () => {
  it('matches the contract test vector (HKDF inputs, sorted tables and ids)', async () => {
    assert.equal(hkdfInfo(['tasks', 'notes'], ['tasks:t1', 'notes:n1']), 'mana-ai-mission-grant:v1:tables=notes,tasks:ids=notes:n1,tasks:t1');
    const mdk = await deriveMdk(MASTER, 'mission-abc', ['tasks', 'notes'], ['tasks:t1', 'notes:n1']);
    assert.equal(Buffer.from(mdk).toString('hex'), '7538df66c51d3ddb667c0135feb4ac7c2800ba372babc7e61e9423d6a9a65628');
  });
});

describe('grant unwrap', async () => {
  const keys = await makeRunnerKeys();
  const other = await makeRunnerKeys();
  const privateKey = await privateKeyOf(keys.pem);
  const mdk = await deriveMdk(MASTER, 'm1', ['notes'], ['notes:n1']);
  const wrapped = await wrapKey(keys.publicKey, mdk);
  const ctx = { missionId: 'm1', nowMs: now };
  const base = { missionId: 'm1', tables: ['notes'], recordIds: ['notes:n1'], wrappedKey: wrapped };

  it('unwraps a valid grant into a non-extractable AES-GCM key that opens MDK-encrypted values', async () => {
    const r = await unwrapGrant(privateKey, grant(base), ctx);
    assert.ok(r.ok);
    assert.equal(r.grant.key.extractable, false);
    assert.deepEqual(r.grant.key.usages, ['decrypt']);
    assert.deepEqual([...r.grant.recordIds], ['notes:n1']);
    const opened = await decryptValue(r.grant.key, await encryptField(mdk, { deep: ['wert', 1] }));
    assert.deepEqual(opened, { ok: true, value: { deep: ['wert', 1] } });
  });

  it('fails with exactly one of the four reasons', async () => {
    const reason = async (k: webcrypto.CryptoKey | null, g: unknown) => {
      const r = await unwrapGrant(k, g, ctx);
      return r.ok ? 'ok' : r.reason;
    };
    assert.equal(await reason(null, grant(base)), 'not-configured');
    assert.equal(await reason(privateKey, grant({ ...base, expiresAt: new Date(now - 1000).toISOString() })), 'expired');
    assert.equal(await reason(privateKey, grant({ ...base, expiresAt: 'next tuesday' })), 'expired');
    assert.equal(await reason(privateKey, grant({ ...base, expiresAt: undefined })), 'expired');
    assert.equal(await reason(privateKey, grant({ ...base, wrappedKey: 'not base64 at all!' })), 'malformed');
    assert.equal(await reason(privateKey, grant({ ...base, wrappedKey: await wrapKey(keys.publicKey, new Uint8Array(16)) })), 'malformed');
    assert.equal(await reason(privateKey, grant({ ...base, missionId: 'another-mission' })), 'malformed');
    assert.equal(await reason(privateKey, { ...grant(base), derivation: 'x' }), 'malformed');
    assert.equal(await reason(privateKey, 'a string'), 'expired');
    assert.equal(await reason(privateKey, grant({ ...base, wrappedKey: await wrapKey(other.publicKey, mdk) })), 'wrap-rejected');
    const flipped = Buffer.from(wrapped, 'base64');
    flipped[10] = flipped[10]! ^ 0xff;
    assert.equal(await reason(privateKey, grant({ ...base, wrappedKey: flipped.toString('base64') })), 'wrap-rejected');
  });
});

describe('field decryption', async () => {
  const mdk = await deriveMdk(MASTER, 'm2', ['notes'], ['notes:n1']);
  const key = await webcrypto.subtle.importKey('raw', mdk, 'AES-GCM', false, ['decrypt']);

  it('a value of a version this build cannot open is a failed decrypt (ciphertext-unsupported-version), never passed through as text (issue 27)', async () => {
    const r = await decryptRecord(v1Opener(key), { title: 'enc:2:AAAA.BBBB', other: 'plain' });
    assert.deepEqual(r, { ok: false, reason: 'ciphertext-unsupported-version', field: 'title' });
    const r9 = await decryptRecord(v1Opener(key), { content: 'enc:9:x' });
    assert.equal(r9.ok, false);
  });

  it('reports malformed, tampered and non-JSON values with a short reason', async () => {
    const good = await encryptField(mdk, 'Geheimer Inhalt der Notiz');
    const [iv, ct] = good.slice('enc:1:'.length).split('.') as [string, string];
    const ctBytes = Buffer.from(ct, 'base64');
    ctBytes[0] = ctBytes[0]! ^ 1;
    assert.deepEqual(await decryptValue(key, `enc:1:${iv}.${ctBytes.toString('base64')}`), { ok: false, reason: 'ciphertext-tampered-or-wrong-key' });
    assert.deepEqual(await decryptValue(key, `enc:1:${iv}`), { ok: false, reason: 'ciphertext-malformed' });
    assert.deepEqual(await decryptValue(key, `enc:1:AAAA.${ct}`), { ok: false, reason: 'ciphertext-malformed' });
    assert.deepEqual(await decryptValue(key, `enc:1:${iv}.@@@@`), { ok: false, reason: 'ciphertext-malformed' });
    const raw = webcrypto.getRandomValues(new Uint8Array(12));
    const notJson = await webcrypto.subtle.encrypt({ name: 'AES-GCM', iv: raw }, await webcrypto.subtle.importKey('raw', mdk, 'AES-GCM', false, ['encrypt']), new TextEncoder().encode('{nope'));
    assert.deepEqual(await decryptValue(key, `enc:1:${Buffer.from(raw).toString('base64')}.${Buffer.from(notJson).toString('base64')}`), { ok: false, reason: 'plaintext-not-json' });
  });

  it('decrypts every enc:1 field of a record, passes plaintext fields through, all or nothing', async () => {
    const rec = { id: 'n1', title: await encryptField(mdk, 'Titel'), content: await encryptField(mdk, 'Inhalt'), pinned: true };
    assert.deepEqual(await decryptRecord(v1Opener(key), rec), { ok: true, record: { id: 'n1', title: 'Titel', content: 'Inhalt', pinned: true }, fields: 2 });
    const broken = { ...rec, content: 'enc:1:broken' };
    assert.deepEqual(await decryptRecord(v1Opener(key), broken), { ok: false, reason: 'ciphertext-malformed', field: 'content' });
  });

  it('known gap (contract section 7): a value the webapp encrypted under the master key does not open with the MDK', async () => {
    const underMaster = await encryptField(MASTER, 'Notiz, verschlüsselt mit dem Master-Key');
    assert.deepEqual(await decryptValue(key, underMaster), { ok: false, reason: 'ciphertext-tampered-or-wrong-key' });
  });
});

describe('private key loading', async () => {
  const keys = await makeRunnerKeys();

  it('loads PKCS#8 PEM, also with literal \\n as env files carry it; absent disables', async () => {
    assert.equal((await loadPrivateKey(keys.pem)).status, 'loaded');
    assert.equal((await loadPrivateKey(keys.pem.replaceAll('\n', '\\n'))).status, 'loaded');
    assert.deepEqual(await loadPrivateKey(undefined), { status: 'absent' });
    assert.deepEqual(await loadPrivateKey('  '), { status: 'absent' });
  });

  it('rejects unusable keys with a message that says what to do and quotes no key material', async () => {
    const body = keys.pem.split('\n')[1]!;
    const cases = [
      'garbage',
      keys.pem.replace('BEGIN PRIVATE KEY', 'BEGIN RSA PRIVATE KEY').replace('END PRIVATE KEY', 'END RSA PRIVATE KEY'),
      keys.pem.replace(body, body.split('').reverse().join('')),
      `-----BEGIN PRIVATE KEY-----\n${Buffer.from('not a key').toString('base64')}\n-----END PRIVATE KEY-----`,
    ];
    for (const pem of cases) {
      const r = await loadPrivateKey(pem);
      assert.equal(r.status, 'unusable', pem.slice(0, 20));
      const problem = (r as { problem: string }).problem;
      assert.ok(problem.length > 10);
      assert.ok(!problem.includes(body.slice(0, 16)), 'no key material in the message');
    }
  });
});
