// Grant v2 through the real daemon (issue 29; CONTRACT.md section 14):
// records and grants built with the reference module (grant-v2/) as the
// webapp and mana-auth would, every outcome of section 14 as a mission of
// its own, most of them attacks: ciphertexts moved between records, fields
// and users, headers edited, grants replayed, revoked and pushed again by a
// stale device, re-keyed records, broken values and key tables. All
// missions run in one daemon at once; each is checked by its audit rows,
// its skip reason and what reached the prompt. Then the grant state is
// rebuilt from history and compared, a daemon without a key counts
// `not-configured`, and the suite's log scan covers every plaintext and
// master key registered here.

import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import * as ref from '../grant-v2/index.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { runOf, startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { deriveMdk, encryptField as encryptV1, grant as grantV1, makeRunnerKeys, wrapKey, type RunnerKeys } from './harness/grant-maker.js';
import { encryptedRecord, headerOf, keyTable, runnerOf, sealGrant, userVault, type UserVault } from './harness/grant-v2-maker.js';

const A = 'u-v2-a';
const B = 'u-v2-b';
const HOUR = 3_600_000;

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;
let k1: RunnerKeys; // current
let k0: RunnerKeys; // previous
let k2: RunnerKeys; // a key this runner does not have
let r1: ref.RunnerKey;
let r0: ref.RunnerKey;
let r2: ref.RunnerKey;
let va: UserVault;
let vb: UserVault;

let tick = 0;
const later = () => new Date(Date.now() + ++tick * 10).toISOString();

const APP: Record<string, string> = { notes: 'notes', tasks: 'todo', journalEntries: 'journal', kontextDoc: 'kontext' };
const MODULE: Record<string, string> = { notes: 'notes', tasks: 'tasks', journalEntries: 'journal', kontextDoc: 'kontext' };
const input = (table: string, id: string) => ({ module: MODULE[table]!, table, id });

async function put(user: string, table: string, id: string, data: Record<string, unknown>) {
  await pushChange(db.pool, { userId: user, appId: APP[table]!, tableName: table, recordId: id, op: 'insert', data: { id, ...data } });
}
async function edit(user: string, table: string, id: string, data: Record<string, unknown>) {
  const ts = later();
  await pushChange(db.pool, { userId: user, appId: APP[table]!, tableName: table, recordId: id, op: 'update', data, fieldTimestamps: Object.fromEntries(Object.keys(data).map((k) => [k, ts])) });
}
const enc = (v: UserVault, table: string, id: string, rec: Record<string, unknown>, fields: string[], epoch = 0) => encryptedRecord(v, table, id, rec, fields, epoch);

/** A grant for `records` of user `v` built by the reference module. */
function build(v: UserVault, missionId: string, records: [string, string, number?][], opts: { runner?: ref.RunnerKey; now?: number; ttlMs?: number } = {}) {
  return ref.buildGrant({
    keys: v.keys, userId: v.userId, missionId, runner: opts.runner ?? r1,
    records: records.map(([table, id, epoch]) => ({ table, id, epoch: epoch ?? 0 })),
    ...(opts.now !== undefined ? { now: opts.now } : {}), ...(opts.ttlMs !== undefined ? { ttlMs: opts.ttlMs } : {}),
  });
}
const editHeader = (g: ref.GrantV2, over: Record<string, unknown>): ref.GrantV2 => ({ ...g, header: JSON.stringify({ ...JSON.parse(g.header), ...over }) });
const rawKey = (v: UserVault, table: string, id: string, epoch = 0) => v.keys.rawKey({ userId: v.userId, table, recordId: id, epoch });

interface Case {
  id: string;
  user?: string;
  inputs: { module: string; table: string; id: string }[];
  /** the grant of the mission's first insert */
  grant: () => Promise<unknown>;
  /** writes after the insert, before the mission is due */
  then?: (id: string) => Promise<void>;
  audit: [string, string, string | null][];
  skips?: string[];
  prompt?: { has?: string[]; not?: string[] };
}

const cases: Case[] = [];
const add = (c: Case) => cases.push(c);

async function missionPush(user: string, id: string, data: Record<string, unknown>) {
  const ts = later();
  await pushChange(db.pool, { userId: user, recordId: id, op: 'update', data, fieldTimestamps: Object.fromEntries(Object.keys(data).map((k) => [k, ts])) });
}

