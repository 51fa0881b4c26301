// Creates every series a dashboard panel reads at 0 when the process
// starts (issue 20): a labelled counter or histogram otherwise has no
// series until its first event, the panel says "No data" and `rate()`
// misses the first event. Beside alert-series.ts (the alert-read ones,
// runs_total by outcome among them);
// test/ops-artifacts.test.ts scrapes a fresh daemon and checks every
// metric and label set docs/ops/grafana-dashboard.json reads.

import type { Counter, Histogram } from 'prom-client';

/** The label values each dashboard-read labelled series starts with. */
export const DASHBOARD_SERIES = {
  mana_ai_mission_errors_total: {
    reason: ['llm-unreachable', 'llm-timeout', 'llm-rate-limited', 'llm-server-error', 'llm-bad-response', 'llm-client-error', 'plan-unparseable', 'too-many-attempts', 'run-error', 'internal'],
  },
  mana_ai_llm_retries_total: { reason: ['unreachable', 'timeout', 'rate-limited', 'server-error'] },
  mana_ai_missions_skipped_total: { reason: ['state-unreadable', 'cadence-unreadable'] },
  mana_ai_agent_decisions_total: { decision: ['ran', 'skipped-paused', 'skipped-archived', 'skipped-concurrency', 'skipped-budget'] },
  mana_ai_claims_total: { outcome: ['claimed', 'moved', 'held', 'throttled', 'finished', 'agent-paused', 'agent-archived', 'agent-deleted', 'agent-busy', 'over-budget'] },
  mana_ai_resyncs_total: { reason: ['start', 'reconnect', 'partitions-acquired'] },
  mana_ai_notifications_received_total: { kind: ['schedule', 'unschedule', 'agent', 'stale', 'other-partition', 'invalid'] },
  mana_ai_rebalances_total: { reason: ['start', 'reconnect', 'listener-reconnect', 'member-notify', 'peer-left', 'watch-lost', 'unowned-partitions'] },
  mana_ai_planner_request_duration_seconds: { outcome: ['ok', 'rate-limited', 'server-error', 'client-error', 'capability', 'bad-response', 'timeout', 'unreachable', 'aborted'] },
} as const;

/** The HTTP series the request panels read, for the routes every deployment serves. */
const HTTP_ROUTES = [
  { method: 'GET', path: '/health', status: '200' },
  { method: 'GET', path: '/metrics', status: '200' },
] as const;

/** The series zeroDashboardSeries starts (metrics.ts's Metrics has them; named here so this file needs nothing of it). */
export interface DashboardSeriesMetrics {
  missionErrors: Counter<'reason'>;
  llmRetries: Counter<'reason'>;
  missionsSkipped: Counter<'reason'>;
  agentDecisions: Counter<'decision'>;
  claims: Counter<'outcome'>;
  resyncs: Counter<'reason'>;
  notificationsReceived: Counter<'kind'>;
  rebalances: Counter<'reason'>;
  plannerRequestDuration: Histogram<'outcome'>;
  httpRequests: Counter<'method' | 'path' | 'status'>;
  httpRequestDuration: Histogram<'method' | 'path' | 'status'>;
}

export function zeroDashboardSeries(m: DashboardSeriesMetrics): void {
  const s = DASHBOARD_SERIES;
  for (const reason of s.mana_ai_mission_errors_total.reason) m.missionErrors.inc({ reason }, 0);
  for (const reason of s.mana_ai_llm_retries_total.reason) m.llmRetries.inc({ reason }, 0);
  for (const reason of s.mana_ai_missions_skipped_total.reason) m.missionsSkipped.inc({ reason }, 0);
  for (const decision of s.mana_ai_agent_decisions_total.decision) m.agentDecisions.inc({ decision }, 0);
  for (const outcome of s.mana_ai_claims_total.outcome) m.claims.inc({ outcome }, 0);
  for (const reason of s.mana_ai_resyncs_total.reason) m.resyncs.inc({ reason }, 0);
  for (const kind of s.mana_ai_notifications_received_total.kind) m.notificationsReceived.inc({ kind }, 0);
  for (const reason of s.mana_ai_rebalances_total.reason) m.rebalances.inc({ reason }, 0);
  for (const outcome of s.mana_ai_planner_request_duration_seconds.outcome) m.plannerRequestDuration.zero({ outcome });
  for (const r of HTTP_ROUTES) {
    m.httpRequests.inc(r, 0);
    m.httpRequestDuration.zero(r);
  }
}
