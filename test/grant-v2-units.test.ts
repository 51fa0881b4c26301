// Grant v2's pure parts and the runner's unwrap against CONTRACT.md
// section 14: the contract's vector opens with the test key (clock set
// between issuedAt − 5 min and expiresAt) and its enc:2: values decrypt;
// every header rule, every key-table rule and each unwrap step's reason;
// which grant serves when a stale device pushed an older one.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadPrivateKey, type LoadedKey } from '../src/grants/private-key.js';
import { runnerKeys, NO_RUNNER_KEYS } from '../src/grants/runner-keys.js';
import { decryptRecord } from '../src/grants/decrypt.js';
import { canon } from '../src/grants/v2/canon.js';
import { checkHeader, headerObject, isExpired } from '../src/grants/v2/header.js';
import { parseKeyTable } from '../src/grants/v2/key-table.js';
import { chooseGrant } from '../src/grants/v2/grant-choice.js';
import { unwrapGrantV2 } from '../src/grants/v2/unwrap-v2.js';
import { v2Opener } from '../src/grants/v2/decrypt-v2.js';
import * as ref from '../grant-v2/index.js';
import { readContractFile } from './harness/contract.js';
import { keyTable, runnerOf, sealGrant } from './harness/grant-v2-maker.js';
import { makeRunnerKeys } from './harness/grant-maker.js';

const VECTOR = JSON.parse(readContractFile('grant-v2-vector.json')) as ref.GrantV2;
const HEADER = JSON.parse(VECTOR.header) as Record<string, unknown>;
const ISSUED = Date.parse('2026-12-07T09:00:00.000Z');
const ctx = (over: Partial<{ userId: string; missionId: string; nowMs: number; isRevoked: (id: string) => boolean }> = {}) =>
  ({ userId: 'user-1', missionId: 'mission-abc', nowMs: ISSUED, isRevoked: () => false, ...over });

async function loaded(pem: string): Promise<LoadedKey> {
  const l = await loadPrivateKey(pem);
  assert.equal(l.status, 'loaded');
  return l as LoadedKey;
}

