// Deep-research jobs (sql/migrations/025_research.sql) inside the caller's
// user-scoped transaction, and the pending ones of some partitions across
// users (a definer function). Never logs a query or an answer.

import { sql } from 'kysely';
import type pg from 'pg';
import type { ScopedTx } from '../scoped.js';
import type { DeepAnswer } from '../../research/mana-research.js';

export interface ResearchJob {
  id: number;
  dueMs: number;
  query: string;
  status: 'pending' | 'completed' | 'failed' | 'abandoned' | 'used';
  taskId: string | null;
  polls: number;
  submittedMs: number;
  finishedMs: number | null;
  answer: DeepAnswer | null;
}

type Row = { id: string; due_at: Date; query: string; status: ResearchJob['status']; task_id: string | null; polls: number; submitted_at: Date; finished_at: Date | null; answer: DeepAnswer | null };
const jobOf = (r: Row): ResearchJob => ({
  id: Number(r.id), dueMs: r.due_at.getTime(), query: r.query, status: r.status, taskId: r.task_id, polls: r.polls,
  submittedMs: r.submitted_at.getTime(), finishedMs: r.finished_at ? r.finished_at.getTime() : null, answer: r.answer,
});

/** The mission's jobs of the last `sinceMs`, newest first. */
export async function missionJobs(trx: ScopedTx, q: { userId: string; missionId: string; sinceMs: number }): Promise<ResearchJob[]> {
  const { rows } = await sql<Row>`
    SELECT id, due_at, query, status, task_id, polls, submitted_at, finished_at, answer FROM mana_ai.research_jobs
     WHERE user_id = ${q.userId} AND mission_id = ${q.missionId} AND submitted_at > to_timestamp(${q.sinceMs}::float8 / 1000)
     ORDER BY submitted_at DESC, id DESC`.execute(trx);
  return rows.map(jobOf);
}

/** A new pending job for (mission, due time); null when one exists already (one per due time). */
export async function insertJob(trx: ScopedTx, j: { userId: string; missionId: string; sid: number; dueMs: number; agentId: string | null; query: string; provider: string }): Promise<number | null> {
  const { rows } = await sql<{ id: string }>`
    INSERT INTO mana_ai.research_jobs (user_id, mission_id, sid, partition, due_at, agent_id, query, provider, status)
    VALUES (${j.userId}, ${j.missionId}, ${j.sid}, mana_ai.user_partition(${j.userId}), to_timestamp(${j.dueMs}::float8 / 1000), ${j.agentId}, ${j.query}, ${j.provider}, 'pending')
    ON CONFLICT (user_id, mission_id, due_at) DO NOTHING
    RETURNING id`.execute(trx);
  return rows[0] ? Number(rows[0].id) : null;
}

export async function updateJob(trx: ScopedTx, id: number, u: { status?: ResearchJob['status']; taskId?: string; polls?: number; answer?: DeepAnswer; error?: string; finished?: boolean; used?: boolean }): Promise<void> {
  await sql`
    UPDATE mana_ai.research_jobs
       SET status = coalesce(${u.status ?? null}, status),
           task_id = coalesce(${u.taskId ?? null}, task_id),
           polls = coalesce(${u.polls ?? null}::int, polls),
           answer = coalesce(${u.answer ? JSON.stringify(u.answer) : null}::jsonb, answer),
           error = coalesce(${u.error ?? null}, error),
           finished_at = CASE WHEN ${u.finished === true} THEN now() ELSE finished_at END,
           used_at = CASE WHEN ${u.used === true} THEN now() ELSE used_at END
     WHERE id = ${id}`.execute(trx);
}

export interface PendingJob { id: number; userId: string; missionId: string; sid: number; dueMs: number; taskId: string | null; polls: number; submittedMs: number }

export async function pendingJobs(pool: pg.Pool, partitions: readonly number[]): Promise<PendingJob[]> {
  if (partitions.length === 0) return [];
  const { rows } = await pool.query<{ id: string; user_id: string; mission_id: string; sid: string; due_at: Date; task_id: string | null; polls: number; submitted_at: Date }>(
    'SELECT id, user_id, mission_id, sid, due_at, task_id, polls, submitted_at FROM mana_ai.pending_research_jobs($1::int[])', [[...partitions]]);
  return rows.map((r) => ({ id: Number(r.id), userId: r.user_id, missionId: r.mission_id, sid: Number(r.sid), dueMs: r.due_at.getTime(), taskId: r.task_id, polls: r.polls, submittedMs: r.submitted_at.getTime() }));
}

/**
 * Whether a deep job's run still has a mission to go to: the snapshot is
 * still scheduled at the job's due time (mana_ai.schedulable_due_ms, the
 * rule the notifications use; not paused, archived, deleted or rescheduled
 * since). The runtime role reads snapshots of every user
 * (sql/grants/runtime-role.sql), so no scoped transaction is needed.
 */
export async function jobRunStillDue(pool: pg.Pool, q: { sid: number; dueMs: number }): Promise<boolean> {
  const { rows } = await pool.query<{ live: boolean }>(
    `SELECT mana_ai.schedulable_due_ms(state, deleted, next_run_at) = $2::bigint AS live FROM mana_ai.mission_snapshots WHERE sid = $1`, [q.sid, q.dueMs]);
  return rows[0]?.live === true;
}
