// Writes a finished run back, atomically: in one transaction scoped to the
// mission's user, the snapshot row is locked first (the same lock, in the
// same order, as the trigger's: sql/functions/snapshot-store.sql), the run is marked finished (only
// if this daemon still holds the claim) and the sync_changes row of
// CONTRACT.md section 5 is inserted. Both commit or neither does. The
// trigger then updates the snapshot and its NOTIFY reschedules the mission:
// there is no second code path.
//
// It never overrides what the user did while the run was in flight: the
// iteration is appended to the snapshot as it stands under the lock, and
// nextRunAt is written only when the snapshot still holds the due time this
// run was for (and the mission is still active); a moved, paused or
// finished mission keeps the user's schedule and state.
//
// Under an agent, the row's actor is the agent (CONTRACT.md section 10),
// named as it is called at write time. Tokens are not charged here: each
// answer was charged as it arrived (src/run/charge.ts).

import type { Db } from '../db/pool.js';
import { withUserScope } from '../db/scoped.js';
import { writeUnchanged } from '../db/sql/run-writes.js';
import { agentActor } from '../agent/agent.js';
import { insertChange } from '../db/sql/insert-change.js';
import { agentNameNow } from '../db/sql/agent-name.js';
import { lockSnapshotForWriteBack } from '../db/sql/lock-snapshot.js';
import { finishWrittenRun } from '../db/sql/finish-written-run.js';
import { storedMissionSpace } from '../db/sql/mission-space.js';
import { consecutiveFailures, OUTSIDE_FAILURE, parkMission } from '../db/sql/parked.js';
import { failureCause, type Iteration } from './iteration.js';

export const RUNNER_CLIENT_ID = 'mana-ai-runner';
export const RUNNER_ACTOR = { kind: 'system', source: 'mission-runner' } as const;
/** HEAD's actor for a run without an agent (CONTRACT.md section 11): the legacy default agent. */
export const LEGACY_AI = { agentId: 'legacy:ai-default', displayName: 'Mana' } as const;

/**
 * The last iteration of a parked mission: why it stopped, the last error
 * (its cause only: never "the next run tries again", which a parked
 * mission's next run does not), how it comes back.
 */
export function parkedSummary(failures: number, reason: string): string {
  return `Diese Mission ist angehalten: ${failures} Durchläufe nacheinander sind fehlgeschlagen. Letzter Fehler: ${failureCause(reason)} Sobald du die Mission änderst, plant mana sie wieder.`;
}

export interface WriteBackInput {
  runId: number;
  workerId: string;
  attempts: number;
  sid: number;
  userId: string;
  missionId: string;
  /** the due time this run was claimed for */
  dueMs: number;
  iteration: Iteration;
  /** The next run after `nowMs` for the record as it stands under the lock (its cadence may have changed during the run); null = none. */
  nextRunAt(record: Record<string, unknown>, nowMs: number): number | null;
  nowMs: number;
  /** the agent the run ran under; null = the system actor of section 5 */
  agent: { id: string; nameAtClaim: string; rationale: string } | null;
  /** the webapp generation served: the actor of an agentless run and updatedAt depend on it (CONTRACT.md section 11) */
  generation: 'v0.4' | 'head';
  /** the mission's objective: the rationale of HEAD's legacy AI actor */
  objective: string;
  /** failed runs in a row after which the mission is parked (sql/migrations/020_baseline.sql) */
  maxConsecutiveFailures: number;
  /**
   * The shared space the row names: the one mana-sync stored for the
   * mission, already confirmed as one of the owner's (verifiedMissionSpace);
   * null or absent = none (issue 27, item 3).
   */
  spaceId?: string | null;
  /** the failure's reason code (e.g. `plan-unparseable`), for a failed iteration */
  failureReason?: string | null;
  /** a failure outside the mission (an outage outlasted the run's attempts): written, never counted towards the park */
  outsideFailure?: boolean;
  /**
   * The general path's longest wait for the snapshot row (the config's
   * writeBackLockWaitMs); past it the write-back throws lock_not_available
   * (55P03), a failure outside the mission. Absent: no bound of ours.
   */
  lockWaitMs?: number;
}

export type WriteBackOutcome =
  | { outcome: 'written'; nextRunAtMs: number | null; scheduleKept: boolean; parked: boolean }
  | { outcome: 'lost-claim' | 'mission-gone' };

class LostClaim extends Error {}

/**
 * The space a write-back's row names: the one mana-sync stored on the
 * mission's insert (never the mission data's spaceId, a free field; it
 * never changes, the webapp marks spaceId immutable), and only while the
 * owner is a verified member of it; else none. The owner's memberships are
 * asked only for a mission that has a stored space.
 */
export async function verifiedMissionSpace(
  db: Db,
  q: { userId: string; missionId: string; spacesOf: ((userId: string) => Promise<readonly string[] | null>) | null },
): Promise<string | null> {
  if (!q.spacesOf) return null;
  const stored = await withUserScope(db, q.userId, (trx) => storedMissionSpace(trx, q));
  if (stored === null) return null;
  return (await q.spacesOf(q.userId))?.includes(stored) ? stored : null;
}

/** The row's data and per-field times: the iterations with this run's appended, updatedAt (v0.4), the next run when still due. */
function missionChange(w: WriteBackInput, previous: unknown[], iteration: Iteration, stillDue: boolean, nextRunAtMs: number | null) {
  const now = new Date(w.nowMs).toISOString();
  const data: Record<string, unknown> = w.generation === 'head' ? { iterations: [...previous, iteration] } : { iterations: [...previous, iteration], updatedAt: now };
  if (stillDue) data['nextRunAt'] = nextRunAtMs === null ? null : new Date(nextRunAtMs).toISOString();
  return { data, fieldTimestamps: Object.fromEntries(Object.keys(data).map((k) => [k, now])) };
}