/** The grant-skip reasons the daemon logged for a mission. */
function skipsOf(d: TestDaemon, missionId: string): string[] {
  const out: string[] = [];
  for (const chunk of d.logs) {
    for (const line of chunk.split('\n')) {
      if (!line.includes(missionId) || !line.includes('mission grant')) continue;
      const e = JSON.parse(line) as { missionId?: string; reason?: string };
      if (e.missionId === missionId && e.reason) out.push(e.reason);
    }
  }
  return out;
}

async function auditOf(missionId: string): Promise<[string, string, string | null][]> {
  const { rows } = await db.pool.query<{ record_id: string; status: string; reason: string | null }>(
    'SELECT record_id, status, reason FROM mana_ai.decrypt_audit WHERE mission_id = $1 ORDER BY id', [missionId]);
  return rows.map((r) => [r.record_id, r.status, r.reason]);
}

const promptOf = (missionId: string) =>
  llm.requests.map((r) => r.body.messages.map((m) => m.content).join('\n')).find((p) => p.includes(`\nTitel ${missionId}\n`));

async function metric(d: TestDaemon, name: string, labels: string): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${d.port}/metrics`).then((r) => r.text());
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : NaN;
}

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer(() => ({ content: planAnswer('Plan mit Daten') }));
  [k1, k0, k2] = await Promise.all([makeRunnerKeys(), makeRunnerKeys(), makeRunnerKeys()]);
  [r1, r0, r2] = await Promise.all([runnerOf(k1), runnerOf(k0), runnerOf(k2)]);
  [va, vb] = await Promise.all([userVault(A), userVault(B)]);
  daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_PRIVATE_KEY_PEM: k1.pem, MANA_AI_PREVIOUS_PRIVATE_KEY_PEM: k0.pem });
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

describe('grant v2 through the daemon (CONTRACT.md section 14)', () => {
  it('opens what the webapp encrypted, refuses every attack with the contract\'s reason, and keeps serving the newest live grant', async () => {
    // A's records, as the webapp writes them with record keys
    await put(A, 'notes', 'n1', await enc(va, 'notes', 'n1', { title: 'Einkauf', content: 'Milch und Brot für Sonntag', pinned: false }, ['title', 'content']));
    await put(A, 'notes', 'n2', await enc(va, 'notes', 'n2', { title: 'Privat', content: 'Diese Notiz ist nicht freigegeben' }, ['title', 'content']));
    await put(A, 'tasks', 't1', await enc(va, 'tasks', 't1', { title: 'Steuererklärung abgeben', status: 'open' }, ['title']));
    await put(A, 'journalEntries', 'j1', await enc(va, 'journalEntries', 'j1', { content: 'Ruhiger Tag am Fluss verbracht' }, ['content']));
    await put(A, 'kontextDoc', 'k1', await enc(va, 'kontextDoc', 'k1', { content: 'Ich arbeite montags im Homeoffice' }, ['content']));
    const n1 = { userId: A, table: 'notes', recordId: 'n1' };
    const n1Content = await ref.encryptField(va.keys, n1, 'content', 'Milch und Brot für Sonntag', 0);

    add({
      id: 'v2-ok', inputs: [input('notes', 'n1'), input('tasks', 't1'), input('journalEntries', 'j1'), input('kontextDoc', 'k1')],
      grant: () => build(va, 'v2-ok', [['notes', 'n1'], ['tasks', 't1'], ['journalEntries', 'j1'], ['kontextDoc', 'k1']]),
      audit: [['n1', 'ok', null], ['t1', 'ok', null], ['j1', 'ok', null], ['k1', 'ok', null]],
      prompt: { has: ['Einkauf; Milch und Brot für Sonntag', '[open] Steuererklärung abgeben', 'Ruhiger Tag am Fluss verbracht', 'Ich arbeite montags im Homeoffice'], not: ['enc:2:'] },
    });
    add({
      id: 'v2-previous-key', inputs: [input('notes', 'n1')], grant: () => build(va, 'v2-previous-key', [['notes', 'n1']], { runner: r0 }),
      audit: [['n1', 'ok', null]], prompt: { has: ['Milch und Brot für Sonntag'] },
    });
    add({
      id: 'v2-scope', inputs: [input('notes', 'n1'), input('notes', 'n2')], grant: () => build(va, 'v2-scope', [['notes', 'n1']]),
      audit: [['n1', 'ok', null], ['n2', 'scope-violation', 'record-not-in-grant-allowlist']], prompt: { not: ['nicht freigegeben'] },
    });

    // ciphertexts moved between records, fields and users
    await put(A, 'notes', 'n-moved', { title: 'Kopie', content: n1Content });
    add({ id: 'v2-moved-record', inputs: [input('notes', 'n-moved')], grant: () => build(va, 'v2-moved-record', [['notes', 'n-moved']]), audit: [['n-moved', 'failed', 'ciphertext-tampered-or-wrong-key']] });
    const fieldMoved = await enc(va, 'notes', 'n-field', { title: 'Titel', content: 'Inhalt' }, ['title', 'content']);
    await put(A, 'notes', 'n-field', { title: fieldMoved['title'], content: fieldMoved['title'] });
    add({ id: 'v2-moved-field', inputs: [input('notes', 'n-field')], grant: () => build(va, 'v2-moved-field', [['notes', 'n-field']]), audit: [['n-field', 'failed', 'ciphertext-tampered-or-wrong-key']] });
    const bs = await enc(vb, 'notes', 'n-user', { content: 'Bs geheime Notiz mit gleicher Id' }, ['content']);
    await put(B, 'notes', 'n-user', bs);
    await put(A, 'notes', 'n-user', { content: bs['content'] });
    add({ id: 'v2-moved-user', inputs: [input('notes', 'n-user')], grant: () => build(va, 'v2-moved-user', [['notes', 'n-user']]), audit: [['n-user', 'failed', 'ciphertext-tampered-or-wrong-key']], prompt: { not: ['Bs geheime'] } });

    // the grant itself
    add({ id: 'v2-expired', inputs: [input('notes', 'n1')], grant: () => build(va, 'v2-expired', [['notes', 'n1']], { now: Date.now() - 3 * HOUR, ttlMs: HOUR }), audit: [], skips: ['expired'], prompt: { not: ['Milch'] } });
    add({
      id: 'v2-extended', inputs: [input('notes', 'n1')], audit: [], skips: ['wrap-rejected'],
      grant: async () => { const g = await build(va, 'v2-extended', [['notes', 'n1']]); return editHeader(g, { expiresAt: new Date(Date.parse(JSON.parse(g.header).expiresAt) + 86_400_000).toISOString() }); },
    });
    add({ id: 'v2-remissioned', inputs: [input('notes', 'n1')], audit: [], skips: ['wrap-rejected'], grant: async () => editHeader(await build(va, 'v2-elsewhere', [['notes', 'n1']]), { missionId: 'v2-remissioned' }) });
    add({ id: 'v2-widened', inputs: [input('notes', 'n1'), input('notes', 'n2')], audit: [], skips: ['wrap-rejected'], grant: async () => editHeader(await build(va, 'v2-widened', [['notes', 'n1']]), { scope: ['notes:n1', 'notes:n2'] }) });
    add({ id: 'v2-replayed', inputs: [input('notes', 'n1')], audit: [], skips: ['wrong-binding'], grant: () => build(va, 'v2-ok', [['notes', 'n1']]) });
    add({ id: 'v2-other-user', user: B, inputs: [input('notes', 'n1')], audit: [], skips: ['wrong-binding'], grant: () => build(va, 'v2-other-user', [['notes', 'n1']]) });
    add({ id: 'v2-other-runner', inputs: [input('notes', 'n1')], audit: [], skips: ['wrap-rejected'], grant: () => build(va, 'v2-other-runner', [['notes', 'n1']], { runner: r2 }) });
    add({ id: 'v2-garbage', inputs: [input('notes', 'n1')], audit: [], skips: ['malformed'], grant: async () => ({ v: 2, header: '{kein json', wrappedKey: 'AAAA', keys: 'AAAA' }) });
    const sealed = async (missionId: string, over: { lifetimeMs?: number; scope?: string[] }, table: (rk: Uint8Array) => Uint8Array) =>
      sealGrant({ header: headerOf({ userId: A, missionId, runnerKid: r1.kid, scope: over.scope ?? ['notes:n1'], ...(over.lifetimeMs ? { lifetimeMs: over.lifetimeMs } : {}) }), runner: r1, table: table(await rawKey(va, 'notes', 'n1')) });
    add({ id: 'v2-lifetime', inputs: [input('notes', 'n1')], audit: [], skips: ['malformed'], grant: () => sealed('v2-lifetime', { lifetimeMs: 31 * 24 * HOUR }, (rk) => keyTable([{ scopeKey: 'notes:n1', epoch: 0, rk }])) });
    add({ id: 'v2-truncated', inputs: [input('notes', 'n1')], audit: [], skips: ['malformed'], grant: () => sealed('v2-truncated', {}, (rk) => keyTable([{ scopeKey: 'notes:n1', epoch: 0, rk }]).subarray(0, 40)) });
    add({ id: 'v2-mismatch', inputs: [input('notes', 'n1')], audit: [], skips: ['malformed'], grant: () => sealed('v2-mismatch', { scope: ['notes:n1', 'notes:n2'] }, (rk) => keyTable([{ scopeKey: 'notes:n1', epoch: 0, rk }])) });

    // revocation and stale devices
    add({
      id: 'v2-revoked', inputs: [input('notes', 'n1')], audit: [], skips: ['revoked'],
      grant: () => build(va, 'v2-revoked', [['notes', 'n1']]),
      then: async (id) => {
        const g1 = (await auditGrant(id))!;
        await missionPush(A, id, { grant: null });
        await missionPush(A, id, { title: `Titel ${id}`, grant: g1 }); // a device pushes the revoked grant back
      },
    });
    add({
      id: 'v2-stale', inputs: [input('notes', 'n1'), input('tasks', 't1')], skips: ['revoked'],
      grant: () => build(va, 'v2-stale', [['notes', 'n1']], { now: Date.now() - 2 * 60_000 }),
      then: async (id) => {
        const g1 = (await auditGrant(id))!;
        await missionPush(A, id, { grant: await build(va, id, [['notes', 'n1'], ['tasks', 't1']], { now: Date.now() - 60_000 }) }); // renewed, wider
        await missionPush(A, id, { title: `Titel ${id}`, objective: 'von einem alten Gerät', grant: g1 }); // the stale device's ordinary edit
      },
      // the renewed grant keeps serving: t1 is only in it
      audit: [['n1', 'ok', null], ['t1', 'ok', null]], prompt: { has: ['Steuererklärung abgeben'] },
    });

    // records after the grant
    await put(A, 'notes', 'n-edit', await enc(va, 'notes', 'n-edit', { content: 'Alter Stand der Notiz' }, ['content']));
    add({
      id: 'v2-edited', inputs: [input('notes', 'n-edit')], grant: () => build(va, 'v2-edited', [['notes', 'n-edit']]),
      then: async () => edit(A, 'notes', 'n-edit', await enc(va, 'notes', 'n-edit', { content: 'Neuer Stand nach der Freigabe' }, ['content'])),
      audit: [['n-edit', 'ok', null]], prompt: { has: ['Neuer Stand nach der Freigabe'], not: ['Alter Stand'] },
    });
    await put(A, 'notes', 'n-legacy', await enc(va, 'notes', 'n-legacy', { content: 'Zuerst mit Record-Key' }, ['content']));
    add({
      id: 'v2-legacy', inputs: [input('notes', 'n-legacy')], grant: () => build(va, 'v2-legacy', [['notes', 'n-legacy']]),
      then: async () => edit(A, 'notes', 'n-legacy', { content: await encryptV1(va.legacyKey, 'Dann von einem alten Client mit dem Master-Key') }),
      audit: [['n-legacy', 'failed', 'legacy-master-key-ciphertext']],
    });
    await put(A, 'notes', 'n-rekey', await enc(va, 'notes', 'n-rekey', { content: 'Vor dem Re-Key' }, ['content']));
    add({
      id: 'v2-rekeyed', inputs: [input('notes', 'n-rekey')], grant: () => build(va, 'v2-rekeyed', [['notes', 'n-rekey', 0]]),
      then: async () => edit(A, 'notes', 'n-rekey', await ref.upgradeDiff(va.keys, { userId: A, table: 'notes', recordId: 'n-rekey' }, await enc(va, 'notes', 'n-rekey', { content: 'Vor dem Re-Key' }, ['content']), 1)),
      audit: [['n-rekey', 'failed', 'no-key-for-epoch']],
    });
    await put(A, 'notes', 'n-rekeyed-granted', await enc(va, 'notes', 'n-rekeyed-granted', { content: 'Nach dem Re-Key freigegeben' }, ['content'], 1));
    add({ id: 'v2-epoch-1', inputs: [input('notes', 'n-rekeyed-granted')], grant: () => build(va, 'v2-epoch-1', [['notes', 'n-rekeyed-granted', 1]]), audit: [['n-rekeyed-granted', 'ok', null]], prompt: { has: ['Nach dem Re-Key freigegeben'] } });

    // values
    await put(A, 'notes', 'n-v3', { title: 'Neu', content: 'enc:3:AAECAwQFBgcICQoL.AAAAAAAAAAAAAAAAAAAAAA==' });
    add({ id: 'v2-unknown-version', inputs: [input('notes', 'n-v3')], grant: () => build(va, 'v2-unknown-version', [['notes', 'n-v3']]), audit: [['n-v3', 'failed', 'ciphertext-unsupported-version']] });
    const flip = (await enc(va, 'notes', 'n-flip', { content: 'Ein Bit wird gekippt' }, ['content']))['content'] as string;
    const fb = Buffer.from(flip.split('.')[1]!, 'base64');
    fb[3] = fb[3]! ^ 0x10;
    await put(A, 'notes', 'n-flip', { content: `${flip.split('.')[0]}.${fb.toString('base64')}` });
    add({ id: 'v2-flipped', inputs: [input('notes', 'n-flip')], grant: () => build(va, 'v2-flipped', [['notes', 'n-flip']]), audit: [['n-flip', 'failed', 'ciphertext-tampered-or-wrong-key']] });
    await put(A, 'notes', 'n-bad-iv', { content: 'enc:2:0:AAAA.AAAAAAAAAAAAAAAAAAAAAA==' });
    await put(A, 'notes', 'n-bad-epoch', { content: 'enc:2:2147483648:AAECAwQFBgcICQoL.AAAAAAAAAAAAAAAAAAAAAA==' });
    await put(A, 'notes', 'n-bad-b64', { content: 'enc:2:0:AAECAwQFBgcICQoL.AAAAAAAAAAAAAAAAAAAAAA' });
    add({
      id: 'v2-malformed-values', inputs: [input('notes', 'n-bad-iv'), input('notes', 'n-bad-epoch'), input('notes', 'n-bad-b64')],
      grant: () => build(va, 'v2-malformed-values', [['notes', 'n-bad-iv'], ['notes', 'n-bad-epoch'], ['notes', 'n-bad-b64']]),
      audit: [['n-bad-iv', 'failed', 'ciphertext-malformed'], ['n-bad-epoch', 'failed', 'ciphertext-malformed'], ['n-bad-b64', 'failed', 'ciphertext-malformed']],
    });
    {
      const aes = await webcrypto.subtle.importKey('raw', await rawKey(va, 'notes', 'n-notjson'), 'AES-GCM', false, ['encrypt']);
      const iv = webcrypto.getRandomValues(new Uint8Array(12));
      const ct = new Uint8Array(await webcrypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: ref.canon(['mana-enc', 2, A, 'notes', 'n-notjson', 'content', 0]) }, aes, new TextEncoder().encode('{kein json')));
      await put(A, 'notes', 'n-notjson', { content: `enc:2:0:${ref.toBase64(iv)}.${ref.toBase64(ct)}` });
    }
    add({ id: 'v2-not-json', inputs: [input('notes', 'n-notjson')], grant: () => build(va, 'v2-not-json', [['notes', 'n-notjson']]), audit: [['n-notjson', 'failed', 'plaintext-not-json']] });
    await put(A, 'notes', 'n-gone', await enc(va, 'notes', 'n-gone', { content: 'Gelöschte Notiz' }, ['content']));
    add({
      id: 'v2-deleted', inputs: [input('notes', 'n-gone'), input('notes', 'n1')], grant: () => build(va, 'v2-deleted', [['notes', 'n-gone'], ['notes', 'n1']]),
      then: async () => edit(A, 'notes', 'n-gone', { deletedAt: new Date().toISOString() }),
      audit: [['n1', 'ok', null]], prompt: { not: ['Gelöschte Notiz'] },
    });

    // v1 unchanged beside v2, in the same daemon
    const mdk = await deriveMdk(va.legacyKey, 'v1-beside', ['notes'], ['notes:n-v1']);
    await put(A, 'notes', 'n-v1', { content: await encryptV1(mdk, 'Mit dem v1-Schlüssel der Mission') });
    add({
      id: 'v1-beside', inputs: [{ module: 'notes', table: 'notes', id: 'n-v1' }], audit: [['n-v1', 'ok', null]], prompt: { has: ['Mit dem v1-Schlüssel der Mission'] },
      grant: async () => grantV1({ missionId: 'v1-beside', tables: ['notes'], recordIds: ['notes:n-v1'], wrappedKey: await wrapKey(k1.publicKey, mdk) }),
    });

    // a 256-record grant: one audit row per input record
    const many = Array.from({ length: 256 }, (_, i) => `n-many-${String(i).padStart(3, '0')}`);
    for (const id of many) await put(A, 'notes', id, await enc(va, 'notes', id, { title: `Notiz ${id}`, content: `Inhalt von ${id}` }, ['title', 'content']));
    add({ id: 'v2-256', inputs: many.map((id) => input('notes', id)), grant: () => build(va, 'v2-256', many.map((id) => ['notes', id] as [string, string])), audit: many.map((id) => [id, 'ok', null]) });

    // every mission inserted not yet due, its later writes, then all due at once
    const far = new Date(Date.now() + 24 * HOUR).toISOString();
    for (const c of cases) {
      await pushChange(db.pool, { userId: c.user ?? A, recordId: c.id, op: 'insert', data: webappMission({ id: c.id, title: `Titel ${c.id}`, nextRunAt: far, inputs: c.inputs, grant: await c.grant() }) });
    }
    for (const c of cases) await c.then?.(c.id);
    for (const c of cases) await missionPush(c.user ?? A, c.id, { nextRunAt: new Date().toISOString() });
    for (const c of cases) assert.equal((await runOf(daemon, c.id, 90_000)).outcome, 'planned', c.id);

    for (const c of cases) {
      assert.deepEqual(await auditOf(c.id), c.audit, `${c.id}: audit rows`);
      assert.deepEqual(skipsOf(daemon, c.id), c.skips ?? [], `${c.id}: grant skips`);
      const prompt = promptOf(c.id);
      assert.ok(prompt, `${c.id}: the LLM received the mission`);
      assert.doesNotMatch(prompt, /enc:[0-9]+:/, `${c.id}: no ciphertext reaches the LLM`);
      for (const s of c.prompt?.has ?? []) assert.ok(prompt.includes(s), `${c.id}: the prompt has ${s}`);
      for (const s of c.prompt?.not ?? []) assert.ok(!prompt.includes(s), `${c.id}: the prompt lacks ${s}`);
    }
    assert.ok(promptOf('v2-256')!.includes('jede Angabe auf höchstens 468 Zeichen gekürzt'), 'the cut is stated');
    for (const reason of ['wrong-binding', 'revoked', 'not-configured']) {
      assert.ok(Number.isFinite(await metric(daemon, 'mana_ai_grant_skips_total', `reason="${reason}"`)), `${reason} is exported`);
    }
    assert.equal(await metric(daemon, 'mana_ai_grant_skips_total', 'reason="wrong-binding"'), 2);
    assert.equal(await metric(daemon, 'mana_ai_grant_skips_total', 'reason="revoked"'), 2);
    assert.equal(await metric(daemon, 'mana_ai_grant_scope_violations_total', 'table="notes"'), 1);
  });

  it('keeps the grant state append-only and under row-level security, and a rebuild from history derives the same state', async () => {
    const state = async (missionId: string) => (await db.pool.query<{ grant_id: string; cause: string | null }>(
      `SELECT g.grant_id, r.cause FROM mana_ai.mission_grants g LEFT JOIN mana_ai.grant_revocations r USING (user_id, mission_id, grant_id)
        WHERE g.user_id = $1 AND g.mission_id = $2 ORDER BY g.issued_at`, [A, missionId])).rows;
    const live = await state('v2-stale');
    assert.equal(live.length, 2, 'the first grant and the renewed one');
    assert.deepEqual(live.map((r) => r.cause), ['superseded', null], 'the first is superseded; the renewed one is live');
    assert.deepEqual((await state('v2-revoked')).map((r) => r.cause), ['ended'], 'null ended it; pushing it back revived nothing');

    // the same history in a second database, written with the trigger off, then rebuilt
    const map = await mapColumn();
    const history = (await db.pool.query(
      `SELECT app_id, table_name, record_id, user_id, op, data, ${map} AS fm, client_id, created_at FROM sync_changes
        WHERE user_id = $1 AND record_id = 'v2-stale' ORDER BY created_at, id`, [A])).rows;
    const other = await createTestDatabase();
    try {
      const client = await other.pool.connect();
      try {
        await client.query('SET session_replication_role = replica');
        for (const r of history) {
          await client.query(`INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, ${map}, client_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
            [r.app_id, r.table_name, r.record_id, r.user_id, r.op, r.data, r.fm, r.client_id, r.created_at]);
        }
        await client.query('RESET session_replication_role');
        const rebuilt = async () => (await client.query(
          `SELECT g.grant_id, r.cause FROM mana_ai.mission_grants g LEFT JOIN mana_ai.grant_revocations r USING (user_id, mission_id, grant_id)
            WHERE g.user_id = $1 AND g.mission_id = 'v2-stale' ORDER BY g.issued_at`, [A])).rows;
        assert.deepEqual(await rebuilt(), [], 'nothing seen while the trigger was off');
        await client.query(`SELECT mana_ai.rebuild_record('mission', $1, 'v2-stale')`, [A]);
        assert.deepEqual(await rebuilt(), live, 'the rebuild derives the live state');
        await client.query(`SELECT mana_ai.rebuild_record('mission', $1, 'v2-stale')`, [A]);
        assert.deepEqual(await rebuilt(), live, 'and a second rebuild changes nothing');
      } finally {
        client.release();
      }
    } finally {
      await other.drop();
    }

    const runtime = new pg.Client({ connectionString: db.daemonUrl });
    await runtime.connect();
    try {
      await assert.rejects(runtime.query(`UPDATE mana_ai.grant_revocations SET cause = 'stale'`), /permission denied/);
      await assert.rejects(runtime.query(`INSERT INTO mana_ai.mission_grants (user_id, mission_id, grant_id, issued_at, grant_body) VALUES ($1, 'x', 'y', now(), '{}')`, [A]), /permission denied/);
      await runtime.query(`SELECT set_config('app.current_user_id', $1, false)`, [B]);
      assert.equal((await runtime.query(`SELECT count(*)::int AS n FROM mana_ai.mission_grants`)).rows[0].n, 0, 'B sees none of A\'s grants');
      await runtime.query(`SELECT set_config('app.current_user_id', $1, false)`, [A]);
      assert.ok((await runtime.query(`SELECT count(*)::int AS n FROM mana_ai.mission_grants`)).rows[0].n > 0, 'A sees A\'s');
    } finally {
      await runtime.end();
    }
    await assert.rejects(db.pool.query(`DELETE FROM mana_ai.grant_revocations`), /append-only/);
    await assert.rejects(db.pool.query(`UPDATE mana_ai.mission_grants SET issued_at = now()`), /append-only/);
  });

  it('counts not-configured when the runner has no key, and plans the mission without its encrypted inputs', async () => {
    await daemon.stop();
    daemon = await startTestDaemon(db.daemonUrl, llm.url, {});
    await pushChange(db.pool, { userId: A, recordId: 'v2-no-key', op: 'insert', data: webappMission({ id: 'v2-no-key', title: 'Titel v2-no-key', inputs: [input('notes', 'n1')], grant: await build(va, 'v2-no-key', [['notes', 'n1']]) }) });
    assert.equal((await runOf(daemon, 'v2-no-key', 60_000)).outcome, 'planned');
    assert.deepEqual(skipsOf(daemon, 'v2-no-key'), ['not-configured']);
    assert.deepEqual(await auditOf('v2-no-key'), []);
    assert.ok(!promptOf('v2-no-key')!.includes('Milch'));
  });
});

/** The grant a mission was inserted with, as stored. */
async function auditGrant(missionId: string): Promise<unknown> {
  const { rows } = await db.pool.query<{ g: unknown }>(`SELECT data -> 'grant' AS g FROM sync_changes WHERE record_id = $1 AND op = 'insert'`, [missionId]);
  return rows[0]?.g;
}

async function mapColumn(): Promise<string> {
  const { rows } = await db.pool.query<{ attname: string }>(`SELECT attname FROM pg_attribute WHERE attrelid = 'sync_changes'::regclass AND attname IN ('field_meta', 'field_timestamps') AND NOT attisdropped`);
  return rows[0]!.attname;
}
