// Every metric the daemon exports, in one registry. Names used by the
// deployed dashboards and alerts (CONTRACT.md section 9) must not change;
// test/ops-artifacts.test.ts fails when a name used in docs/ops is missing here,
// or when a series an alert reads is not exported at 0 by a fresh process.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { zeroAlertSeries } from './alert-series.js';
import { zeroDashboardSeries } from './dashboard-series.js';
import { STEP_REJECT_REASONS } from '../planner/validate-step.js';

export interface Metrics {
  registry: Registry;
  plansProduced: Counter;
  plansWrittenBack: Counter;
  parseFailures: Counter;
  missionErrors: Counter<'reason'>;
  plannerRequestDuration: Histogram<'outcome'>;
  httpRequests: Counter<'method' | 'path' | 'status'>;
  httpRequestDuration: Histogram<'method' | 'path' | 'status'>;
  decrypts: Counter<'table'>;
  grantScopeViolations: Counter<'table'>;
  grantSkips: Counter<'reason'>;
  membershipLookups: Counter<'outcome'>;
  sharedSpaceInputs: Counter<'table'>;
  ambiguousInputs: Counter<'table'>;
  missionsScheduled: Gauge;
  dueLag: Histogram;
  notificationsReceived: Counter<'kind'>;
  listenerConnected: Gauge;
  listenerReconnects: Counter;
  resyncs: Counter<'reason'>;
  runs: Counter<'outcome'>;
  runsInFlight: Gauge;
  runsQueued: Gauge;
  claims: Counter<'outcome'>;
  llmRetries: Counter<'reason'>;
  missionsSkipped: Counter<'reason'>;
  snapshotErrors: Counter;
  snapshotRepairs: Counter<'outcome'>;
  iterationsRestored: Counter;
  iterationRepairs: Counter<'outcome'>;
  unownedChecks: Counter<'result'>;
  partitionsOwned: Gauge;
  members: Gauge;
  rebalances: Counter<'reason'>;
  ownershipReconnects: Counter;
  peersLost: Counter;
  watchReconnects: Counter;
  eventLoopDelay: Gauge<'quantile'>;
  dbConnectionErrors: Counter;
  eventListenerErrors: Counter;
  planStepsRejected: Counter<'reason'>;
  research: Counter<'kind' | 'outcome'>;
  researchJobsSubmitted: Counter<'provider'>;
  researchJobsCompleted: Counter<'provider'>;
  researchJobsFailed: Counter<'provider'>;
  researchPendingSkips: Counter<string>;
  planRepairs: Counter<'outcome'>;
  plannerFallbacks: Counter<'reason'>;
  missionsParked: Counter;
  encryptedMissionFields: Counter<'field'>;
  missionsUnparked: Counter;
  /** Set by the daemon: parked missions in the database, read at scrape time. */
  parkedSource: { current: (() => Promise<number>) | null };
  parkedNow: Gauge;
  runRetries: Counter<'reason'>;
  agentDecisions: Counter<'decision'>;
  tokensUsed: Counter;
  tokensEstimated: Counter;
  tokenChargeFailures: Counter;
  /** Set by the reactor: its agents waiting for budget, read at scrape time. */
  budgetBlockedSource: { current: (() => { agents: number; maxSeconds: number }) | null };
  budgetBlockedAgents: Gauge;
  budgetBlockedMaxSeconds: Gauge;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'mana-ai' });
  collectDefaultMetrics({ register: registry, prefix: 'mana_ai_' });
  const r = { registers: [registry] };
  const budgetBlockedSource: Metrics['budgetBlockedSource'] = { current: null };
  const parkedSource: Metrics['parkedSource'] = { current: null };
  const metrics: Metrics = {
    agentDecisions: new Counter({
      name: 'mana_ai_agent_decisions_total', labelNames: ['decision'], ...r,
      help: 'Gate decisions for due missions of an agent: ran, skipped-paused, skipped-archived, skipped-concurrency, skipped-budget (no per-agent label)',
    }),
    tokensUsed: new Counter({ name: 'mana_ai_tokens_used_total', help: 'LLM tokens charged to runs (written to mana_ai.token_usage), reported or estimated', ...r }),
    tokensEstimated: new Counter({ name: 'mana_ai_tokens_estimated_total', help: 'Part of mana_ai_tokens_used_total that was estimated because the answer had no usage.total_tokens', ...r }),
    tokenChargeFailures: new Counter({ name: 'mana_ai_token_charge_failures_total', help: 'LLM answers whose tokens could not be written to mana_ai.token_usage after retries (src/run/charge.ts)', ...r }),
    budgetBlockedSource,
    budgetBlockedAgents: new Gauge({
      name: 'mana_ai_agents_budget_blocked', help: 'Agents of this daemon whose due missions wait for budget', ...r,
      collect() {
        this.set(budgetBlockedSource.current?.().agents ?? 0);
      },
    }),
    budgetBlockedMaxSeconds: new Gauge({
      name: 'mana_ai_agent_budget_blocked_max_seconds', help: 'Longest time an agent of this daemon has had due missions waiting for budget', ...r,
      collect() {
        this.set(budgetBlockedSource.current?.().maxSeconds ?? 0);
      },
    }),
    registry,
    plansProduced: new Counter({ name: 'mana_ai_plans_produced_total', help: 'Plans the LLM produced that passed validation', ...r }),
    plansWrittenBack: new Counter({ name: 'mana_ai_plans_written_back_total', help: 'Iterations written back to sync_changes', ...r }),
    parseFailures: new Counter({ name: 'mana_ai_parse_failures_total', help: 'LLM answers rejected by the plan parser', ...r }),
    missionErrors: new Counter({ name: 'mana_ai_mission_errors_total', help: 'Runs that ended in an error', labelNames: ['reason'], ...r }),
    plannerRequestDuration: new Histogram({
      name: 'mana_ai_planner_request_duration_seconds', help: 'Duration of one mana-llm request', labelNames: ['outcome'],
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120], ...r,
    }),
    httpRequests: new Counter({ name: 'mana_ai_http_requests_total', help: 'HTTP requests served', labelNames: ['method', 'path', 'status'], ...r }),
    httpRequestDuration: new Histogram({
      name: 'mana_ai_http_request_duration_seconds', help: 'HTTP request duration', labelNames: ['method', 'path', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], ...r,
    }),
    decrypts: new Counter({ name: 'mana_ai_decrypts_total', help: 'Fields decrypted under a mission grant', labelNames: ['table'], ...r }),
    grantScopeViolations: new Counter({ name: 'mana_ai_grant_scope_violations_total', help: 'Inputs outside a grant allow-list (must stay 0)', labelNames: ['table'], ...r }),
    grantSkips: new Counter({ name: 'mana_ai_grant_skips_total', help: 'Grants that could not be used', labelNames: ['reason'], ...r }),
    membershipLookups: new Counter({ name: 'mana_ai_membership_lookups_total', help: "mana-auth membership lookups (outcome ok | unavailable; cache hits are not counted)", labelNames: ['outcome'], ...r }),
    sharedSpaceInputs: new Counter({ name: 'mana_ai_shared_space_inputs_total', help: 'Mission inputs read from a shared space the owner belongs to (plaintext, audited)', labelNames: ['table'], ...r }),
    ambiguousInputs: new Counter({ name: 'mana_ai_ambiguous_inputs_total', help: 'Mission inputs refused because their record id names records of more than one shared space (audited ambiguous-space)', labelNames: ['table'], ...r }),
    missionsScheduled: new Gauge({ name: 'mana_ai_missions_scheduled', help: 'Missions in the timer wheel', ...r }),
    dueLag: new Histogram({
      name: 'mana_ai_due_lag_seconds', help: 'Run start minus nextRunAt',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], ...r,
    }),
    notificationsReceived: new Counter({ name: 'mana_ai_notifications_received_total', help: 'NOTIFY payloads received', labelNames: ['kind'], ...r }),
    listenerConnected: new Gauge({ name: 'mana_ai_listener_connected', help: '1 while the LISTEN connection is up', ...r }),
    listenerReconnects: new Counter({ name: 'mana_ai_listener_reconnects_total', help: 'LISTEN connection re-established', ...r }),
    resyncs: new Counter({ name: 'mana_ai_resyncs_total', help: 'Full schedule reloads', labelNames: ['reason'], ...r }),
    runs: new Counter({ name: 'mana_ai_runs_total', help: 'Runs by outcome', labelNames: ['outcome'], ...r }),
    runsInFlight: new Gauge({ name: 'mana_ai_runs_in_flight', help: 'Runs taken from the queue and not ended: claiming or claimed and waiting for a planning slot, planning (at most MANA_AI_CONCURRENCY), or writing back', ...r }),
    runsQueued: new Gauge({ name: 'mana_ai_runs_queued', help: 'Due runs waiting for a slot', ...r }),
    claims: new Counter({ name: 'mana_ai_claims_total', help: 'Claim attempts by outcome', labelNames: ['outcome'], ...r }),
    llmRetries: new Counter({ name: 'mana_ai_llm_retries_total', help: 'mana-llm requests retried', labelNames: ['reason'], ...r }),
    snapshotErrors: new Counter({ name: 'mana_ai_snapshot_errors_total', help: 'Mission changes the trigger could not fold (rows in mana_ai.snapshot_errors), as notified while this daemon listened', ...r }),
    snapshotRepairs: new Counter({ name: 'mana_ai_snapshot_repairs_total', help: 'Snapshots rebuilt after a transient fold error, by outcome', labelNames: ['outcome'], ...r }),
    iterationsRestored: new Counter({ name: 'mana_ai_iterations_restored_total', help: 'Iterations a stale device erased and the runner wrote back (issue 28)', ...r }),
    iterationRepairs: new Counter({ name: 'mana_ai_iteration_repairs_total', help: 'Repairs of recorded iteration losses, by outcome (restored | present | deleted | not-pending | error)', labelNames: ['outcome'], ...r }),
    unownedChecks: new Counter({ name: 'mana_ai_ownership_checks_total', help: 'Listener connection checks, by whether every partition had an owner', labelNames: ['result'], ...r }),
    partitionsOwned: new Gauge({ name: 'mana_ai_partitions_owned', help: 'Partitions of the missions this daemon schedules (of 64)', ...r }),
    members: new Gauge({ name: 'mana_ai_members', help: 'Daemons sharing the database, as seen at the last rebalance', ...r }),
    rebalances: new Counter({ name: 'mana_ai_rebalances_total', help: 'Partition rebalances by cause', labelNames: ['reason'], ...r }),
    ownershipReconnects: new Counter({ name: 'mana_ai_ownership_reconnects_total', help: 'Partition-lock connection re-established', ...r }),
    peersLost: new Counter({ name: 'mana_ai_peers_lost_total', help: 'Peer daemons noticed gone by the watcher', ...r }),
    watchReconnects: new Counter({ name: 'mana_ai_watch_reconnects_total', help: 'Watch connections (on a peer daemon) lost and re-established', ...r }),
    missionsSkipped: new Counter({ name: 'mana_ai_missions_skipped_total', help: 'Due missions the runner could not read', labelNames: ['reason'], ...r }),
    // upstream's four deep-research counters (CONTRACT.md section 15)
    researchJobsSubmitted: new Counter({ name: 'mana_ai_research_jobs_submitted_total', help: 'Deep research jobs submitted to mana-research', labelNames: ['provider'], ...r }),
    researchJobsCompleted: new Counter({ name: 'mana_ai_research_jobs_completed_total', help: 'Deep research jobs that completed', labelNames: ['provider'], ...r }),
    researchJobsFailed: new Counter({ name: 'mana_ai_research_jobs_failed_total', help: 'Deep research jobs that could not be submitted or failed', labelNames: ['provider'], ...r }),
    researchPendingSkips: new Counter({ name: 'mana_ai_research_jobs_pending_skips_total', help: 'Runs that found their deep research job pending and waited for it without a claim', ...r }),
    research: new Counter({
      name: 'mana_ai_research_total', help: 'Research of runs by kind (news, deep) and outcome (ok, cached, empty, failed, timeout, abandoned, skipped)',
      labelNames: ['kind', 'outcome'], ...r,
    }),
    planStepsRejected: new Counter({
      name: 'mana_ai_plan_steps_rejected_total', labelNames: ['reason'], ...r,
      help: 'Plan steps (or their parameters) left out because the webapp could not execute them, by reason; duplicate = an identical step of the same plan, unknown-param = a parameter no executor reads',
    }),
    encryptedMissionFields: new Counter({ name: 'mana_ai_encrypted_mission_fields_total', help: 'Mission texts that arrived encrypted (enc:<n>:) and were left out of the prompt, by field', labelNames: ['field'], ...r }),
    missionsParked: new Counter({ name: 'mana_ai_missions_parked_total', help: 'Missions parked after MANA_AI_MAX_CONSECUTIVE_FAILURES failed runs in a row', ...r }),
    missionsUnparked: new Counter({ name: 'mana_ai_missions_unparked_total', help: 'Parked missions that run again because the user changed them', ...r }),
    parkedSource,
    parkedNow: new Gauge({
      name: 'mana_ai_missions_parked', help: 'Missions parked now (mana_ai.parked_missions), read from the database at scrape time', ...r,
      async collect() {
        const read = parkedSource.current;
        if (read) this.set(await read().catch(() => 0));
      },
    }),
    plannerFallbacks: new Counter({ name: 'mana_ai_planner_fallbacks_total', help: 'Runs planned in text mode because the model could not call tools', labelNames: ['reason'], ...r }),
    planRepairs: new Counter({ name: 'mana_ai_plan_repairs_total', help: 'Repair rounds: the model told which steps were invalid, by outcome', labelNames: ['outcome'], ...r }),
    eventListenerErrors: new Counter({ name: 'mana_ai_event_listener_errors_total', help: 'Listeners of the reactor\'s events that threw or rejected (logged; the run or schedule they observed went on)', labelNames: ['event'], ...r }),
    dbConnectionErrors: new Counter({ name: 'mana_ai_db_connection_errors_total', help: 'Work-pool connections lost while checked out (the transaction in flight failed and its run was given back)', ...r }),
    runRetries: new Counter({
      name: 'mana_ai_run_retries_total', labelNames: ['reason'], ...r,
      help: 'Runs given back after their claim for a reason outside the mission (database unavailable, lock or statement timeout, lost connection; slot-wait: claimed ahead of a planning slot and waited too long), tried again with backoff',
    }),
    eventLoopDelay: new Gauge({ name: 'mana_ai_event_loop_delay_seconds', help: 'Event-loop delay over the last scrape interval', labelNames: ['quantile'], ...r }),
  };
  zeroAlertSeries(metrics);
  zeroDashboardSeries(metrics);
  for (const reason of STEP_REJECT_REASONS) metrics.planStepsRejected.inc({ reason }, 0);
  metrics.plannerFallbacks.inc({ reason: 'capability' }, 0);
  for (const field of ['title', 'objective', 'conceptMarkdown']) metrics.encryptedMissionFields.inc({ field }, 0);
  for (const outcome of ['asked', 'corrected', 'still-invalid', 'unparseable', 'request-failed']) metrics.planRepairs.inc({ outcome }, 0);
  return metrics;
}
