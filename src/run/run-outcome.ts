// Every way a run attempt ends, in one list: the reactor and the run
// report them, and the metrics export each at 0 from the start, so an
// alert's first event is seen as an increase (docs/ops/prometheus-rules.test.yaml).

export const RUN_OUTCOMES = [
  'planned', 'failed', 'skipped', 'moved', 'finished', 'held', 'throttled',
  'agent-paused', 'agent-archived', 'agent-deleted', 'agent-busy', 'over-budget',
  'lost-claim', 'mission-gone', 'error', 'shutdown', 'retry', 'parked', 'waiting',
] as const;

export type RunOutcome = (typeof RUN_OUTCOMES)[number];
