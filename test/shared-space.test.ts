// Shared-space inputs (issue 21, item 4; CONTRACT.md section 12): user A's
// mission links a note of a shared space that user B wrote. With today's
// sync_changes and a stand-in mana-auth, the runner reads it with A's
// memberships: planned with the note while A is a member, without it once A
// has left and the cached answer has run out, an audit row (ok,
// shared-space-plaintext) for each read; mana-auth down: planned without
// it, counted, not failed.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { pushChange, webappMission } from './harness/changes.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { runOf, SERVICE_KEY, startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import pg from 'pg';

const CACHE_MS = 1_500;
let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;
let auth: Server;
const members = new Map<string, string[]>([['u-a', ['space-1']], ['u-b', ['space-1']]]);
const authState = { requests: 0, down: false, wrongKey: 0 };

before(async () => {
  db = await createTestDatabase({ syncSchema: 'head' });
  llm = await startLlmServer();
  auth = createServer((req, res) => {
    const m = /^\/api\/v1\/internal\/users\/([^/]+)\/memberships$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(404).end();
    authState.requests++;
    if (req.headers['x-service-key'] !== SERVICE_KEY) {
      authState.wrongKey++;
      return void res.writeHead(401).end();
    }
    if (authState.down) return void res.writeHead(503).end();
    const userId = decodeURIComponent(m[1]!);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ userId, memberships: (members.get(userId) ?? []).map((id) => ({ organizationId: id, role: 'member' })) }));
  });
  await new Promise<void>((r) => auth.listen(0, '127.0.0.1', r));
  const port = (auth.address() as { port: number }).port;
  daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AUTH_URL: `http://127.0.0.1:${port}`, MANA_AI_MEMBERSHIPS_CACHE_MS: String(CACHE_MS), MANA_AI_MIN_RUN_GAP_MS: '0' });
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await new Promise((r) => auth?.close(r));
  await db?.drop();
});

/** B's note in the shared space, written as B's device writes it (plaintext). */
async function writeSharedNote(): Promise<void> {
  const c = new pg.Client({ connectionString: db.writerUrl });
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query(`SELECT set_config('app.current_user_id', 'u-b', true)`);
    await c.query(
      `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_meta, client_id, origin, space_id)
       VALUES ('notes', 'notes', 'n-shared', 'u-b', 'insert', $1::jsonb, '{}', 'device-b', 'user', 'space-1')`,
      [JSON.stringify({ title: 'Einkauf', content: 'Milch und Brot kaufen', updatedAt: '2026-01-01T00:00:00.000Z' })],
    );
    await c.query('COMMIT');
  } finally {
    await c.end();
  }
}

const audits = async () =>
  (await db.pool.query(`SELECT status, reason, table_name, record_id FROM mana_ai.decrypt_audit WHERE user_id = 'u-a' AND mission_id = 'm-shared' ORDER BY id`)).rows;
const sawNote = (i: number) => JSON.stringify(llm.requests[i]?.body ?? '').includes('Milch und Brot kaufen');

/** Makes the mission due in `inMs` and waits for that run. */
async function runAgain(inMs: number): Promise<void> {
  const atMs = Date.now() + inMs;
  const at = new Date(atMs).toISOString();
  const wait = Promise.race([
    daemon.waitForRun((e) => e.missionId === 'm-shared' && e.dueMs === atMs),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no run of m-shared due ${at} within 30 s`)), 30_000).unref()),
  ]);
  await pushChange(db.pool, { userId: 'u-a', recordId: 'm-shared', op: 'update', data: { nextRunAt: at }, fieldTimestamps: { nextRunAt: new Date().toISOString() } });
  const ev = await wait;
  assert.equal(ev.outcome, 'planned');
}

describe('shared-space inputs', () => {
  it('a member reads the note of the space (audited), not after leaving it, and plans without it when mana-auth is down', async () => {
    await writeSharedNote();
    llm.setScript(() => ({ content: planAnswer('Plan', []) }));
    const first = runOf(daemon, 'm-shared');
    await pushChange(db.pool, {
      userId: 'u-a', recordId: 'm-shared', op: 'insert',
      data: webappMission({ id: 'm-shared', title: 'Wocheneinkauf', inputs: [{ module: 'notes', table: 'notes', id: 'n-shared' }], nextRunAt: new Date(Date.now() + 50).toISOString() }),
    });
    assert.equal((await first).outcome, 'planned');
    assert.equal(sawNote(0), true, 'planned with the shared note while A is a member');
    assert.deepEqual(await audits(), [{ status: 'ok', reason: 'shared-space-plaintext', table_name: 'notes', record_id: 'n-shared' }]);
    assert.equal(authState.wrongKey, 0, 'mana-auth was asked with the service key');
    const asked = authState.requests;

    // A leaves the space; the next run comes after the cached answer ran out.
    members.set('u-a', []);
    await runAgain(CACHE_MS + 300);
    assert.equal(sawNote(1), false, 'not after A left the space');
    assert.equal(authState.requests, asked + 1, 'mana-auth asked again once the cache ran out');
    assert.equal((await audits()).length, 1, 'no read, no audit row');

    // Back in the space, but mana-auth is down: the run goes on without the note.
    members.set('u-a', ['space-1']);
    authState.down = true;
    await runAgain(CACHE_MS + 300);
    assert.equal(sawNote(2), false, 'mana-auth unreachable: planned without shared-space inputs');
    const lookups = await daemon.metrics.registry.getSingleMetricAsString('mana_ai_membership_lookups_total');
    // ok: A twice, B (the note's writer, verified as a member of space-1) once; the
    // write-back asks nothing (the mission has no stored space)
    assert.match(lookups, /outcome="unavailable"[^}]*\} 1/);
    assert.match(lookups, /outcome="ok"[^}]*\} 3/);

    // mana-auth back: read again, audited again.
    authState.down = false;
    await runAgain(50);
    assert.equal(sawNote(3), true);
    assert.equal((await audits()).length, 2, 'an audit row for each read');
  });
});
