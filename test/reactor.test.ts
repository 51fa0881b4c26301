// The reactor end to end: a real Postgres, the real daemon, a scripted LLM
// over real HTTP.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { runOf, SERVICE_KEY, startTestDaemon, until, type TestDaemon } from './harness/daemon.js';

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
  daemon = await startTestDaemon(db.daemonUrl, llm.url);
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();

describe('reactor', () => {
  it('plans a mission due 1 s ahead once and writes back exactly the contract row', async () => {
    const due = Date.now() + 1000;
    await pushChange(db.pool, { userId: 'u1', recordId: 'm1', op: 'insert', data: webappMission({ id: 'm1', nextRunAt: iso(due), cadence: { kind: 'interval', everyMinutes: 30 } }) });
    const ev = await daemon.waitForRun((e) => e.missionId === 'm1');
    assert.equal(ev.outcome, 'planned');
    assert.equal(ev.dueMs, due);

    const { rows } = await db.pool.query(`SELECT * FROM sync_changes WHERE client_id = 'mana-ai-runner' AND record_id = 'm1'`);
    assert.equal(rows.length, 1);
    const row = rows[0];
    assert.equal(row.app_id, 'ai');
    assert.equal(row.table_name, 'aiMissions');
    assert.equal(row.user_id, 'u1');
    assert.equal(row.op, 'update');
    assert.equal(row.schema_version, 1);
    assert.deepEqual(row.actor, { kind: 'system', source: 'mission-runner' });
    assert.deepEqual(Object.keys(row.data).sort(), ['iterations', 'nextRunAt', 'updatedAt']);
    assert.deepEqual(Object.keys(row.field_timestamps).sort(), ['iterations', 'nextRunAt', 'updatedAt']);
    for (const v of Object.values(row.field_timestamps)) assert.equal(v, row.data.updatedAt);
    assert.match(row.data.updatedAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    const next = Date.parse(row.data.nextRunAt);
    const written = Date.parse(row.data.updatedAt);
    assert.equal(next, written + 30 * 60_000, 'interval: from now + everyMinutes');

    assert.equal(row.data.iterations.length, 1);
    const it0 = row.data.iterations[0];
    assert.match(it0.id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(it0.source, 'server');
    assert.equal(it0.overallStatus, 'awaiting-review');
    assert.equal(it0.summary, 'Plan für heute');
    assert.deepEqual(it0.plan, [
      { id: `${it0.id}-0`, summary: 'Aufgabe anlegen', intent: { kind: 'toolCall', toolName: 'create_task', params: { title: 'Einkaufen' } }, status: 'planned' },
    ]);
    assert.ok(Date.parse(it0.startedAt) <= Date.parse(it0.finishedAt));

    const snap = await db.pool.query(`SELECT next_run_at, record FROM mana_ai.mission_snapshots WHERE user_id = 'u1' AND mission_id = 'm1'`);
    assert.equal(snap.rows[0].next_run_at.getTime(), next);
    assert.equal(snap.rows[0].record.iterations.length, 1);
    const runs = await db.pool.query(`SELECT status, attempts, iteration_id, due_at FROM mana_ai.mission_runs WHERE mission_id = 'm1'`);
    assert.deepEqual(runs.rows, [{ status: 'done', attempts: 1, iteration_id: it0.id, due_at: new Date(due) }]);
    // the prompt is German, carries the mission and asks for JSON
    const prompt = llm.requests.at(-1)!.body.messages;
    assert.equal(prompt[0]!.role, 'system');
    assert.match(prompt[1]!.content, /Wochenplanung/);
    assert.equal(llm.requests.at(-1)!.headers['authorization'], `Bearer ${SERVICE_KEY}`);
    // the written-back schedule reaches the wheel by its notification, which may arrive after the run event
    await until(daemon.reactor!, 'scheduled', () => daemon.reactor!.scheduledDue(Number(ev.sid)) === next, 10_000);
  });

  it('a mission due when its notification arrives is admitted while the notification is handled, not at the wheel\'s next wake-up', async () => {
    // The order of the reactor's events for each sid: 'fired' (admitted) before 'scheduled' (the
    // notification handled) means no wait for the wheel; a mission due later keeps the wheel's order.
    const order: string[] = [];
    const onFired = (sid: number) => order.push(`fired ${sid}`);
    const onScheduled = (e: { sid: number; dueMs: number | null }) => order.push(`scheduled ${e.sid}`);
    daemon.reactor!.on('fired', onFired);
    daemon.reactor!.on('scheduled', onScheduled);
    try {
      await pushChange(db.pool, { userId: 'u-now', recordId: 'm-now', op: 'insert', data: webappMission({ id: 'm-now', nextRunAt: iso(Date.now() - 1000) }) });
      await pushChange(db.pool, { userId: 'u-now', recordId: 'm-soon', op: 'insert', data: webappMission({ id: 'm-soon', nextRunAt: iso(Date.now() + 300) }) });
      const now = await runOf(daemon, 'm-now');
      const soon = await runOf(daemon, 'm-soon');
      const at = (what: string) => order.indexOf(what);
      assert.ok(at(`fired ${now.sid}`) >= 0 && at(`fired ${now.sid}`) < at(`scheduled ${now.sid}`), `due now: ${order.join(', ')}`);
      assert.ok(at(`scheduled ${soon.sid}`) >= 0 && at(`scheduled ${soon.sid}`) < at(`fired ${soon.sid}`), `due later: ${order.join(', ')}`);
    } finally {
      daemon.reactor!.off('fired', onFired);
      daemon.reactor!.off('scheduled', onScheduled);
    }
  });

  it('every log line of a run carries userId, missionId and iterationId, each key once', async () => {
    await pushChange(db.pool, { userId: 'u-log', recordId: 'm-log', op: 'insert', data: webappMission({ id: 'm-log', nextRunAt: iso(Date.now() - 1000) }) });
    const ev = await runOf(daemon, 'm-log');
    assert.equal(ev.outcome, 'planned');
    const about = daemon.logs.filter((l) => l.includes('"m-log"'));
    const msgs = about.map((l) => JSON.parse(l).msg as string);
    // the run's lines: from its start to its write-back, the planner's (debug) among them
    const first = msgs.indexOf('run started');
    const last = msgs.indexOf('run written back');
    assert.ok(first >= 0 && last > first && msgs.slice(first, last).includes('prompt built'), `the run's lines (saw ${msgs.join(' | ')})`);
    const lines = about.slice(first, last + 1);
    for (const l of lines) {
      for (const key of ['userId', 'missionId', 'iterationId']) assert.equal(l.split(`"${key}":`).length - 1, 1, `${key} once in ${l.slice(0, 200)}`);
      assert.equal(JSON.parse(l).iterationId, ev.iteration!.id);
    }
  });

  it('does not run paused, deleted or done missions, nor a mission at a time it moved away from; runs one moved earlier', async () => {
    const t = Date.now();
    const mk = (id: string, over: Record<string, unknown>) => pushChange(db.pool, { userId: 'u2', recordId: id, op: 'insert', data: webappMission({ id, ...over }) });
    await mk('paused', { state: 'paused', nextRunAt: iso(t + 300) });
    await mk('done', { state: 'done', nextRunAt: iso(t + 300) });
    await mk('deleted', { nextRunAt: iso(t + 300) });
    await pushChange(db.pool, { userId: 'u2', recordId: 'deleted', op: 'delete', data: { deletedAt: iso(t + 1) } });
    await mk('later', { nextRunAt: iso(t + 600), updatedAt: iso(t - 1000) });
    await pushChange(db.pool, { userId: 'u2', recordId: 'later', op: 'update', data: { nextRunAt: iso(t + 3_600_000) }, fieldTimestamps: { nextRunAt: iso(t) } });
    await mk('earlier', { nextRunAt: iso(t + 3_600_000), updatedAt: iso(t - 1000) });
    await pushChange(db.pool, { userId: 'u2', recordId: 'earlier', op: 'update', data: { nextRunAt: iso(t + 900) }, fieldTimestamps: { nextRunAt: iso(t) } });
    await mk('sentinel', { nextRunAt: iso(t + 1500) });

    const earlier = await daemon.waitForRun((e) => e.missionId === 'earlier');
    assert.equal(earlier.outcome, 'planned');
    assert.equal(earlier.dueMs, t + 900);
    await daemon.waitForRun((e) => e.missionId === 'sentinel');
    const runs = await db.pool.query(`SELECT mission_id FROM mana_ai.mission_runs WHERE user_id = 'u2' ORDER BY mission_id`);
    assert.deepEqual(runs.rows.map((r) => r.mission_id), ['earlier', 'sentinel']);
    assert.equal(daemon.events.filter((e) => ['paused', 'done', 'deleted', 'later'].includes(e.missionId ?? '')).length, 0);
  });

  it('keeps a mission due in 40 days in the wheel without firing it', async () => {
    const due = Date.now() + 40 * 86_400_000;
    await pushChange(db.pool, { userId: 'u3', recordId: 'far', op: 'insert', data: webappMission({ id: 'far', nextRunAt: iso(due) }) });
    const sid = (await db.pool.query(`SELECT sid FROM mana_ai.mission_snapshots WHERE mission_id = 'far'`)).rows[0].sid;
    await until(daemon.reactor!, 'scheduled', () => daemon.reactor!.scheduledDue(sid) === due, 10_000);
    const health = await fetch(`http://127.0.0.1:${daemon.port}/health`).then((r) => r.json() as Promise<any>);
    assert.ok(health.missionsScheduled >= 1);
    assert.equal(daemon.events.some((e) => e.missionId === 'far'), false);
  });

  it('retries a 500 and writes one iteration; writes a failed iteration for garbage, reschedules, and keeps planning the others', async () => {
    let calls = 0;
    llm.setScript((req) => {
      const user = req.body.messages[1]!.content;
      if (user.includes('flaky')) {
        calls += 1;
        return calls === 1 ? { status: 500, content: 'boom' } : { content: planAnswer('nach Fehler') };
      }
      if (user.includes('garbage')) return { content: 'Ich weiß es nicht.' };
      return { content: planAnswer() };
    });
    const t = Date.now();
    await pushChange(db.pool, { userId: 'u4', recordId: 'flaky', op: 'insert', data: webappMission({ id: 'flaky', title: 'flaky', nextRunAt: iso(t + 200) }) });
    await pushChange(db.pool, { userId: 'u4', recordId: 'garbage', op: 'insert', data: webappMission({ id: 'garbage', title: 'garbage', nextRunAt: iso(t + 200), cadence: { kind: 'daily', atHour: 9, atMinute: 0 } }) });
    await pushChange(db.pool, { userId: 'u4', recordId: 'fine', op: 'insert', data: webappMission({ id: 'fine', title: 'fine', nextRunAt: iso(t + 250) }) });
    const [flaky, garbage, fine] = await Promise.all(['flaky', 'garbage', 'fine'].map((m) => daemon.waitForRun((e) => e.missionId === m)));
    assert.equal(flaky!.outcome, 'planned');
    assert.equal(calls, 2);
    const flakyRows = await db.pool.query(`SELECT data FROM sync_changes WHERE client_id = 'mana-ai-runner' AND record_id = 'flaky'`);
    assert.equal(flakyRows.rows.length, 1);
    assert.equal(flakyRows.rows[0].data.iterations.length, 1);

    assert.equal(garbage!.outcome, 'failed');
    assert.equal(garbage!.iteration!.overallStatus, 'failed');
    assert.match(garbage!.iteration!.summary, /Planer/);
    assert.equal(garbage!.iteration!.source, 'server');
    assert.ok(garbage!.nextRunAtMs! > Date.now(), 'rescheduled');
    const nineBerlin = new Intl.DateTimeFormat('de-DE', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit' }).format(new Date(garbage!.nextRunAtMs!));
    assert.equal(nineBerlin, '09:00');
    assert.equal(fine!.outcome, 'planned');
    const metrics = await fetch(`http://127.0.0.1:${daemon.port}/metrics`).then((r) => r.text());
    assert.match(metrics, /mana_ai_parse_failures_total\{service="mana-ai"\} [1-9]/);
    llm.setScript(() => ({ content: planAnswer() }));
  });

  it('skips an unreadable mission once, with a metric, and never loops on it', async () => {
    await pushChange(db.pool, { userId: 'u5', recordId: 'weird', op: 'insert', data: webappMission({ id: 'weird', cadence: { kind: 'fortnightly' }, nextRunAt: iso(Date.now() + 100) }) });
    const ev = await daemon.waitForRun((e) => e.missionId === 'weird');
    assert.equal(ev.outcome, 'skipped');
    const runs = await db.pool.query(`SELECT status, error FROM mana_ai.mission_runs WHERE mission_id = 'weird'`);
    assert.deepEqual(runs.rows, [{ status: 'skipped', error: 'cadence-unreadable' }]);
    // Still due "now" in the snapshot, but the claim says this due time is finished.
    assert.equal(await daemon.reactor!.enqueue(ev.sid, ev.dueMs), 'finished');
    assert.equal(daemon.events.filter((e) => e.missionId === 'weird').length, 1);
  });

  it('counts a mission change the trigger could not fold as it happens (NOTIFY, no polling)', async () => {
    const seen = new Promise<number | null>((resolve) => daemon.reactor!.once('snapshot-error', resolve));
    await pushChange(db.pool, { userId: 'u6', recordId: 'not-an-object', op: 'insert', data: ['a', 'list'] });
    const errorId = await seen;
    const row = await db.pool.query(`SELECT id::int AS id, record_id, error FROM mana_ai.snapshot_errors WHERE record_id = 'not-an-object'`);
    assert.equal(row.rowCount, 1, 'the insert committed and the error was recorded');
    assert.equal(errorId, row.rows[0].id, 'the notification names the error row');
    const metrics = await fetch(`http://127.0.0.1:${daemon.port}/metrics`).then((r) => r.text());
    assert.match(metrics, /mana_ai_snapshot_errors_total\{service="mana-ai"\} 1\b/);
    assert.ok(daemon.logs.some((l) => l.includes('could not fold a mission change') && l.includes(`"snapshotErrorId":${errorId}`)));
  });

  it('a listener of its events that throws or rejects changes nothing: the run is admitted, planned and written once, later listeners still hear it', async () => {
    const r = daemon.reactor!;
    const broken: [event: 'fired' | 'run-started' | 'run-finished', listener: () => unknown][] = [
      ...(['fired', 'run-started', 'run-finished'] as const).map((event) => [event, () => {
        throw new Error(`listener of ${event} broke`);
      }] as [typeof event, () => unknown]),
      ['run-finished', async () => {
        throw new Error('async listener of run-finished broke');
      }],
    ];
    // Before the harness's own run-finished listener, so a thrown error would keep it from hearing the run.
    for (const [event, listener] of broken) r.prependListener(event, listener);
    try {
      await pushChange(db.pool, { userId: 'u7', recordId: 'heard', op: 'insert', data: webappMission({ id: 'heard', nextRunAt: iso(Date.now() + 300) }) });
      const ev = await Promise.race([
        daemon.waitForRun((e) => e.missionId === 'heard'),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the run was never heard of: a throwing listener stopped it')), 20_000).unref()),
      ]);
      assert.equal(ev.outcome, 'planned');
      const runs = await db.pool.query(`SELECT status FROM mana_ai.mission_runs WHERE mission_id = 'heard'`);
      assert.deepEqual(runs.rows, [{ status: 'done' }]);
      const written = await db.pool.query(`SELECT count(*)::int AS n FROM sync_changes WHERE client_id = 'mana-ai-runner' AND record_id = 'heard'`);
      assert.equal(written.rows[0].n, 1, 'one write-back, no failed iteration after it');
      const counted = async () => (await daemon.metrics.registry.getSingleMetricAsString('mana_ai_event_listener_errors_total'));
      // the async listener's rejection arrives a tick later
      for (let i = 0; i < 50 && !/event="run-finished"[^\n]* 2\b/.test(await counted()); i++) await new Promise((res) => setImmediate(res));
      const text = await counted();
      for (const [event, n] of [['fired', 1], ['run-started', 1], ['run-finished', 2]] as const) {
        assert.match(text, new RegExp(`mana_ai_event_listener_errors_total\\{event="${event}"[^}]*\\} ${n}\\b`), `${event}: ${text}`);
      }
      assert.ok(daemon.logs.some((l) => l.includes('a listener of this event threw') && l.includes('listener of fired broke')));
    } finally {
      for (const [event, listener] of broken) r.removeListener(event, listener);
    }
  });

  it('serves the HTTP surface: health, metrics, tick and missions behind the service key, JSON errors', async () => {
    const base = `http://127.0.0.1:${daemon.port}`;
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    const h = (await health.json()) as any;
    assert.equal(h.ok, true);
    assert.equal(h.service, 'mana-ai');
    assert.equal(typeof h.version, 'string');
    assert.equal(h.listenerConnected, true);
    const metrics = await fetch(`${base}/metrics`).then((r) => r.text());
    for (const name of ['mana_ai_plans_produced_total', 'mana_ai_plans_written_back_total', 'mana_ai_due_lag_seconds_bucket', 'mana_ai_missions_scheduled', 'mana_ai_process_cpu_user_seconds_total', 'mana_ai_runs_in_flight']) {
      assert.ok(metrics.includes(name), name);
    }
    assert.equal((await fetch(`${base}/internal/tick`, { method: 'POST' })).status, 401);
    assert.equal((await fetch(`${base}/internal/tick`, { method: 'POST', headers: { 'x-service-key': 'wrong' } })).status, 401);
    const tick = await fetch(`${base}/internal/tick`, { method: 'POST', headers: { 'x-service-key': SERVICE_KEY } });
    assert.equal(tick.status, 200);
    assert.equal(typeof ((await tick.json()) as any).counts.due, 'number');
    const missions = await fetch(`${base}/internal/missions/u1`, { headers: { 'x-service-key': SERVICE_KEY } }).then((r) => r.json() as Promise<any>);
    assert.equal(missions.missions[0].mission_id, 'm1');
    assert.equal(missions.runs[0].status, 'done');
    const nf = await fetch(`${base}/nope`);
    assert.equal(nf.status, 404);
    assert.equal(((await nf.json()) as any).error, 'not-found');
    assert.equal((await fetch(`${base}/health`, { method: 'POST' })).status, 405);
    const big = await fetch(`${base}/internal/tick`, { method: 'POST', headers: { 'x-service-key': SERVICE_KEY }, body: 'x'.repeat(100_000) });
    assert.equal(big.status, 413);
  });
});
