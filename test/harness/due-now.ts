// A user's change that makes a mission due now (a device write: nextRunAt
// in 30 ms, plus any other fields), then the run it causes: the first new
// run event of the mission whose outcome `until` accepts (by default any
// but a retry, i.e. the run that ended the due time).

import type pg from 'pg';
import type { RunEvent } from '../../src/run/execute-run.js';
import { pushChange } from './changes.js';
import type { TestDaemon } from './daemon.js';
import { eventually } from './wait.js';

export async function dueNow(
  pool: pg.Pool,
  d: TestDaemon,
  q: { userId: string; missionId: string; data?: Record<string, unknown>; until?: (outcome: string) => boolean; timeoutMs?: number },
): Promise<RunEvent> {
  const until = q.until ?? ((o) => o !== 'retry');
  const runs = () => d.events.filter((e) => e.missionId === q.missionId);
  const n = runs().length;
  const ts = new Date().toISOString();
  const fields = { nextRunAt: new Date(Date.now() + 30).toISOString(), ...q.data };
  await pushChange(pool, { userId: q.userId, recordId: q.missionId, op: 'update', data: fields, fieldTimestamps: Object.fromEntries(Object.keys(fields).map((k) => [k, ts])) });
  await eventually(() => runs().slice(n).some((e) => until(e.outcome)), `a run of ${q.missionId}`, q.timeoutMs ?? 30_000);
  return runs().slice(n).find((e) => until(e.outcome))!;
}
