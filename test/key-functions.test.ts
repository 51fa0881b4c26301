// The four key functions compute the stored generated columns
// (mission_key, partition, agent_ref, user_ref). Migration 026 moved them
// from LANGUAGE sql to PL/pgSQL for speed (issue 30); a key that changed
// value would leave every stored column stale. These tests hold them to
// the baseline's expressions, on awkward ids, on rows the trigger wrote,
// and across the migration itself (rows stored by the SQL versions).

import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { migrate, SQL_DIR } from '../src/db/migrate.js';
import { createTestDatabase, RUNTIME_ROLE, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';

// The baseline's bodies (sql/migrations/020_baseline.sql), inline: what every stored value was computed with.
const BASELINE = {
  missionKey: (u: string, m: string) => `sha256(convert_to(${u}, 'UTF8') || '\\x00'::bytea || convert_to(${m}, 'UTF8'))`,
  partition: (u: string, n = 64) => `(('x' || substr(md5(${u}), 1, 8))::bit(32)::bigint % ${n})::int`,
  agentRef: (u: string, a: string) => `(('x' || encode(substr(sha256(convert_to(${u}, 'UTF8') || '\\x00'::bytea || convert_to(${a}, 'UTF8')), 1, 7), 'hex'))::bit(56)::bigint >> 3)`,
  userRef: (u: string) => `(('x' || encode(substr(sha256(convert_to(${u}, 'UTF8')), 1, 7), 'hex'))::bit(56)::bigint >> 3)`,
};

/** Rows of mission_snapshots whose stored keys differ from the baseline's expressions. */
const STALE_ROWS = `
  SELECT count(*)::int AS n FROM mana_ai.mission_snapshots
   WHERE mission_key IS DISTINCT FROM ${BASELINE.missionKey('user_id', 'mission_id')}
      OR partition IS DISTINCT FROM ${BASELINE.partition('user_id')}
      OR agent_ref IS DISTINCT FROM (CASE WHEN agent_id IS NULL THEN NULL ELSE ${BASELINE.agentRef('user_id', 'agent_id')} END)
      OR user_ref IS DISTINCT FROM ${BASELINE.userRef('user_id')}`;

const AWKWARD_IDS = ['u1', '', 'ü-user', 'Zoë 🚀 東京', 'back\\slash', "quo'te", 'x'.repeat(5000), ' lead and trail ', 'tab\tnewline\n'];

let db: TestDb;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db?.drop();
});