/** The actor of a run without an agent (CONTRACT.md sections 5 and 11). */
const agentlessActor = (w: WriteBackInput, iterationId: string) =>
  w.generation === 'head' ? agentActor({ ...LEGACY_AI, missionId: w.missionId, iterationId, rationale: w.objective }) : RUNNER_ACTOR;

/**
 * The common case without a transaction of its own (issue 30): a planned
 * run without an agent whose mission has not changed since its claim. The
 * row is built from the record the claim returned; the database writes it
 * only while the snapshot's version under the lock is still the claim's,
 * so it is exactly what the general path would write. Write-backs ready
 * together share one statement. Null: the mission changed, the lock was
 * busy, or the run failed or has an agent: take the general path.
 */
async function writeBackUnchanged(db: Db, w: WriteBackInput, claimed: { version: number; record: Record<string, unknown> }): Promise<WriteBackOutcome | null> {
  if (w.agent || w.iteration.overallStatus === 'failed' || w.outsideFailure) return null;
  const previous = Array.isArray(claimed.record['iterations']) ? claimed.record['iterations'] : [];
  const nextRunAtMs = w.nextRunAt(claimed.record, w.nowMs);
  const { data, fieldTimestamps } = missionChange(w, previous, w.iteration, true, nextRunAtMs);
  const outcome = await writeUnchanged(db, w.workerId, {
    sid: w.sid, version: claimed.version, run_id: w.runId, attempts: w.attempts, user_id: w.userId, mission_id: w.missionId,
    iteration_id: w.iteration.id, prompt_version: w.iteration.promptVersion ?? null, data, field_ts: fieldTimestamps,
    client_id: RUNNER_CLIENT_ID, actor: agentlessActor(w, w.iteration.id), space_id: w.spaceId ?? null,
  });
  if (outcome === 'written') return { outcome: 'written', nextRunAtMs, scheduleKept: false, parked: false };
  if (outcome === 'lost-claim') return { outcome: 'lost-claim' };
  return null;
}

/**
 * Writes a run's iteration back: in one statement when the mission is as
 * the claim read it (`claimed`), else under the snapshot's lock with the
 * record as it stands then.
 */
export async function writeBack(db: Db, w: WriteBackInput, claimed?: { version: number; record: Record<string, unknown> }): Promise<WriteBackOutcome> {
  if (claimed) {
    const fast = await writeBackUnchanged(db, w, claimed);
    if (fast) return fast;
  }
  try {
    return await withUserScope(db, w.userId, async (trx) => {
      const snap = await lockSnapshotForWriteBack(trx, w.sid, w.lockWaitMs);
      const gone = !snap || snap.deleted;
      const finished = await finishWrittenRun(trx, {
        runId: w.runId, workerId: w.workerId, attempts: w.attempts,
        status: gone ? 'cancelled' : w.iteration.overallStatus === 'failed' ? 'failed' : 'done',
        iterationId: gone ? null : w.iteration.id,
        error: gone ? 'mission deleted during the run' : w.outsideFailure ? OUTSIDE_FAILURE : null,
        promptVersion: w.iteration.promptVersion ?? null,
      });
      if (!finished) throw new LostClaim();
      if (gone) return { outcome: 'mission-gone' as const };
      const previous = Array.isArray(snap.record['iterations']) ? snap.record['iterations'] : [];
      // The user's schedule stands if they moved, paused or finished the
      // mission while this run was in flight.
      const stillDue = snap.state === 'active' && snap.nextRunAtMs === w.dueMs;
      const nextRunAtMs = stillDue ? w.nextRunAt(snap.record, w.nowMs) : null;
      // HEAD stores no updatedAt on updates (it derives it from the per-field timestamps)
      // The dead-letter: this failure makes maxConsecutiveFailures in a row.
      // The iteration says so (the user sees it on any device) and the
      // mission is parked below, its state untouched.
      let iteration = w.iteration;
      let failures = 0;
      if (iteration.overallStatus === 'failed' && !w.outsideFailure) {
        failures = await consecutiveFailures(trx, { runId: w.runId, limit: w.maxConsecutiveFailures });
        if (failures >= w.maxConsecutiveFailures) iteration = { ...iteration, summary: parkedSummary(failures, (w.failureReason ?? '').split(':')[0]!) };
      }
      const parked = failures >= w.maxConsecutiveFailures;
      const { data, fieldTimestamps } = missionChange(w, previous, iteration, stillDue, nextRunAtMs);
      await insertChange(trx, {
        appId: 'ai',
        tableName: 'aiMissions',
        recordId: w.missionId,
        userId: w.userId,
        op: 'update',
        data,
        fieldTimestamps,
        clientId: RUNNER_CLIENT_ID,
        spaceId: w.spaceId ?? null,
        actor: w.agent
          ? agentActor({
              agentId: w.agent.id,
              displayName: (await agentNameNow(trx, { userId: w.userId, agentId: w.agent.id })) ?? w.agent.nameAtClaim,
              missionId: w.missionId,
              iterationId: iteration.id,
              rationale: w.agent.rationale,
            })
          : agentlessActor(w, iteration.id),
      });
      // After the insert: its trigger has moved the snapshot to the version the park holds.
      if (parked) await parkMission(trx, { sid: w.sid, failures, lastError: w.iteration.summary });
      return { outcome: 'written' as const, nextRunAtMs: stillDue ? nextRunAtMs : (snap.nextRunAtMs ?? null), scheduleKept: !stillDue, parked };
    });
  } catch (error) {
    if (error instanceof LostClaim) return { outcome: 'lost-claim' };
    throw error;
  }
}
