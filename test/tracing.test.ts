// OpenTelemetry: with no endpoint nothing is loaded, sent or timed; with an
// OTLP/HTTP endpoint (a receiver inside the test) one run arrives as a
// `mission.run` span with claim, input resolution, LLM request and
// write-back as its children, ids and times but no user content, and the
// stand-in LLM sees a `traceparent` of that trace, naming the LLM span.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, it } from 'node:test';
import { otelSdkLoaded, userIdHash } from '../src/tracing/tracing.js';
import { pushChange, webappMission } from './harness/changes.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { startLlmServer, type LlmServer } from './harness/llm-server.js';
import { runOf, startTestDaemon, type TestDaemon } from './harness/daemon.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: { key: string; value: { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean } }[];
}

let db: TestDb;
let llm: LlmServer;
let receiver: Server;
let receiverUrl: string;
const exports: { path: string; body: string }[] = [];

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      exports.push({ path: req.url ?? '', body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const a = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
});
after(async () => {
  await llm?.close();
  await new Promise<void>((r) => receiver?.close(() => r()));
  await db?.drop();
});

const spansOf = (): OtlpSpan[] =>
  exports.flatMap((e) => (JSON.parse(e.body) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] }).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : (v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? v.boolValue)));
};
async function eventually(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('without an endpoint: no SDK loaded, no exporter, no traceparent sent, no span timer', async () => {
  const handlesBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const daemon: TestDaemon = await startTestDaemon(db.daemonUrl, llm.url);
  try {
    assert.equal(daemon.tracing.enabled, false);
    await pushChange(db.pool, { userId: 'u-off', recordId: 'm-off', op: 'insert', data: webappMission({ id: 'm-off', nextRunAt: new Date(Date.now() + 300).toISOString() }) });
    assert.equal((await runOf(daemon, 'm-off')).outcome, 'planned');
    assert.equal(otelSdkLoaded(), false, 'the OTel SDK was never imported');
    const req = llm.requests.at(-1)!;
    assert.equal(req.headers['traceparent'], undefined, 'no trace context sent to mana-llm');
    assert.equal(exports.length, 0);
    // the daemon's own timers (wheel, listener check) exist either way; none is added for tracing
    assert.ok(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length - handlesBefore < 10);
  } finally {
    await daemon.stop();
  }
});

it('with OTEL_EXPORTER_OTLP_ENDPOINT: the spans of one run, parented, with ids and no content; mana-llm gets the trace\'s traceparent', async () => {
  const daemon = await startTestDaemon(db.daemonUrl, llm.url, { OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl, OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_SERVICE_NAME: 'mana-ai-test' });
  try {
    assert.equal(daemon.tracing.enabled, true);
    const dueMs = Date.now() + 500;
    await pushChange(db.pool, {
      userId: 'user-traced', recordId: 'm-traced', op: 'insert',
      data: webappMission({ id: 'm-traced', title: 'Geheimer Titel', objective: 'Geheimes Ziel', nextRunAt: new Date(dueMs).toISOString() }),
    });
    assert.equal((await runOf(daemon, 'm-traced')).outcome, 'planned');
    await eventually(() => spansOf().some((s) => s.name === 'mission.write_back'), 'the run\'s spans exported');

    assert.ok(exports.every((e) => e.path === '/v1/traces'), 'OTLP/HTTP traces path');
    const spans = spansOf();
    const run = spans.find((s) => s.name === 'mission.run' && attr(s, 'mission.id') === 'm-traced')!;
    assert.ok(run, 'a mission.run span for the mission');
    assert.equal(run.parentSpanId || undefined, undefined, 'the run span is a root');
    for (const name of ['mission.claim', 'mission.resolve_inputs', 'llm.request', 'mission.write_back']) {
      const child = spans.find((s) => s.name === name && s.traceId === run.traceId);
      assert.ok(child, `${name} in the run's trace`);
      assert.equal(child.parentSpanId, run.spanId, `${name} is a child of mission.run`);
    }
    assert.equal(attr(run, 'user.id_hash'), userIdHash('user-traced'));
    assert.equal(attr(run, 'mission.due'), new Date(dueMs).toISOString());
    assert.equal(attr(run, 'mission.outcome'), 'planned');
    assert.equal(typeof attr(run, 'mission.lag_ms'), 'number');
    assert.equal(typeof attr(run, 'mission.sid'), 'number');
    // nothing of the user's content or identity on any span
    const all = JSON.stringify(spans);
    for (const secret of ['Geheimer Titel', 'Geheimes Ziel', 'user-traced', 'Einkaufen', 'Kühlschrank']) assert.ok(!all.includes(secret), `no "${secret}" on a span`);

    const llmSpan = spans.find((s) => s.name === 'llm.request' && s.traceId === run.traceId)!;
    const sent = llm.requests.find((r) => r.body.messages.some((m) => m.content.includes('Geheimer Titel')))!;
    assert.equal(sent.headers['traceparent'], `00-${run.traceId}-${llmSpan.spanId}-01`, 'mana-llm continues the run\'s trace from the LLM span');

    const reschedules = spans.filter((s) => s.name === 'mission.reschedule' && attr(s, 'mission.sid') === attr(run, 'mission.sid'));
    assert.ok(reschedules.length >= 2, 'a span for the insert\'s notification and one for the write-back\'s');
    assert.ok(reschedules.some((s) => attr(s, 'mission.due') === new Date(dueMs).toISOString()));
  } finally {
    await daemon.stop();
  }
});
