// Moving a deployment from the seed's sync_changes to today's (issue 21,
// item 1): the operator renames field_timestamps to field_meta and adds
// origin and space_id while a daemon runs and a device keeps writing
// missions and other apps' rows. No device statement fails, every snapshot
// equals the TypeScript fold of its rows afterwards, no fold error is
// recorded, and the running daemon's next write-back goes into the new
// columns; /health says which schema it found, before and after.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { migrate } from '../src/db/migrate.js';
import { foldRows, type ChangeRow } from '../src/merge/merge.js';
import { webappMission } from './harness/changes.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { runOf, startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { planAnswer, promptMentions, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;
before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
  daemon = await startTestDaemon(db.daemonUrl, llm.url);
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

const health = async () => (await fetch(`http://127.0.0.1:${daemon.port}/health`).then((r) => r.json())) as { syncChanges: { schema: string; fieldMap: string; origin: boolean; spaceId: boolean } };

/**
 * One device push as an upgraded mana-sync makes it during the move: the
 * table is locked for its inserts (ROW EXCLUSIVE, what the insert takes
 * anyway) before it looks up the map's name, so a rename cannot fall
 * between the two; the rename waits for the push instead.
 */
async function push(device: pg.Pool, row: { user: string; app: string; table: string; id: string; op: string; data: unknown; map: Record<string, string> }): Promise<void> {
  const c = await device.connect();
  try {
    await c.query('BEGIN');
    await c.query(`SELECT set_config('app.current_user_id', $1, true)`, [row.user]);
    await c.query('LOCK TABLE sync_changes IN ROW EXCLUSIVE MODE');
    const { rows } = await c.query<{ attname: string }>(
      `SELECT attname FROM pg_attribute WHERE attrelid = 'sync_changes'::regclass AND attname IN ('field_timestamps', 'field_meta') AND NOT attisdropped`,
    );
    await c.query(
      `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, ${rows[0]!.attname}, client_id) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, 'device')`,
      [row.app, row.table, row.id, row.user, row.op, JSON.stringify(row.data), JSON.stringify(row.map)],
    );
    await c.query('COMMIT');
  } catch (error) {
    await c.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    c.release();
  }
}

