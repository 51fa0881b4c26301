// What the burst benchmarks share (bench-vs-graphile.ts, bench-burst-cpu.ts):
// the one statement that makes N missions due at once, and the prompt our
// planner sends for a bench mission, so that graphile-worker's handler can
// send the same bytes.

import type pg from 'pg';
import type { Pool as HttpPool } from 'undici';
import { readMission } from '../../src/mission/mission.js';
import { catalogFor } from '../../src/planner/catalog/index.js';
import { buildMessages, type PromptMessage } from '../../src/planner/prompt.js';
import { planIteration } from '../../src/write-back/iteration.js';
import { RUNNER_ACTOR, RUNNER_CLIENT_ID } from '../../src/write-back/write-back.js';

/** A bench mission's record: active, hourly, due at `dueIso`. */
export const benchMission = (id: string, dueIso: string, nowIso = new Date().toISOString()) => ({
  id, title: id, objective: 'Bench', conceptMarkdown: '', inputs: [], iterations: [], state: 'active',
  cadence: { kind: 'interval', everyMinutes: 60 }, nextRunAt: dueIso, createdAt: nowIso, updatedAt: nowIso,
});

/**
 * `n` missions due at `dueIso`, ids `${prefix}1` … `${prefix}n`, of 200
 * users, committed in one statement (the trigger folds and announces each).
 */
export async function insertBurst(q: pg.Pool | pg.Client, prefix: string, n: number, dueIso: string): Promise<void> {
  await q.query(insertBurstSql(), [prefix, dueIso, n]);
}

/** The user of burst mission `g` (a generate_series value), in SQL: 200 users. */
export const BURST_USER_SQL = `'burst-user-' || (g % 200)`;

/** insertBurst's statement ($1 prefix, $2 due time, $3 n): active missions. */
export function insertBurstSql(): string {
  return `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
     SELECT 'ai', 'aiMissions', $1::text || g, ${BURST_USER_SQL}, 'insert',
            jsonb_build_object('id', $1::text || g, 'title', $1::text || g, 'objective', 'Bench', 'state', 'active',
                               'cadence', jsonb_build_object('kind', 'interval', 'everyMinutes', 60), 'nextRunAt', $2::text,
                               'inputs', '[]'::jsonb, 'iterations', '[]'::jsonb,
                               'updatedAt', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
            '{}'::jsonb, 'bench'
       FROM generate_series(1, $3::int) g`;
}

/**
 * What a run writes back to bench mission `id`: one planned iteration and
 * the mission's next due time (the `data` and `field_timestamps` of one
 * update row), as ours writes for a recurring mission: moving the schedule
 * is part of the work, and the trigger's fold of it costs more than an
 * appended iteration alone.
 */
export function benchIterationChange(id: string, nextRunAtIso: string): { data: Record<string, unknown>; fieldTimestamps: Record<string, string> } {
  const now = new Date().toISOString();
  const iteration = planIteration(`${id}-it`, now, now, { summary: 'Ein Schritt', steps: [{ summary: 'Aufgabe anlegen', toolName: 'create_task', params: { title: 'Nächster Schritt' }, rationale: 'Damit es vorangeht' }] });
  return { data: { iterations: [iteration], updatedAt: now, nextRunAt: nextRunAtIso }, fieldTimestamps: { iterations: now, updatedAt: now, nextRunAt: now } };
}

/** The floors' missions: active and due a day from now, so the idle daemon schedules them (as it does ours) and never runs them. */
export const floorDueIso = () => new Date(Date.now() + 86_400_000).toISOString();

/** Where a floor's write-back moves a mission: a day further. */
export const floorNextIso = () => new Date(Date.now() + 2 * 86_400_000).toISOString();

/**
 * One planned iteration written back to mission `id` of `user` as
 * mana-sync's table needs it (CONTRACT.md section 5): one row as the
 * runtime role, the transaction scoped to the user, the trigger folding it.
 * The contract floor of bench:vs-graphile; no claim.
 */
export async function benchWriteBack(q: pg.Pool, id: string, user: string): Promise<void> {
  const { data, fieldTimestamps } = benchIterationChange(id, floorNextIso());
  await q.query({
    name: 'bench-write-back',
    text: `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id, actor)
           SELECT 'ai', 'aiMissions', $1, $2, 'update', $3, $4, $5, $6
             FROM (SELECT set_config('app.current_user_id', $2, true)) scope`,
    values: [id, user, data, fieldTimestamps, RUNNER_CLIENT_ID, RUNNER_ACTOR],
  });
}

/**
 * The batching floor's write-back (bench:vs-graphile): the rows of many
 * runs in one statement, each INSERT scoped to its own user under
 * row-level security (the function runs as its caller, the runtime role).
 * Created by the superuser in the bench's database only.
 */
export const BENCH_WRITE_BACK_BATCH_SQL = `
CREATE OR REPLACE FUNCTION public.bench_write_back_batch(p_rows jsonb) RETURNS void
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r jsonb;
BEGIN
  FOR r IN SELECT e FROM jsonb_array_elements(p_rows) e LOOP
    PERFORM set_config('app.current_user_id', r ->> 'user', true);
    INSERT INTO public.sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id, actor)
    VALUES ('ai', 'aiMissions', r ->> 'id', r ->> 'user', 'update', r -> 'data', r -> 'ts', r ->> 'client', r -> 'actor');
  END LOOP;
END
$fn$`;

/** One element of bench_write_back_batch's array: bench mission `id`'s iteration. */
export function benchWriteBackRow(id: string, user: string): Record<string, unknown> {
  const { data, fieldTimestamps } = benchIterationChange(id, floorNextIso());
  return { id, user, data, ts: fieldTimestamps, client: RUNNER_CLIENT_ID, actor: RUNNER_ACTOR };
}

/**
 * Sends bench mission `id`'s prompt (the bytes our planner builds) to the
 * LLM stand-in behind `http` and reads the answer: what the reference lines
 * of the benches do where our run asks the LLM.
 */
export function benchPromptPoster(http: HttpPool): (id: string) => Promise<void> {
  return async (id) => {
    const body = JSON.stringify({ model: 'bench', temperature: 0.2, messages: benchPrompt(id) });
    const res = await http.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body });
    await res.body.text();
  };
}

/** A floor did the work it stands for: each of the `n` missions `prefix`… holds the one iteration written back. */
export async function assertWrittenBack(q: pg.Pool | pg.Client, prefix: string, n: number, floor: string): Promise<void> {
  const { rows } = await q.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM mana_ai.mission_snapshots
      WHERE mission_id LIKE $1 || '%' AND jsonb_array_length(record -> 'iterations') = 1`, [prefix]);
  if (rows[0]!.n !== n) throw new Error(`${floor}: ${rows[0]!.n} of ${n} snapshots hold their iteration`);
}

/** The messages our planner builds for the bench mission titled `id` (v0.4 tools, no inputs). */
export function benchPrompt(id: string): PromptMessage[] {
  const read = readMission(benchMission(id, new Date().toISOString()));
  if (!read.ok) throw new Error(read.reason);
  return buildMessages(read.mission, [], catalogFor('v0.4'), new Date());
}