describe('grant v2: the contract vector', () => {
  it('canon is JSON.stringify of the parts as UTF-8, integers 0..2^31-1 only', () => {
    assert.equal(new TextDecoder().decode(canon(['mana-record-key', 2, 'user-1', 'notes', 'n1', 0])), '["mana-record-key",2,"user-1","notes","n1",0]');
    assert.throws(() => canon([2 ** 31]));
    assert.throws(() => canon([-1]));
    assert.throws(() => canon([1.5]));
  });

  it('the test key has the vector\'s runnerKid; the vector opens between issuedAt − 5 min and expiresAt, and its enc:2: values decrypt', async () => {
    const key = await loaded(readContractFile('grant-v2-test-key.pem'));
    assert.equal(key.kid, 'fae13e4a6b85ae97');
    const keys = runnerKeys(key);
    for (const nowMs of [ISSUED - 4 * 60_000, ISSUED, Date.parse('2026-12-14T08:59:59.000Z')]) {
      const r = await unwrapGrantV2(keys, VECTOR, ctx({ nowMs }));
      assert.ok(r.ok, `opens at ${new Date(nowMs).toISOString()}`);
    }
    const r = await unwrapGrantV2(keys, VECTOR, ctx());
    assert.ok(r.ok);
    assert.deepEqual([...r.grant.recordIds], ['notes:n1', 'tasks:t1']);
    const n1 = await decryptRecord(v2Opener(r.grant, { userId: 'user-1', table: 'notes', recordId: 'n1' }), { content: 'enc:2:0:AAECAwQFBgcICQoL.d6GF+Tp9YHLz+R/0Y8XD8QB7zQ3weIxr8t6ZGQ==', pinned: true });
    assert.deepEqual(n1, { ok: true, record: { content: 'Hallo Welt', pinned: true }, fields: 1 });
    const t1 = await decryptRecord(v2Opener(r.grant, { userId: 'user-1', table: 'tasks', recordId: 't1' }), { title: 'enc:2:0:DA0ODxAREhMUFRYX.wqKKv3HCWEQw51RQeLsxUpEy81VMCRFs1ELiWqOGjMMMIdHPTFuN+fin' });
    assert.deepEqual(t1, { ok: true, record: { title: 'Steuererklärung abgeben' }, fields: 1 });
    // the same value under another record, or user: the tag fails
    const moved = await decryptRecord(v2Opener(r.grant, { userId: 'user-2', table: 'notes', recordId: 'n1' }), { content: 'enc:2:0:AAECAwQFBgcICQoL.d6GF+Tp9YHLz+R/0Y8XD8QB7zQ3weIxr8t6ZGQ==' });
    assert.deepEqual(moved, { ok: false, reason: 'ciphertext-tampered-or-wrong-key', field: 'content' });
    assert.equal(r.grant.keyFor('notes:n1', 1), undefined, 'no key for an epoch the grant does not carry');
  });

  it('refuses the vector with the first failing step\'s reason', async () => {
    const keys = runnerKeys(await loaded(readContractFile('grant-v2-test-key.pem')));
    const reason = async (g: unknown, c = ctx()) => { const r = await unwrapGrantV2(keys, g, c); return r.ok ? 'ok' : r.reason; };
    assert.equal((await unwrapGrantV2(NO_RUNNER_KEYS, VECTOR, ctx()) as { reason: string }).reason, 'not-configured');
    assert.equal(await reason({ ...VECTOR, v: '2' }), 'malformed');
    assert.equal(await reason({ ...VECTOR, header: '[1]' }), 'malformed');
    assert.equal(await reason(VECTOR, ctx({ nowMs: Date.parse('2026-12-14T09:00:00.000Z') })), 'expired');
    assert.equal(await reason(VECTOR, ctx({ nowMs: ISSUED - 6 * 60_000 })), 'malformed', 'issued more than 5 min in the future');
    assert.equal(await reason(VECTOR, ctx({ userId: 'user-2' })), 'wrong-binding');
    assert.equal(await reason(VECTOR, ctx({ missionId: 'mission-xyz' })), 'wrong-binding');
    assert.equal(await reason(VECTOR, ctx({ isRevoked: (id) => id === HEADER['grantId'] })), 'revoked');
    assert.equal(await reason({ ...VECTOR, keys: VECTOR.keys.slice(0, -4) + '====' }), 'malformed', 'not strict base64');
    assert.equal(await reason({ ...VECTOR, keys: 'AAAA' }), 'malformed', 'under 34 bytes');
    assert.equal(await reason({ ...VECTOR, header: JSON.stringify({ ...HEADER, runnerKid: '0000000000000000' }) }), 'wrap-rejected');
    assert.equal(await reason({ ...VECTOR, wrappedKey: VECTOR.wrappedKey.slice(4) }), 'wrap-rejected', 'not the modulus length');
    const flipped = Buffer.from(VECTOR.wrappedKey, 'base64');
    flipped[10] = flipped[10]! ^ 1;
    assert.equal(await reason({ ...VECTOR, wrappedKey: flipped.toString('base64') }), 'wrap-rejected');
    assert.equal(await reason({ ...VECTOR, header: JSON.stringify({ ...HEADER, expiresAt: '2026-12-15T09:00:00.000Z' }) }), 'wrap-rejected', 'the key table is sealed under the header');
    assert.equal(await reason({ ...VECTOR, header: VECTOR.header.replace('{', '{ ') }), 'wrap-rejected', 'the header\'s exact bytes');
    assert.equal(await reason({ ...VECTOR, unknown: 'ignored', expiresAt: '1999-01-01T00:00:00.000Z' }), 'ok', 'unknown top-level keys mean nothing');
  });

  it('refuses a v1 label, and a v2 grant wrapped with the v1 label', async () => {
    const runner = await makeRunnerKeys();
    const key = await loaded(runner.pem);
    const pub = await runnerOf(runner);
    const h = { typ: 'mana-ai-mission-grant', v: 2, grantId: crypto.randomUUID(), userId: 'u', missionId: 'm', issuedAt: new Date(ISSUED).toISOString(), expiresAt: new Date(ISSUED + 3_600_000).toISOString(), runnerKid: key.kid, scope: ['notes:n1'] };
    const good = await sealGrant({ header: h, runner: pub, table: [{ scopeKey: 'notes:n1', epoch: 0, rk: new Uint8Array(32).fill(7) }] });
    const c = ctx({ userId: 'u', missionId: 'm' });
    assert.ok((await unwrapGrantV2(runnerKeys(key), good, c)).ok);
    const unlabelled = Buffer.from(await crypto.subtle.encrypt({ name: 'RSA-OAEP' }, runner.publicKey, new Uint8Array(32))).toString('base64');
    assert.deepEqual(await unwrapGrantV2(runnerKeys(key), { ...good, wrappedKey: unlabelled }, c), { ok: false, reason: 'wrap-rejected' });
    const short = Buffer.from(await crypto.subtle.encrypt({ name: 'RSA-OAEP', label: new TextEncoder().encode('mana-ai-mission-grant/v2') }, runner.publicKey, new Uint8Array(16))).toString('base64');
    assert.deepEqual(await unwrapGrantV2(runnerKeys(key), { ...good, wrappedKey: short }, c), { ok: false, reason: 'malformed' }, 'a grant key of 16 bytes');
    // the previous key, chosen by runnerKid
    assert.ok((await unwrapGrantV2(runnerKeys(await loaded((await makeRunnerKeys()).pem), key), good, c)).ok);
  });
});

