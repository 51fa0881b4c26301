// The idle daemon with agents (issue 12): 1,000 agents and 10,000 missions
// loaded, 2,000 of them due but budget-blocked (agents with a budget of 0,
// or with a day's budget already used), the rest due later. Once every
// blocked mission waits in memory, the daemon makes no query at all for a
// 10 s window: a waiting mission costs a timer per agent, not a poll.
// Starts first (about 15 s of npm test; scripts/test.ts).

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { daemonActivity } from './harness/activity.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { startLlmServer, type LlmServer } from './harness/llm-server.js';
import { startTestDaemon, until, type TestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon | undefined;

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

it('1,000 agents, 10,000 missions, 2,000 of them budget-blocked: no query while nothing may run', async () => {
  // Agent i belongs to user iu-(i/10); i % 10 = 0: budget 0; = 1: budget 100 with 200 used an hour ago.
  await db.pool.query(`
    INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, client_id)
    SELECT 'ai', 'agents', 'ag-' || i, 'iu-' || (i / 10), 'insert',
           jsonb_build_object('id', 'ag-' || i, 'name', 'Agent ' || i, 'role', 'plant', 'state', 'active',
                              'maxConcurrentMissions', 1, 'policy', '{"tools":{},"defaultForAi":"propose"}'::jsonb,
                              'createdAt', to_char(now() AT TIME ZONE 'UTC', ${ISO}), 'updatedAt', to_char(now() AT TIME ZONE 'UTC', ${ISO}))
           || CASE i % 10 WHEN 0 THEN '{"maxTokensPerDay": 0}'::jsonb WHEN 1 THEN '{"maxTokensPerDay": 100}'::jsonb ELSE '{}'::jsonb END,
           'seed'
      FROM generate_series(0, 999) i`);
  await db.pool.query(`
    INSERT INTO mana_ai.token_usage (user_id, agent_id, mission_id, tokens_used, ts)
    SELECT 'iu-' || (i / 10), 'ag-' || i, 'seed', 200, now() - interval '1 hour' FROM generate_series(1, 991, 10) i`);
  // Mission j belongs to agent j/10; the blocked agents' missions are due now, the others within two days.
  await db.pool.query(`
    INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, client_id)
    SELECT 'ai', 'aiMissions', 'im-' || j, 'iu-' || (j / 100), 'insert',
           jsonb_build_object('id', 'im-' || j, 'title', 'Mission ' || j, 'objective', 'o', 'agentId', 'ag-' || (j / 10),
                              'cadence', '{"kind":"interval","everyMinutes":60}'::jsonb, 'state', 'active', 'iterations', '[]'::jsonb,
                              'createdAt', to_char(now() AT TIME ZONE 'UTC', ${ISO}), 'updatedAt', to_char(now() AT TIME ZONE 'UTC', ${ISO}),
                              'nextRunAt', to_char((CASE WHEN (j / 10) % 10 IN (0, 1) THEN now() - interval '1 minute'
                                                         ELSE now() + (1 + j % 48) * interval '1 hour' END) AT TIME ZONE 'UTC', ${ISO})),
           'seed'
      FROM generate_series(0, 9999) j`);
  const counts = (await db.pool.query(`SELECT (SELECT count(*)::int FROM mana_ai.agent_snapshots) AS agents, (SELECT count(*)::int FROM mana_ai.mission_snapshots WHERE agent_id IS NOT NULL) AS missions`)).rows[0];
  assert.deepEqual(counts, { agents: 1000, missions: 10000 });

  // The 30 s connection check is the one query an idle daemon makes; keep it out of the window.
  daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_LISTENER_CHECK_MS: '120000' });
  const d = daemon;
  await eventually(() => d.reactor!.gates.waitingCount === 2000, `2,000 missions waiting for budget (now ${d.reactor!.gates.waitingCount})`, 60_000);
  await until(d.reactor!, 'idle', () => d.reactor!.runsInFlight === 0 && d.reactor!.runsQueued === 0);
  assert.equal(llm.requests.length, 0, 'no blocked mission reached the LLM');
  assert.equal(d.reactor!.gates.size, 1000);
  assert.equal(d.reactor!.wheel.size, 8000, 'the others wait for their time in the wheel');
  const claims = Number((await db.pool.query(`SELECT count(*) FROM mana_ai.mission_runs`)).rows[0].count);
  assert.equal(claims, 0);
  const blocked = await d.metrics.registry.getSingleMetricAsString('mana_ai_agents_budget_blocked');
  assert.match(blocked, /\} 200$/m);

  const sample = () => daemonActivity(db.pool);
  const before = await sample();
  assert.ok(before.length >= 1);
  await new Promise((r) => setTimeout(r, 10_000)); // the observation window itself
  const afterSample = await sample();
  for (const s of afterSample) assert.ok(before.includes(s), `activity seen: ${s}`);
  assert.equal(llm.requests.length, 0);
});
