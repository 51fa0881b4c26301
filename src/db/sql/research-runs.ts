// The research of each run (sql/migrations/025_research.sql), inside the
// caller's user-scoped transaction: the news cache's lookup, the run's
// record, and the user's read of them. Never logs a query or a source.

import { sql } from 'kysely';
import type { ScopedTx } from '../scoped.js';
import type { Source } from '../../research/mana-search.js';

export const RESEARCH_OUTCOMES = ['ok', 'cached', 'empty', 'failed', 'timeout', 'abandoned', 'skipped'] as const;
export type ResearchOutcome = (typeof RESEARCH_OUTCOMES)[number];

export interface ResearchRun {
  userId: string;
  missionId: string;
  dueAt: Date;
  kind: 'news' | 'deep';
  query: string;
  language: 'de' | 'en';
  localDay: string;
  outcome: ResearchOutcome;
  sources: Source[];
}

/** The sources a search of this (user, query, language, day) brought, when one was made. */
export async function cachedSources(trx: ScopedTx, q: { userId: string; kind: 'news' | 'deep'; query: string; language: string; localDay: string }): Promise<Source[] | null> {
  const { rows } = await sql<{ sources: Source[] }>`
    SELECT sources FROM mana_ai.research_runs
     WHERE user_id = ${q.userId} AND kind = ${q.kind} AND language = ${q.language} AND local_day = ${q.localDay}::date
       AND query = ${q.query} AND outcome IN ('ok', 'cached')
     ORDER BY id DESC LIMIT 1`.execute(trx);
  return rows[0]?.sources ?? null;
}

export async function recordResearch(trx: ScopedTx, r: ResearchRun): Promise<void> {
  await sql`
    INSERT INTO mana_ai.research_runs (user_id, mission_id, due_at, kind, query, language, local_day, outcome, sources)
    VALUES (${r.userId}, ${r.missionId}, ${r.dueAt.toISOString()}::timestamptz, ${r.kind}, ${r.query}, ${r.language}, ${r.localDay}::date, ${r.outcome},
            ${JSON.stringify(r.sources)}::jsonb)`.execute(trx);
}

export interface ResearchRow { missionId: string; dueAt: string; kind: string; query: string; sources: { url: string; title: string }[]; createdAt: string }

/** A user's research rows, newest first (the read API). */
export async function readResearch(trx: ScopedTx, q: { userId: string; missionId?: string; limit: number }): Promise<ResearchRow[]> {
  const { rows } = await sql<{ mission_id: string; due_at: Date; kind: string; query: string; sources: Source[]; created_at: Date }>`
    SELECT mission_id, due_at, kind, query, sources, created_at FROM mana_ai.research_runs
     WHERE user_id = ${q.userId} AND (${q.missionId ?? null}::text IS NULL OR mission_id = ${q.missionId ?? null})
     ORDER BY id DESC LIMIT ${q.limit}`.execute(trx);
  return rows.map((r) => ({
    missionId: r.mission_id, dueAt: r.due_at.toISOString(), kind: r.kind, query: r.query,
    sources: r.sources.map((s) => ({ url: s.url, title: s.title })), createdAt: r.created_at.toISOString(),
  }));
}
