import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createTestDatabase, FIELD_MAP, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { parseIsoStrict } from '../src/merge/iso.js';

let db: TestDb;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db?.drop();
});

async function snapshot(userId: string, missionId: string) {
  const { rows } = await db.pool.query(
    `SELECT * FROM mana_ai.mission_snapshots WHERE user_id = $1 AND mission_id = $2`,
    [userId, missionId],
  );
  return rows[0];
}

describe('snapshot trigger', () => {
  it('mana_ai.parse_iso accepts exactly what parseIsoStrict accepts, at the same instant', async () => {
    const bases = ['2030-01-01T09:00:00Z', '2030-01-01T09:00:00.5Z', '2030-01-01T09:00:00.25Z', '2030-01-01T09:00:00.123Z',
      '2024-02-29T23:59:59+01:00', '2023-02-29T00:00:00Z', '2030-12-31T00:00:00.999-23:59', '0001-01-01T00:00:00Z', '2030-04-31T00:00:00Z'];
    const subs = ['0', '9', '#', '-', '+', ':', '.', 'Z', 'T', ' ', '\u0663', 'x'];
    const inputs = new Set<string>(bases);
    for (const b of bases) {
      for (let i = 0; i <= b.length; i++) {
        inputs.add(b.slice(0, i));
        inputs.add(b.slice(0, i) + b.slice(i + 1));
        for (const c of subs) inputs.add(b.slice(0, i) + c + b.slice(i + 1));
      }
    }
    const list = [...inputs];
    const { rows } = await db.pool.query<{ t: string; ms: string | null }>(
      `SELECT t, (extract(epoch FROM mana_ai.parse_iso(t)) * 1000)::bigint AS ms FROM unnest($1::text[]) AS t`, [list]);
    let accepted = 0;
    for (const r of rows) {
      const js = parseIsoStrict(r.t);
      assert.equal(r.ms === null ? null : Number(r.ms), js, `parse_iso(${JSON.stringify(r.t)})`);
      if (js !== null) accepted++;
    }
    assert.ok(accepted > 50 && accepted < list.length - 500, `${accepted} of ${list.length} accepted: both kinds are covered`);
  });

  it('builds a snapshot from an insert, with id and without bookkeeping keys', async () => {
    const data = webappMission({ id: 'm-a', __fieldTimestamps: { x: 1 }, __lastActor: 'x', nextRunAt: '2026-04-15T09:30:00.000Z' });
    await pushChange(db.pool, { userId: 'u1', recordId: 'm-a', op: 'insert', data });
    const s = await snapshot('u1', 'm-a');
    assert.equal(s.record.id, 'm-a');
    assert.equal(s.record.title, 'Wochenplanung');
    assert.equal('__fieldTimestamps' in s.record, false);
    assert.equal('__lastActor' in s.record, false);
    assert.equal(s.state, 'active');
    assert.equal(s.deleted, false);
    assert.equal(s.next_run_at.toISOString(), '2026-04-15T09:30:00.000Z');
    assert.equal(s.version, 1);
    assert.equal(s.field_ts.title, data['updatedAt']);
  });

  it('applies updates field by field with last-write-wins and ties to the later row', async () => {
    await pushChange(db.pool, {
      userId: 'u1', recordId: 'm-b', op: 'insert',
      data: webappMission({ id: 'm-b', updatedAt: '2026-01-01T00:00:00.000Z', title: 'A' }),
    });
    await pushChange(db.pool, {
      userId: 'u1', recordId: 'm-b', op: 'update',
      data: { title: 'B', state: 'paused' },
      fieldTimestamps: { title: '2026-01-02T00:00:00.000Z', state: '2025-12-31T00:00:00.000Z' },
    });
    let s = await snapshot('u1', 'm-b');
    assert.equal(s.record.title, 'B', 'newer title wins');
    assert.equal(s.record.state, 'active', 'older state loses');
    await pushChange(db.pool, {
      userId: 'u1', recordId: 'm-b', op: 'update',
      data: { title: 'C' }, fieldTimestamps: { title: '2026-01-02T00:00:00.000Z' },
    });
    s = await snapshot('u1', 'm-b');
    assert.equal(s.record.title, 'C', 'a tie goes to the later row');
    assert.equal(s.version, 3);
  });

  it('folds an update of a known mission in the contract\'s shape in one statement; every other update takes the general fold', async () => {
    // Which path a row took, counted inside its own transaction: the general
    // fold calls mana_ai.fold_change, the one-statement path does not.
    const foldCalls = async (change: Parameters<typeof pushChange>[1]): Promise<number> => {
      const c = await db.pool.connect();
      try {
        await c.query('BEGIN');
        await c.query(`SET LOCAL track_functions = 'all'`);
        await c.query(`SELECT set_config('app.current_user_id', $1, true)`, [change.userId]);
        // the session's counts not yet flushed are included: count the difference
        const calls = `SELECT coalesce(pg_stat_get_xact_function_calls('mana_ai.fold_change'::regproc), 0)::int AS n`;
        const before = (await c.query(calls)).rows[0].n;
        await c.query(
          `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, ${FIELD_MAP}, client_id)
           VALUES ('ai', 'aiMissions', $1, $2, $3, $4::jsonb, $5::jsonb, 'test-device')`,
          [change.recordId, change.userId, change.op, JSON.stringify(change.data), JSON.stringify(change.fieldTimestamps ?? {})]);
        const after = (await c.query(calls)).rows[0].n;
        await c.query('COMMIT');
        return after - before;
      } finally {
        c.release();
      }
    };
    await pushChange(db.pool, {
      userId: 'u1', recordId: 'm-f', op: 'insert',
      data: webappMission({ id: 'm-f', updatedAt: '2026-01-01T00:00:00.000Z', title: 'A', objective: 'o' }),
    });
    const before = await snapshot('u1', 'm-f');
    // newer than everything stored, same keys, no schedule field: one statement
    assert.equal(await foldCalls({ userId: 'u1', recordId: 'm-f', op: 'update',
      data: { title: 'B', objective: 'p' }, fieldTimestamps: { title: '2026-02-01T00:00:00.000Z', objective: '2026-02-01T00:00:00.000Z' } }), 0);
    let s = await snapshot('u1', 'm-f');
    assert.equal(s.record.title, 'B');
    assert.equal(s.record.objective, 'p');
    assert.equal(s.field_ts.title, '2026-02-01T00:00:00.000Z');
    assert.equal(s.version, before.version + 1);
    assert.deepEqual([s.state, s.deleted, s.next_run_at?.getTime()], [before.state, before.deleted, before.next_run_at?.getTime()]);
    // an older field: the general fold, which lets it lose
    assert.equal(await foldCalls({ userId: 'u1', recordId: 'm-f', op: 'update',
      data: { title: 'old' }, fieldTimestamps: { title: '2026-01-15T00:00:00.000Z' } }), 1);
    s = await snapshot('u1', 'm-f');
    assert.equal(s.record.title, 'B');
    assert.equal(s.version, before.version + 2);
    // a field without a timestamp: the general fold, which ignores that field
    assert.equal(await foldCalls({ userId: 'u1', recordId: 'm-f', op: 'update',
      data: { title: 'C', objective: 'untimed' }, fieldTimestamps: { title: '2026-03-01T00:00:00.000Z' } }), 1);
    s = await snapshot('u1', 'm-f');
    assert.deepEqual([s.record.title, s.record.objective], ['C', 'p']);
    // a schedule field: the general fold, which derives the schedule again
    assert.equal(await foldCalls({ userId: 'u1', recordId: 'm-f', op: 'update',
      data: { state: 'paused' }, fieldTimestamps: { state: '2026-03-02T00:00:00.000Z' } }), 1);
    assert.equal((await snapshot('u1', 'm-f')).state, 'paused');
    // an unknown mission: the general fold, which creates it
    assert.equal(await foldCalls({ userId: 'u1', recordId: 'm-f-new', op: 'update',
      data: { title: 'N' }, fieldTimestamps: { title: '2026-03-03T00:00:00.000Z' } }), 1);
    assert.equal((await snapshot('u1', 'm-f-new')).record.title, 'N');
  });

  it('ignores update fields without a timestamp', async () => {
    await pushChange(db.pool, {
      userId: 'u1', recordId: 'm-c', op: 'insert',
      data: webappMission({ id: 'm-c', updatedAt: '2026-01-01T00:00:00.000Z' }),
    });
    await pushChange(db.pool, {
      userId: 'u1', recordId: 'm-c', op: 'update',
      data: { title: 'no ts', state: 'paused' }, fieldTimestamps: { state: '2026-02-01T00:00:00.000Z' },
    });
    const s = await snapshot('u1', 'm-c');
    assert.equal(s.record.title, 'Wochenplanung');
    assert.equal(s.record.state, 'paused');
    assert.equal(s.state, 'paused');
  });

  it('soft delete keeps the row with deletedAt; hard delete removes it; a re-insert starts afresh', async () => {
    await pushChange(db.pool, {
      userId: 'u2', recordId: 'm-d', op: 'insert',
      data: webappMission({ id: 'm-d', updatedAt: '2026-01-01T00:00:00.000Z', title: 'old' }),
    });
    await pushChange(db.pool, { userId: 'u2', recordId: 'm-d', op: 'delete', data: { deletedAt: '2026-01-05T00:00:00.000Z' } });
    let s = await snapshot('u2', 'm-d');
    assert.equal(s.deleted, true);
    assert.equal(s.record.deletedAt, '2026-01-05T00:00:00.000Z');
    assert.equal(s.record.updatedAt, '2026-01-05T00:00:00.000Z');
    await pushChange(db.pool, { userId: 'u2', recordId: 'm-d', op: 'delete', data: {} });
    assert.equal(await snapshot('u2', 'm-d'), undefined);
    await pushChange(db.pool, {
      userId: 'u2', recordId: 'm-d', op: 'insert',
      data: { title: 'new', state: 'paused', createdAt: '2026-03-01T00:00:00.000Z' },
    });
    s = await snapshot('u2', 'm-d');
    assert.deepEqual(s.record, { id: 'm-d', title: 'new', state: 'paused', createdAt: '2026-03-01T00:00:00.000Z' });
    assert.equal(s.version, 1);
  });

  it('a soft delete of an unknown record creates nothing', async () => {
    await pushChange(db.pool, { userId: 'u2', recordId: 'ghost', op: 'delete', data: { deletedAt: '2026-01-05T00:00:00.000Z' } });
    assert.equal(await snapshot('u2', 'ghost'), undefined);
  });

  it('keeps missions of different users apart, even with the same id', async () => {
    await pushChange(db.pool, { userId: 'ua', recordId: 'same', op: 'insert', data: { title: 'A' } });
    await pushChange(db.pool, { userId: 'ub', recordId: 'same', op: 'insert', data: { title: 'B' } });
    assert.equal((await snapshot('ua', 'same')).record.title, 'A');
    assert.equal((await snapshot('ub', 'same')).record.title, 'B');
  });

  it('never enters for other apps: their rows leave mana_ai untouched', async () => {
    const before = await db.pool.query('SELECT count(*)::int AS n FROM mana_ai.mission_snapshots');
    await pushChange(db.pool, { userId: 'u3', recordId: 'n1', op: 'insert', data: { title: 'note' }, appId: 'notes', tableName: 'notes' });
    await pushChange(db.pool, { userId: 'u3', recordId: 'n2', op: 'insert', data: 'not even an object', appId: 'ai', tableName: 'other' });
    const afterCount = await db.pool.query('SELECT count(*)::int AS n FROM mana_ai.mission_snapshots');
    assert.equal(afterCount.rows[0].n, before.rows[0].n);
  });

  it('nextRunAt that is not a valid date gives next_run_at null', async () => {
    for (const [i, v] of ['tomorrow', '2026-02-30T00:00:00.000Z', 12345, null, '+275760-09-13T00:00:00.000Z', '2026-13-01T00:00:00Z'].entries()) {
      await pushChange(db.pool, { userId: 'u4', recordId: `bad-${i}`, op: 'insert', data: webappMission({ nextRunAt: v }) });
      const s = await snapshot('u4', `bad-${i}`);
      assert.equal(s.next_run_at, null, `nextRunAt ${JSON.stringify(v)}`);
    }
  });

  it('inspection views answer what is due and what the schedule is', async () => {
    await pushChange(db.pool, {
      userId: 'u5', recordId: 'due-now', op: 'insert',
      data: webappMission({ title: 'fällig', nextRunAt: '2020-01-01T00:00:00.000Z' }),
    });
    await pushChange(db.pool, {
      userId: 'u5', recordId: 'paused', op: 'insert',
      data: webappMission({ title: 'pausiert', state: 'paused', nextRunAt: '2020-01-01T00:00:00.000Z' }),
    });
    const due = await db.pool.query(`SELECT mission_id, title FROM mana_ai.due_missions WHERE user_id = 'u5'`);
    assert.deepEqual(due.rows, [{ mission_id: 'due-now', title: 'fällig' }]);
    const sched = await db.pool.query(
      `SELECT mission_id, title, state, cadence_kind, iteration_count FROM mana_ai.mission_schedule WHERE user_id = 'u5' ORDER BY mission_id`,
    );
    assert.deepEqual(sched.rows, [
      { mission_id: 'due-now', title: 'fällig', state: 'active', cadence_kind: 'interval', iteration_count: 0 },
      { mission_id: 'paused', title: 'pausiert', state: 'paused', cadence_kind: 'interval', iteration_count: 0 },
    ]);
  });

  it('runs as SECURITY DEFINER with a pinned search_path', async () => {
    const { rows } = await db.pool.query(
      `SELECT prosecdef, proconfig FROM pg_proc WHERE oid = 'mana_ai.on_sync_change'::regproc`,
    );
    assert.equal(rows[0].prosecdef, true);
    assert.ok(rows[0].proconfig.some((c: string) => c.startsWith('search_path=')));
  });

  it('mana-sync’s role (not a superuser, RLS forced) inserts and the snapshot follows', async () => {
    const writer = new pg.Pool({ connectionString: db.writerUrl, max: 1 });
    try {
      const role = await writer.query('SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user');
      assert.deepEqual(role.rows[0], { rolsuper: false, rolbypassrls: false });
      await pushChange(writer, { userId: 'w1', recordId: 'wm', op: 'insert', data: webappMission({ title: 'from mana-sync' }) });
      assert.equal((await snapshot('w1', 'wm')).record.title, 'from mana-sync');
      // RLS is really in force for this role: another user's rows are invisible.
      const c = await writer.connect();
      try {
        await c.query('BEGIN');
        await c.query(`SELECT set_config('app.current_user_id', 'someone-else', true)`);
        const seen = await c.query(`SELECT count(*)::int AS n FROM sync_changes WHERE user_id = 'w1'`);
        assert.equal(seen.rows[0].n, 0);
        await assert.rejects(
          c.query(`INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, client_id) VALUES ('ai','aiMissions','x','w1','insert','{}','d')`),
          /row-level security/,
        );
        await c.query('ROLLBACK');
      } finally {
        c.release();
      }
      // and it has no rights on the runner's schema
      await assert.rejects(writer.query('SELECT 1 FROM mana_ai.mission_snapshots LIMIT 1'), /permission denied/);
    } finally {
      await writer.end();
    }
  });
});
