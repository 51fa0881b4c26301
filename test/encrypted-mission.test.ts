// Mission texts that arrive encrypted (issue 21, item 5; CONTRACT.md
// section 12): a mission whose title, objective and concept are `enc:1:`
// values is planned with neutral placeholders; the ciphertext reaches
// neither the LLM, nor a span exported to an OTLP receiver in the test, nor
// a log line (also the suite's leak scan), nor the row's actor; counted by
// field.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, it } from 'node:test';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { registerSecret } from './harness/log-capture.js';
import { runOf, startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;
let receiver: Server;
/** every OTLP/HTTP export the daemon made, as received */
const exported: string[] = [];

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer(() => ({ content: planAnswer('Plan', []) }));
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      exported.push(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const port = (receiver.address() as { port: number }).port;
  daemon = await startTestDaemon(db.daemonUrl, llm.url, {
    MANA_AI_WEBAPP: 'head', // head: the actor carries the objective
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await new Promise<void>((r) => receiver?.close(() => r()));
  await db?.drop();
});

it('enc:1: title, objective and concept: planned with placeholders, the ciphertext in no request, span, log line or actor; counted by field', async () => {
  const enc = {
    title: 'enc:1:dGl0bGUtaXYtMTI=.dGl0bGUtY2lwaGVydGV4dC1uZXZlci1zZW50',
    objective: 'enc:1:b2JqLWl2LTEyMzQ=.b2JqZWN0aXZlLWNpcGhlcnRleHQtbmV2ZXItc2VudA==',
    conceptMarkdown: 'enc:1:Y29uY2VwdC1pdg==.Y29uY2VwdC1jaXBoZXJ0ZXh0LW5ldmVyLXNlbnQ=',
  };
  for (const [field, value] of Object.entries(enc)) registerSecret(`encrypted mission ${field}`, value);
  await pushChange(db.pool, { userId: 'u-enc', recordId: 'm-enc', op: 'insert', data: webappMission({ id: 'm-enc', ...enc, nextRunAt: new Date(Date.now() + 50).toISOString() }) });
  const ev = await runOf(daemon, 'm-enc');
  assert.equal(ev.outcome, 'planned');
  const sent = JSON.stringify(llm.requests.map((r) => r.body));
  assert.ok(!sent.includes('enc:1:'), 'no ciphertext sent to the LLM');
  assert.match(sent, /\(Titel verschlüsselt\)/);
  assert.ok(!daemon.logs.some((l) => l.includes('enc:1:')), 'no ciphertext in a log line');
  assert.ok(!(ev.title ?? '').includes('enc:1:'), 'nor in the run event');
  const row = (await db.pool.query(`SELECT actor FROM sync_changes WHERE record_id = 'm-enc' AND client_id = 'mana-ai-runner'`)).rows[0];
  assert.ok(!JSON.stringify(row.actor).includes('enc:1:'), `the actor's rationale holds no ciphertext: ${JSON.stringify(row.actor)}`);
  await eventually(() => exported.some((b) => b.includes('mission.write_back')), "the run's spans exported");
  assert.ok(!exported.some((b) => b.includes('enc:1:')), 'no ciphertext in an exported span');
  const counted = await daemon.metrics.registry.getSingleMetricAsString('mana_ai_encrypted_mission_fields_total');
  for (const field of ['title', 'objective', 'conceptMarkdown']) assert.match(counted, new RegExp(`field="${field}",service="mana-ai"\\} 1`));
});

it('any enc:<n>: version is ciphertext (issue 27): enc:2: and enc:17: mission texts never reach the LLM, a log line or the actor', async () => {
  const enc = {
    title: 'enc:2:dGl0bGUtdjItaXY=.dGl0bGUtdjItY2lwaGVydGV4dA==',
    objective: 'enc:17:b2JqLXYxNw==.b2JqZWN0aXZlLXYxNy1jaXBoZXJ0ZXh0',
  };
  for (const [field, value] of Object.entries(enc)) registerSecret(`encrypted mission ${field} (later version)`, value);
  const before = llm.requests.length;
  await pushChange(db.pool, { userId: 'u-enc', recordId: 'm-enc2', op: 'insert', data: webappMission({ id: 'm-enc2', ...enc, nextRunAt: new Date(Date.now() + 50).toISOString() }) });
  const ev = await runOf(daemon, 'm-enc2');
  assert.equal(ev.outcome, 'planned');
  const sent = JSON.stringify(llm.requests.slice(before).map((r) => r.body));
  assert.ok(!/enc:(2|17):/.test(sent), 'no ciphertext of any version sent to the LLM');
  assert.ok(!daemon.logs.some((l) => /enc:(2|17):/.test(l)), 'nor in a log line');
  const row = (await db.pool.query(`SELECT actor FROM sync_changes WHERE record_id = 'm-enc2' AND client_id = 'mana-ai-runner'`)).rows[0];
  assert.ok(!/enc:(2|17):/.test(JSON.stringify(row.actor)));
});