describe('grant v2: header rules (step 4)', () => {
  const base = { ...HEADER };
  const check = (over: Record<string, unknown>, drop?: string) => {
    const f: Record<string, unknown> = { ...base, ...over };
    if (drop) delete f[drop];
    return checkHeader(f, ISSUED) !== null;
  };
  it('accepts the vector\'s header and refuses each broken rule', () => {
    assert.ok(check({}));
    assert.ok(!check({}, 'runnerKid'), 'a missing key');
    assert.ok(!check({ extra: 1 }), 'an extra key');
    assert.ok(!check({ typ: 'other' }));
    assert.ok(!check({ v: 1 }));
    assert.ok(!check({ grantId: 'not-a-uuid' }));
    assert.ok(!check({ userId: '' }));
    assert.ok(!check({ issuedAt: '2026-12-07T09:00:00Z' }), 'milliseconds required');
    assert.ok(!check({ expiresAt: '2026-02-30T09:00:00.000Z' }), 'no such day');
    assert.ok(!check({ expiresAt: '2027-01-06T09:05:00.001Z' }), 'longer than 30 d + 5 min');
    assert.ok(check({ expiresAt: '2027-01-06T09:05:00.000Z' }), '30 d + 5 min is accepted');
    assert.ok(!check({ expiresAt: '2026-12-07T09:00:00.000Z' }), 'expires when issued');
    assert.ok(!check({ runnerKid: 'FAE13E4A6B85AE97' }), 'lowercase hex');
    assert.ok(!check({ scope: [] }));
    assert.ok(!check({ scope: ['tasks:t1', 'notes:n1'] }), 'unsorted');
    assert.ok(!check({ scope: ['notes:n1', 'notes:n1'] }), 'duplicate');
    assert.ok(!check({ scope: ['journal:j1'] }), 'a table without record keys');
    assert.ok(!check({ scope: ['notes:'] }));
    assert.ok(!check({ scope: [`notes:${'x'.repeat(507)}`] }), 'over 512 bytes');
    assert.ok(check({ scope: [`notes:${'x'.repeat(506)}`] }), '512 bytes');
    assert.ok(!check({ scope: Array.from({ length: 257 }, (_, i) => `notes:${String(i).padStart(3, '0')}`) }), 'over 256');
    assert.ok(check({ scope: Array.from({ length: 256 }, (_, i) => `notes:${String(i).padStart(3, '0')}`) }), '256');
  });
  it('step 2 and step 3', () => {
    assert.equal(headerObject(null), null);
    assert.equal(headerObject({ v: 2, header: 'null' }), null);
    assert.equal(headerObject({ v: 2, header: {} }), null);
    assert.ok(isExpired({ expiresAt: 'morgen' }, ISSUED));
    assert.ok(isExpired({}, ISSUED));
    assert.ok(!isExpired({ expiresAt: '2026-12-08T00:00:00.000Z' }, ISSUED));
  });
});

describe('grant v2: key table rules (step 11)', () => {
  const rk = new Uint8Array(32).fill(1);
  const scope = ['notes:n1', 'tasks:t1'];
  const e = (scopeKey: string, epoch = 0) => ({ scopeKey, epoch, rk });
  it('parses a table that matches the scope, with several epochs of one record', () => {
    const t = parseKeyTable(keyTable([e('notes:n1'), e('notes:n1', 1), e('tasks:t1')]), scope);
    assert.deepEqual(t?.map((x) => `${x.scopeKey}@${x.epoch}`), ['notes:n1@0', 'notes:n1@1', 'tasks:t1@0']);
  });
  it('refuses what does not parse or does not match', () => {
    const bad = (b: Uint8Array) => assert.equal(parseKeyTable(b, scope), null);
    const good = keyTable([e('notes:n1'), e('tasks:t1')]);
    bad(good.subarray(0, good.length - 1));
    bad(Uint8Array.from([...good, 0]));
    const magic = good.slice();
    magic[3] = 0x31;
    bad(magic);
    bad(keyTable([e('notes:n1')]));
    bad(keyTable([e('notes:n1'), e('tasks:t1'), e('notes:n1')]));
    bad(keyTable([e('notes:n1'), e('tasks:t1'), e('notes:n2')]));
    bad(keyTable([e('notes:n1'), e('tasks:t1', 2 ** 31)]));
    const zero = good.slice();
    zero[4] = 0; zero[5] = 0;
    bad(zero);
  });
});

describe('grant v2: which grant serves (stale devices)', () => {
  const g = (id: string) => ({ v: 2, header: JSON.stringify({ grantId: id }) });
  it('the folded grant when it is the newest live one or none is live; the newest live one otherwise, the folded one refused', () => {
    assert.deepEqual(chooseGrant(g('a'), []), { serve: g('a'), refused: false, revoked: new Set() });
    const seen = [
      { grantId: 'b', issuedMs: 2, body: g('b'), revoked: false },
      { grantId: 'a', issuedMs: 1, body: g('a'), revoked: true },
    ];
    assert.deepEqual(chooseGrant(g('b'), seen), { serve: g('b'), refused: false, revoked: new Set(['a']) });
    assert.deepEqual(chooseGrant(g('a'), seen), { serve: g('b'), refused: true, revoked: new Set(['a']) });
    const allRevoked = seen.map((s) => ({ ...s, revoked: true }));
    assert.deepEqual(chooseGrant(g('b'), allRevoked).serve, g('b'));
    assert.equal(chooseGrant(g('b'), allRevoked).refused, false, 'nothing live: the folded grant is unwrapped and step 6 refuses it');
  });
});

