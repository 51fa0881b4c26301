// Creates every series an alert reads at 0 when the process starts. A
// labelled counter otherwise has no series until its first event, so
// Prometheus first sees it at 1 and `increase()` over it is 0: the first
// scope violation of every process would never page. The rule tests
// (docs/ops/prometheus-rules.test.yaml) show both cases; the ops test scrapes
// a fresh daemon and checks that every series below is there.

import { GRANT_TABLES } from '../grants/tables.js';
import { GRANT_SKIP_REASONS } from '../grants/unwrap.js';
import { RUN_OUTCOMES } from '../run/run-outcome.js';
import { RESEARCH_OUTCOMES } from '../db/sql/research-runs.js';
import type { Counter } from 'prom-client';

/** The label values each alert-read counter starts with. */
export const ALERT_SERIES = {
  mana_ai_grant_scope_violations_total: { table: [...GRANT_TABLES, 'other'] },
  mana_ai_decrypts_total: { table: [...GRANT_TABLES, 'other'] },
  mana_ai_grant_skips_total: { reason: [...GRANT_SKIP_REASONS] },
  mana_ai_runs_total: { outcome: [...RUN_OUTCOMES] },
  mana_ai_research_total: { kind: ['news', 'deep'], outcome: [...RESEARCH_OUTCOMES] },
} as const;

/** The counters zeroAlertSeries starts (metrics.ts's Metrics has them; named here so this file needs nothing of it). */
export interface AlertCounters {
  grantScopeViolations: Counter<'table'>;
  decrypts: Counter<'table'>;
  grantSkips: Counter<'reason'>;
  runs: Counter<'outcome'>;
  research: Counter<'kind' | 'outcome'>;
}

export function zeroAlertSeries(m: AlertCounters): void {
  for (const table of ALERT_SERIES.mana_ai_grant_scope_violations_total.table) m.grantScopeViolations.inc({ table }, 0);
  for (const table of ALERT_SERIES.mana_ai_decrypts_total.table) m.decrypts.inc({ table }, 0);
  for (const reason of ALERT_SERIES.mana_ai_grant_skips_total.reason) m.grantSkips.inc({ reason }, 0);
  for (const outcome of ALERT_SERIES.mana_ai_runs_total.outcome) m.runs.inc({ outcome }, 0);
  for (const kind of ALERT_SERIES.mana_ai_research_total.kind) for (const outcome of ALERT_SERIES.mana_ai_research_total.outcome) m.research.inc({ kind, outcome }, 0);
}
