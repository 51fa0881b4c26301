// A run's research (issue 31): news through mana-search, fetched once per
// (user, query, language, local day) and reused by every run of that user
// that day (retries, other missions asking the same), recorded per run in
// the user's scope (sql/migrations/025_research.sql), counted by kind and
// outcome. Never throws and never fails the run: research that brings
// nothing is a block without sources, and the prompt says so. Deep research
// runs through its jobs (deep-jobs.ts) before the planning pass; a deep
// request that reaches this module (deep research off) is `skipped`.

import type { Db } from '../db/pool.js';
import { withUserScope } from '../db/scoped.js';
import { cachedSources, recordResearch, type ResearchOutcome } from '../db/sql/research-runs.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { coerceError } from '../coerce-error.js';
import { searchNews, type Source } from './mana-search.js';
import type { ResearchRequest } from './research-request.js';

export interface ResearchDeps {
  db: Db;
  /** MANA_SEARCH_URL; null = news research cannot run (`skipped`) */
  searchUrl: string | null;
  /** the zone whose calendar day keys the news cache (MANA_AI_TIMEZONE) */
  timeZone: string;
  timeoutMs: number;
  metrics: Metrics;
  log: Logger;
}

/** What the prompt shows: the sources, or why there are none. */
export interface ResearchBlock {
  kind: 'news' | 'deep';
  query: string;
  outcome: ResearchOutcome;
  sources: Source[];
  /** deep research's answer (its citations are the sources) */
  answer?: string;
}

/** The calendar day of `ms` in `timeZone`, YYYY-MM-DD. */
export function localDay(ms: number, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(ms));
}

export async function researchForRun(
  deps: ResearchDeps,
  run: { userId: string; missionId: string; dueMs: number; nowMs: number },
  req: Extract<ResearchRequest, { kind: 'news' | 'deep' }>,
  signal?: AbortSignal,
): Promise<ResearchBlock> {
  const day = localDay(run.nowMs, deps.timeZone);
  let outcome: ResearchOutcome;
  let sources: Source[] = [];
  try {
    if (req.kind === 'deep' || !deps.searchUrl) {
      outcome = 'skipped';
    } else {
      const cached = await withUserScope(deps.db, run.userId, (trx) => cachedSources(trx, { userId: run.userId, kind: 'news', query: req.query, language: req.language, localDay: day }));
      if (cached) {
        outcome = 'cached';
        sources = cached;
      } else {
        const r = await searchNews(deps.searchUrl, { query: req.query, language: req.language }, { timeoutMs: deps.timeoutMs, ...(signal ? { signal } : {}) });
        if (r.ok) {
          outcome = 'ok';
          sources = r.sources;
        } else {
          outcome = r.outcome;
          deps.log.warn({ kind: req.kind, outcome: r.outcome, detail: r.detail }, 'research brought no sources; the run is planned without them, and the prompt says so');
        }
      }
    }
    await withUserScope(deps.db, run.userId, (trx) => recordResearch(trx, {
      userId: run.userId, missionId: run.missionId, dueAt: new Date(run.dueMs), kind: req.kind, query: req.query, language: req.language, localDay: day, outcome, sources,
    }));
  } catch (error) {
    // the cache or the record could not be read or written: planned without research, saying so
    outcome = 'failed';
    sources = [];
    deps.log.warn({ kind: req.kind, err: coerceError(error).message }, 'research could not be recorded; the run is planned without it');
  }
  deps.metrics.research.inc({ kind: req.kind, outcome });
  return { kind: req.kind, query: req.query, outcome, sources };
}
