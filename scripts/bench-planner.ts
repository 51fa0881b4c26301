// `npm run bench:planner`: what checking plans costs (issue 19). Pure CPU:
// parse + validate + dedupe of a 5-step plan per generation, plans per
// second and microseconds per plan; and what a repair round costs: the
// second request to a local OpenAI-compatible stand-in (real HTTP through
// the runner's undici client) and the prompt it sends, in characters and
// estimated tokens, against the first request.

import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { catalogFor } from '../src/planner/catalog/index.js';
import { checkPlan, offerOf, repairRequest } from '../src/planner/check-plan.js';
import { LlmClient } from '../src/planner/llm-client.js';
import { parsePlan } from '../src/planner/parse-plan.js';
import { buildMessages, type ChatMessage } from '../src/planner/prompt.js';
import { estimateTokens } from '../src/planner/plan-mission.js';
import { readMission } from '../src/mission/mission.js';
import { machine, percentile } from './lib/bench-db.js';

const { values } = parseArgs({ options: { plans: { type: 'string', default: '200000' }, requests: { type: 'string', default: '200' }, help: { type: 'boolean', default: false } } });
if (values.help) {
  console.log('usage: npm run bench:planner -- [--plans N] [--requests M]\nValidation cost per plan (both generations) and the cost of one repair round.');
  process.exit(0);
}
const PLANS = Number(values.plans);

const plans = {
  'v0.4': [
    { summary: 'a', toolName: 'create_task', params: { title: 'Einkaufen', dueDate: '2026-05-04', priority: 'high' }, rationale: 'r' },
    { summary: 'b', toolName: 'create_event', params: { title: 'Zahnarzt', startTime: '2026-05-04T09:00:00Z', endTime: '2026-05-04T10:00:00Z', isAllDay: 'false' }, rationale: 'r' },
    { summary: 'c', toolName: 'create_place', params: { name: 'Café', latitude: '52.5', longitude: 13.4, category: 'cafe' }, rationale: 'r' },
    { summary: 'd', toolName: 'complete_tasks_by_title', params: { titleSubstring: 'Milch' }, rationale: 'r' },
    { summary: 'e', toolName: 'undo_drink', params: {}, rationale: 'r' },
  ],
  head: [
    { summary: 'a', toolName: 'create_task', params: { title: 'Einkaufen', dueDate: '2026-05-04' }, rationale: 'r' },
    { summary: 'b', toolName: 'create_invoice', params: { clientName: 'ACME', currency: 'EUR', dueDate: '2026-06-01', lines: [{ title: 'x', quantity: 1, unitPrice: 2 }] }, rationale: 'r' },
    { summary: 'c', toolName: 'log_mood', params: { level: '7', emotion: 'happy' }, rationale: 'r' },
    { summary: 'd', toolName: 'create_last', params: { title: 'x', date: '2026-13-01' }, rationale: 'r' },
    { summary: 'e', toolName: 'create_task', params: { title: 'Einkaufen', dueDate: '2026-05-04' }, rationale: 'r' },
  ],
};

console.log(`bench:planner; ${machine()}`);
for (const g of ['v0.4', 'head'] as const) {
  const offer = offerOf(catalogFor(g), []);
  const answer = '```json\n' + JSON.stringify({ summary: 'Plan', steps: plans[g] }) + '\n```';
  let sink = 0;
  for (let i = 0; i < 2_000; i++) sink += checkPlan((parsePlan(answer) as { ok: true; plan: never }).plan, offer).valid.length; // warm-up
  const t = performance.now();
  for (let i = 0; i < PLANS; i++) {
    const p = parsePlan(answer);
    if (p.ok) sink += checkPlan(p.plan, offer).valid.length;
  }
  const ms = performance.now() - t;
  const checkOnly = (() => {
    const p = parsePlan(answer);
    if (!p.ok) return 0;
    const t2 = performance.now();
    for (let i = 0; i < PLANS; i++) sink += checkPlan(p.plan, offer).valid.length;
    return performance.now() - t2;
  })();
  console.log(`${g}: parse + validate a 5-step plan (${catalogFor(g).length} tools offered): ${(ms * 1000 / PLANS).toFixed(1)} µs a plan (${Math.round(PLANS / (ms / 1000)).toLocaleString('en')} plans/s); validation alone ${(checkOnly * 1000 / PLANS).toFixed(1)} µs (sink ${sink % 7})`);
}

// A repair round: one more request, with the first answer and the problems.
const llm = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: '{"summary":"x","steps":[]}' } }] }));
  });
});
await new Promise<void>((r) => llm.listen(0, '127.0.0.1', r));
const client = new LlmClient({ baseUrl: `http://127.0.0.1:${(llm.address() as { port: number }).port}`, serviceKey: 'k', model: 'm', temperature: 0.2, timeoutMs: 5_000, maxAttempts: 1, retryBaseMs: 1 });
const read = readMission({ id: 'm', title: 'Wochenplanung', objective: 'Jede Woche planen', conceptMarkdown: '# Plan', inputs: [], cadence: { kind: 'interval', everyMinutes: 60 }, state: 'active', iterations: [] });
if (!read.ok) throw new Error('mission');
for (const g of ['v0.4', 'head'] as const) {
  const first = buildMessages(read.mission, [], catalogFor(g), new Date());
  const answer = '```json\n' + JSON.stringify({ summary: 'Plan', steps: plans[g] }) + '\n```';
  const p = parsePlan(answer);
  if (!p.ok) throw new Error('plan');
  const invalid = checkPlan(p.plan, offerOf(catalogFor(g), [])).invalid;
  const repair: ChatMessage[] = [...first, { role: 'assistant', content: answer }, { role: 'user', content: repairRequest(invalid) }];
  const times: number[] = [];
  for (let i = 0; i < Number(values.requests); i++) {
    const t = performance.now();
    await client.complete(repair);
    times.push(performance.now() - t);
  }
  const chars = (ms: ChatMessage[]) => ms.reduce((n, m) => n + (m.content?.length ?? 0), 0);
  console.log(`${g}: repair round for ${invalid.length} invalid step(s): prompt ${chars(repair).toLocaleString('en')} chars (first request ${chars(first).toLocaleString('en')}), ~${estimateTokens(repair, '')} tokens at 4 chars a token (first ~${estimateTokens(first, '')}); request overhead against a local stand-in p50 ${percentile(times, 50).toFixed(2)} ms, p99 ${percentile(times, 99).toFixed(2)} ms (the model's own time comes on top)`);
}
await client.close();
llm.close();