describe('the move from the seed schema to today\'s, under a running daemon', () => {
  it('no device statement fails, every snapshot is the fold of its rows, and the write-back follows the new columns', async () => {
    assert.deepEqual((await health()).syncChanges, { schema: 'seed', table: 'public.sync_changes', fieldMap: 'field_timestamps', origin: false, spaceId: false });
    const device = new pg.Pool({ connectionString: db.writerUrl, max: 3 });
    const failures: unknown[] = [];
    let writes = 0;
    let stop = false;
    let renamed = false;
    let afterRename = 0;
    const missions = Array.from({ length: 12 }, (_, i) => `mv-${i}`);
    const writer = async (lane: number) => {
      for (let i = 0; !stop; i++) {
        const id = missions[(i * 3 + lane) % missions.length]!;
        const t = new Date(Date.UTC(2026, 0, 1) + writes * 1000 + lane).toISOString();
        try {
          if (i < 4) {
            await push(device, { user: 'u-move', app: 'ai', table: 'aiMissions', id, op: 'insert', data: webappMission({ id, title: `t ${i}`, nextRunAt: '2030-01-01T09:00:00.000Z', updatedAt: t, createdAt: t }), map: {} });
          } else {
            await push(device, { user: 'u-move', app: 'ai', table: 'aiMissions', id, op: 'update', data: { title: `t ${lane}.${i}`, objective: `o ${i}` }, map: { title: t, objective: t } });
          }
          await push(device, { user: 'u-move', app: 'notes', table: 'notes', id: `n-${lane}-${i}`, op: 'insert', data: { title: 'n' }, map: {} });
          writes++;
          if (renamed) afterRename++;
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const lanes = [writer(0), writer(1)];
    await eventually(() => writes >= 20, 'the device writes before the move');
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await admin.query('BEGIN');
      await admin.query('ALTER TABLE sync_changes RENAME COLUMN field_timestamps TO field_meta');
      await admin.query('ALTER TABLE sync_changes ADD COLUMN origin text, ADD COLUMN space_id text');
      await admin.query('COMMIT');
    } finally {
      await admin.end();
    }
    renamed = true;
    await eventually(() => afterRename >= 20, 'the device writes after the move');
    stop = true;
    await Promise.all(lanes);
    await device.end();
    assert.deepEqual(failures, [], 'no device statement failed');

    // Every snapshot is the fold of its rows (read back in log order, the map from its new name).
    const { rows } = await db.pool.query<{ record_id: string; op: string; data: unknown; field_meta: unknown; created_at: Date }>(
      `SELECT record_id, op, data, field_meta, created_at FROM sync_changes WHERE app_id = 'ai' AND table_name = 'aiMissions' ORDER BY created_at, id`,
    );
    for (const id of missions) {
      const mine: ChangeRow[] = rows.filter((r) => r.record_id === id).map((r) => ({ op: r.op, recordId: id, data: r.data, fieldTimestamps: r.field_meta, createdAt: r.created_at.toISOString() }));
      if (mine.length === 0) continue;
      const expected = foldRows(mine);
      const snap = (await db.pool.query(`SELECT record, field_ts FROM mana_ai.mission_snapshots WHERE user_id = 'u-move' AND mission_id = $1`, [id])).rows[0];
      assert.deepEqual(snap?.record, expected?.record, `snapshot of ${id}`);
      assert.deepEqual(snap?.field_ts, expected?.fieldTs, `field timestamps of ${id}`);
    }
    const errors = (await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.snapshot_errors`)).rows[0].n;
    assert.equal(errors, 0, 'no fold error');

    // The running daemon sees the new schema and writes its iteration into it.
    assert.deepEqual((await health()).syncChanges, { schema: 'head', table: 'public.sync_changes', fieldMap: 'field_meta', origin: true, spaceId: true });
    const title = 'Nach dem Umzug';
    llm.setScript((req) => ({ content: promptMentions(req, title) ? planAnswer('Plan', []) : planAnswer('ok', []) }));
    const one = new pg.Pool({ connectionString: db.writerUrl, max: 1 });
    try {
      await push(one, {
        user: 'u-move', app: 'ai', table: 'aiMissions', id: 'mv-run', op: 'insert',
        data: webappMission({ id: 'mv-run', title, spaceId: 'space-1', nextRunAt: new Date(Date.now() + 50).toISOString() }), map: {},
      });
    } finally {
      await one.end();
    }
    const ev = await runOf(daemon, 'mv-run');
    assert.equal(ev.outcome, 'planned');
    const wb = (await db.pool.query(`SELECT field_meta, origin, space_id, data FROM sync_changes WHERE record_id = 'mv-run' AND client_id = 'mana-ai-runner'`)).rows[0];
    assert.equal(wb.origin, 'agent');
    // the data's spaceId is a free field and no mana-auth confirms a membership here: no space (issue 27, item 3)
    assert.equal(wb.space_id, null);
    assert.deepEqual(Object.keys(wb.field_meta).sort(), Object.keys(wb.data).sort());
    const snap = (await db.pool.query(`SELECT jsonb_array_length(record -> 'iterations') AS n FROM mana_ai.mission_snapshots WHERE mission_id = 'mv-run'`)).rows[0];
    assert.equal(snap.n, 1, 'the trigger folded the write-back under the new name');

    // Until now the trigger found its column name gone and read the map as
    // JSON; the next migrate re-applies it with the new name, and rows fold
    // as before.
    const redone = await migrate(db.url);
    assert.ok(redone.defined.includes('functions/snapshot-trigger.sql'), `migrate re-applied the trigger: ${redone.defined.join(', ')}`);
    const src = (await db.pool.query(`SELECT prosrc FROM pg_proc WHERE oid = 'mana_ai.on_sync_change'::regproc`)).rows[0].prosrc as string;
    assert.ok(src.includes('NEW.field_meta') && !src.includes('NEW.field_timestamps'));
    const last = new pg.Pool({ connectionString: db.writerUrl, max: 1 });
    try {
      await push(last, { user: 'u-move', app: 'ai', table: 'aiMissions', id: 'mv-0', op: 'update', data: { title: 'nach migrate' }, map: { title: '2027-01-01T00:00:00.000Z' } });
    } finally {
      await last.end();
    }
    const moved = (await db.pool.query(`SELECT record, field_ts FROM mana_ai.mission_snapshots WHERE user_id = 'u-move' AND mission_id = 'mv-0'`)).rows[0];
    assert.equal(moved.record.title, 'nach migrate');
    assert.equal(moved.field_ts.title, '2027-01-01T00:00:00.000Z');
    assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.snapshot_errors`)).rows[0].n, 0);
  });
});