describe('key functions (migration 026)', () => {
  it('are PL/pgSQL with the baseline\'s signature and attributes: IMMUTABLE, STRICT, PARALLEL SAFE, no SET', async () => {
    const { rows } = await db.pool.query<{ proname: string; lanname: string; provolatile: string; proisstrict: boolean; proparallel: string; proconfig: string[] | null; args: string }>(`
      SELECT p.proname, l.lanname, p.provolatile, p.proisstrict, p.proparallel, p.proconfig, pg_get_function_arguments(p.oid) AS args
        FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
       WHERE p.pronamespace = 'mana_ai'::regnamespace AND p.proname IN ('mission_key', 'user_partition', 'agent_ref', 'user_ref')
       ORDER BY p.proname`);
    assert.deepEqual(rows.map((r) => [r.proname, r.lanname, r.provolatile, r.proisstrict, r.proparallel, r.proconfig, r.args]), [
      ['agent_ref', 'plpgsql', 'i', true, 's', null, 'p_user_id text, p_agent_id text'],
      ['mission_key', 'plpgsql', 'i', true, 's', null, 'p_user_id text, p_mission_id text'],
      ['user_partition', 'plpgsql', 'i', true, 's', null, 'p_user_id text, p_partitions integer DEFAULT 64'],
      ['user_ref', 'plpgsql', 'i', true, 's', null, 'p_user_id text'],
    ]);
  });

  it('give the baseline\'s values for awkward ids, and NULL for NULL', async () => {
    const { rows } = await db.pool.query<{ u: string; m: string; ok: boolean }>(`
      SELECT u, m,
             mana_ai.mission_key(u, m) = ${BASELINE.missionKey('u', 'm')}
         AND mana_ai.user_partition(u) = ${BASELINE.partition('u')}
         AND mana_ai.user_partition(u, 7) = ${BASELINE.partition('u', 7)}
         AND mana_ai.agent_ref(u, m) = ${BASELINE.agentRef('u', 'm')}
         AND mana_ai.user_ref(u) = ${BASELINE.userRef('u')} AS ok
        FROM unnest($1::text[]) u, unnest($1::text[]) m`, [AWKWARD_IDS]);
    assert.equal(rows.length, AWKWARD_IDS.length ** 2);
    assert.deepEqual(rows.filter((r) => !r.ok).map((r) => [r.u.slice(0, 20), r.m.slice(0, 20)]), []);
    const nulls = await db.pool.query(`SELECT mana_ai.mission_key(NULL, 'm') AS a, mana_ai.user_partition(NULL) AS b, mana_ai.agent_ref('u', NULL) AS c, mana_ai.user_ref(NULL) AS d`);
    assert.deepEqual(nulls.rows[0], { a: null, b: null, c: null, d: null });
  });

  it('store the baseline\'s values in the rows the trigger writes, with and without an agent', async () => {
    for (const [i, user] of ['Zoë 🚀', 'plain-user', 'x'.repeat(300)].entries()) {
      await pushChange(db.pool, { userId: user, recordId: `m-${i}`, op: 'insert', data: webappMission({ id: `m-${i}`, agentId: i === 1 ? 'agent-ü' : undefined }) });
    }
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n, count(agent_ref)::int AS with_agent FROM mana_ai.mission_snapshots`);
    assert.deepEqual(rows[0], { n: 3, with_agent: 1 });
    assert.equal((await db.pool.query(STALE_ROWS)).rows[0].n, 0);
  });

  it('leave the values the SQL versions stored unchanged when 026 is applied over them', async () => {
    const old = await createTestDatabase({ migrate: false });
    const dir = mkdtempSync(join(tmpdir(), 'mana-ai-sql-'));
    try {
      cpSync(SQL_DIR, dir, { recursive: true });
      rmSync(join(dir, 'migrations', '026_key_functions_plpgsql.sql'));
      await migrate(old.url, { dir, runtimeRole: RUNTIME_ROLE });
      const lang = async () => (await old.pool.query(`SELECT lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = 'mana_ai.mission_key(text, text)'::regprocedure`)).rows[0].lanname;
      assert.equal(await lang(), 'sql');
      for (const [i, user] of AWKWARD_IDS.entries()) {
        await pushChange(old.pool, { userId: user || 'nonempty', recordId: `old-${i}`, op: 'insert', data: webappMission({ id: `old-${i}`, agentId: i % 2 ? `agent-${i}` : undefined }) });
      }
      const before = (await old.pool.query(`SELECT sid, mission_key, partition, agent_ref, user_ref FROM mana_ai.mission_snapshots ORDER BY sid`)).rows;
      assert.equal(before.length, AWKWARD_IDS.length);
      const result = await migrate(old.url, { runtimeRole: RUNTIME_ROLE });
      assert.deepEqual(result.applied, ['026_key_functions_plpgsql.sql']);
      assert.equal(await lang(), 'plpgsql');
      // the new functions recompute exactly what the old ones stored
      const { rows: recomputed } = await old.pool.query(`
        SELECT sid, mana_ai.mission_key(user_id, mission_id) AS mission_key, mana_ai.user_partition(user_id) AS partition,
               mana_ai.agent_ref(user_id, agent_id) AS agent_ref, mana_ai.user_ref(user_id) AS user_ref
          FROM mana_ai.mission_snapshots ORDER BY sid`);
      assert.deepEqual(recomputed, before);
      // and a row they rewrite keeps them too
      await old.pool.query(`UPDATE mana_ai.mission_snapshots SET agent_id = agent_id, user_id = user_id`);
      assert.deepEqual((await old.pool.query(`SELECT sid, mission_key, partition, agent_ref, user_ref FROM mana_ai.mission_snapshots ORDER BY sid`)).rows, before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await old.drop();
    }
  });
});
