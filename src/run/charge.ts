// Charges each LLM answer's tokens the moment it arrives (issue 27, item 6;
// STYLE.md "every answer is paid for where it arrives"): submitted at once
// and committed with the next batch of the runs' writes, charges first
// (src/db/sql/run-writes.ts, issue 30), each row scoped to the mission's
// user and keyed by (run, attempt, answer number) so that retrying the
// insert after a lost commit acknowledgement never charges twice. Before, tokens were charged in the
// write-back: an answer whose run then threw (a step check that overflowed
// the stack), failed outside the mission or was retried was never paid,
// and an agent could get past its daily budget at every due time.
// Never throws: a charge that cannot be written after a few tries is
// logged and counted, and the run goes on.

import type { Db } from '../db/pool.js';
import { chargeAnswer } from '../db/sql/run-writes.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import type { RunUsage } from '../planner/plan-mission.js';
import { retryDelayMs } from '../reactor/backoff.js';
import { coerceError } from '../coerce-error.js';

export interface ChargeTarget {
  userId: string;
  agentId: string | null;
  missionId: string;
  runId: number;
  attempts: number;
}

/** A charger for one attempt of one run: call it once per answer, in order. */
export function answerCharger(db: Db, metrics: Metrics, log: Logger, t: ChargeTarget, signal: AbortSignal): (usage: RunUsage) => Promise<void> {
  let answers = 0;
  return async (usage) => {
    answers += 1;
    const answerKey = `${t.attempts}:${answers}`;
    for (let attempt = 1; ; attempt++) {
      try {
        await chargeAnswer(db, { userId: t.userId, agentId: t.agentId, missionId: t.missionId, tokens: usage.tokens, estimated: usage.estimated, runId: t.runId, answerKey });
        metrics.tokensUsed.inc(usage.tokens);
        if (usage.estimated) metrics.tokensEstimated.inc(usage.tokens);
        return;
      } catch (error) {
        if (attempt >= 5 || signal.aborted) {
          metrics.tokenChargeFailures.inc();
          log.error({ runId: t.runId, answerKey, tokens: usage.tokens, err: coerceError(error).message }, 'could not charge an answer\'s tokens; the run goes on');
          return;
        }
        await new Promise((r) => setTimeout(r, retryDelayMs(attempt, { jitter: true })));
      }
    }
  };
}
