// `npm run demo`: the real daemon on an embedded PostgreSQL with a demo
// user's missions, narrated one line per event. Uses MANA_LLM_URL when set,
// otherwise a built-in OpenAI-compatible stand-in (announced on screen).
// Right after Postgres starts it prints the database URL with a ready
// psql and `npm run inspect` line, so the SQL views can be watched while
// the demo runs. Every time on screen is in one zone (MANA_AI_TIMEZONE,
// default Europe/Berlin), named once at the top; the daemon plans in the
// same zone, so "daily at 9" runs at 09:00 there.
// Ctrl-C stops everything and removes the temporary data; `--keep` leaves
// Postgres running after the daemon stopped.
//
// Two agents show the gates of issue 12: "Sparfuchs" has a daily budget of
// 1,000 tokens and three missions (the stand-in reports 600 tokens per
// answer: two run, the third waits, and the line says until when);
// "Nachtschicht" is paused with a mission due, and the demo resumes it a
// few seconds later.
//
// One mission reads an encrypted note through a v2 grant (issue 29): the
// demo plays the webapp and mana-auth with the reference module (grant-v2/):
// a master key for the demo user, the note written as `enc:2:` values, a
// grant for the runner's key (made for this demo only). The narration says
// what the audit recorded and what the planner saw.
//
// One mission researches news (issue 31): without MANA_SEARCH_URL a small
// mana-search stand-in answers with three made-up headlines (announced on
// screen); the narration says what the run found and what the plan used.

import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Writable } from 'node:stream';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { nextRunAfter } from '../src/mission/cadence.js';
import { startDaemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import type { RunEvent } from '../src/reactor/reactor.js';
import { startEmbeddedPostgres } from './lib/embedded-pg.js';
import { createSyncDatabase } from './lib/sync-database.js';
import * as grantV2 from '../grant-v2/index.js';

const { values } = parseArgs({ options: { keep: { type: 'boolean', default: false }, help: { type: 'boolean', default: false }, 'exit-after': { type: 'string' } } });
if (values.help) {
  console.log(`usage: npm run demo [-- --keep] [-- --exit-after SECONDS]

Starts an embedded PostgreSQL, creates mana_sync with mana-sync's table,
starts the real mana-ai daemon against it, seeds a demo user's missions and
prints what happens. MANA_LLM_URL (and MANA_SERVICE_KEY) pick a real
mana-llm; without it a built-in stand-in answers with valid plans.
  --keep           leave Postgres running on exit (its URL, with a psql and
                   an inspect line, is printed as soon as it starts)
MANA_AI_TIMEZONE picks the zone of the screen and of the daemon's cadences
(default Europe/Berlin).
  --exit-after S   stop by itself after S seconds (for scripts)`);
  process.exit(0);
}

// One zone for the screen and the daemon's cadence maths.
const zone = process.env['MANA_AI_TIMEZONE'] || 'Europe/Berlin';
const t0 = Date.now();
const clock = new Intl.DateTimeFormat('de-DE', { timeZone: zone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
const stamp = () => `[${clock.format(new Date())} +${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`;
const say = (line: string) => console.log(`${stamp()} ${line}`);
const dateTime = new Intl.DateTimeFormat('de-DE', { timeZone: zone, dateStyle: 'short', timeStyle: 'medium' });
const local = (ms: number | null | undefined) => (ms == null ? 'never' : dateTime.format(new Date(ms)));

say(`all times on this screen are ${zone} time (MANA_AI_TIMEZONE); the daemon plans cadences in the same zone`);
say('starting an embedded PostgreSQL …');
const server = await startEmbeddedPostgres();
// The daemon applies the migrations itself at start, as in production.
const url = await createSyncDatabase(server.url, 'mana_sync', { migrate: false });
say(`PostgreSQL ready on port ${server.port} (data in ${server.dir}), database mana_sync with mana-sync's table`);
say(`database URL: ${url}`);
say(`  look inside while the demo runs: psql '${url}' -c 'SELECT * FROM mana_ai.mission_schedule'`);
say(`                               or: npm run inspect -- --url '${url}'`);

let stub: ReturnType<typeof createServer> | null = null;
let noteSeen: string | null = null;
let llmUrl = process.env['MANA_LLM_URL'];
if (!llmUrl) {
  let n = 0;
  stub = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      n += 1;
      const prompt = JSON.parse(body).messages[1].content as string;
      const title = /Mission: <<<NUTZERDATEN\n([^\n]*)/.exec(prompt)?.[1] ?? 'Mission';
      // what the planner saw of the encrypted note, for the narration
      noteSeen ??= /\[notes\/notes\/demo-note-1\] <<<NUTZERDATEN\n([^\n]*)/.exec(prompt)?.[1] ?? null;
      const plan = { summary: `Vorschlag ${n} für „${title}“`, steps: [{ summary: `Aufgabe zu „${title}“ anlegen`, toolName: 'create_task', params: { title: `${title}: nächster Schritt` }, rationale: 'Damit es vorangeht' }] };
      res.writeHead(200, { 'content-type': 'application/json' });
      // 600 tokens per answer, so the demo's small budget runs out while you watch.
      res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: '```json\n' + JSON.stringify(plan) + '\n```' } }], usage: { total_tokens: 600 } }));
    });
  });
  await new Promise<void>((r) => stub!.listen(0, '127.0.0.1', r));
  const a = stub.address();
  llmUrl = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  say(`no MANA_LLM_URL set: using the built-in LLM stand-in at ${llmUrl} (it returns valid demo plans, not real ones)`);
} else {
  say(`using mana-llm at ${llmUrl}`);
}

const quiet = new Writable({ write: (_c, _e, cb) => cb() });
// mana-search: MANA_SEARCH_URL when set, else a stand-in with three made-up headlines.
let searchStub: ReturnType<typeof createServer> | null = null;
let searchUrl = process.env['MANA_SEARCH_URL'];
if (!searchUrl) {
  searchStub = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const hits = [1, 2, 3].map((i) => ({ url: `https://news.example/energiewende-${i}`, title: `Energiewende: Meldung ${i} (Demo)`, snippet: `Eine erfundene Meldung ${i} für die Demo.`, engine: 'demo', score: 1, category: 'news' }));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ results: hits, meta: { query: '', totalResults: 3, engines: ['demo'], duration: 1, cached: false, cacheKey: '' } }));
    });
  });
  await new Promise<void>((r) => searchStub!.listen(0, '127.0.0.1', r));
  const a = searchStub.address();
  searchUrl = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  say(`no MANA_SEARCH_URL set: using a mana-search stand-in at ${searchUrl} (three made-up headlines)`);
}

// The runner's key pair for mission grants, made for this demo only (production: MANA_AI_PRIVATE_KEY_PEM).
const runnerPair = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
const config = loadConfig({
  ...process.env, PORT: process.env['PORT'] ?? '0', SYNC_DATABASE_URL: url, MANA_LLM_URL: llmUrl, MANA_AI_MIN_RUN_GAP_MS: '30000', MANA_AI_TIMEZONE: zone,
  MANA_AI_PRIVATE_KEY_PEM: runnerPair.privateKey, MANA_SEARCH_URL: searchUrl,
});
const daemon = await startDaemon(config, createLogger({ level: 'warn', destination: quiet }));
say(`mana-ai daemon started: http://127.0.0.1:${daemon.port}/health and /metrics`);

const titles = new Map<number, string>();
const titleOf = async (sid: number) => {
  if (!titles.has(sid)) {
    const { rows } = await daemon.pool.query(`SELECT mana_ai.ts_text(record -> 'title') AS title FROM mana_ai.mission_snapshots WHERE sid = $1`, [sid]);
    titles.set(sid, rows[0]?.title ?? `mission #${sid}`);
  }
  return titles.get(sid)!;
};
daemon.reactor!.on('scheduled', (e: { sid: number; dueMs: number | null }) =>
  void titleOf(e.sid).then(
    (title) => say(`scheduled  ${title.padEnd(22)} next run ${local(e.dueMs)}`),
    () => say(`scheduled  mission #${e.sid} next run ${local(e.dueMs)}`),
  ),
);
daemon.reactor!.on('run-started', (e: { sid: number; title: string; dueMs: number }) => {
  titles.set(e.sid, e.title);
  say(`run start  ${e.title.padEnd(22)} due ${local(e.dueMs)}`);
});
const WHY: Record<string, string> = {
  'skipped-paused': 'its agent is paused; runs once the agent is active again',
  'skipped-archived': 'its agent is archived or deleted; it does not run',
  'skipped-concurrency': 'its agent already has as many runs in flight as it may; next when one ends',
  'skipped-budget': 'its agent has used up its daily token budget',
};
daemon.reactor!.on('agent-held', (e: { sid: number; decision: string }) =>
  void titleOf(e.sid).then((title) => say(`waits      ${title.padEnd(22)} ${WHY[e.decision] ?? e.decision}`)),
);
daemon.reactor!.on('budget-wait', (e: { sid: number; untilMs: number | null; used: number | null; budget: number | null }) =>
  void titleOf(e.sid).then((title) =>
    say(`waits      ${title.padEnd(22)} its agent used ${e.used ?? '?'} of ${e.budget ?? '?'} tokens in the last 24 h; ${e.untilMs === null ? 'waits until the budget is raised' : `may run again ${local(e.untilMs)}, when the oldest counted run leaves the window`}`),
  ),
);
let noteTold = false;
let newsTold = false;
daemon.reactor!.on('run-finished', (e: RunEvent) => {
  say(`run ${e.outcome.padEnd(6)} ${(e.title ?? '').padEnd(22)} ${e.iteration ? `„${e.iteration.summary}“ (${e.iteration.plan.length} step)` : ''} next run ${local(e.nextRunAtMs)}`);
  if (e.missionId === 'demo-news' && !newsTold) {
    newsTold = true;
    void tellNews(e.iteration?.summary ?? '').catch((error: Error) => say(`could not read the research: ${error.message}`));
  }
  if (e.missionId === 'demo-note' && !noteTold) {
    noteTold = true;
    void tellNote().catch((error: Error) => say(`could not read the decrypt audit: ${error.message}`));
  }
});

/** The news mission's research: what the run found (as GET /api/v1/me/ai-research shows it) and what the plan used. */
async function tellNews(summary: string) {
  const client = await daemon.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT set_config('app.current_user_id', 'demo-user', true)`);
    const { rows } = await client.query(`SELECT outcome, query, jsonb_array_length(sources) AS n FROM mana_ai.research_runs WHERE mission_id = 'demo-news' ORDER BY id`);
    await client.query('COMMIT');
    for (const r of rows) say(`research   Nachrichten            news for „${r.query}“: ${r.outcome}, ${r.n} sources from mana-search, fenced in the prompt as text from the web`);
  } finally {
    client.release();
  }
  const used = /\(Web-Recherche: [^)]*\)/.exec(summary)?.[0];
  if (used) say(`research   Nachrichten            the plan's summary says ${used}`);
}

/** The encrypted note's story: its audit row (as the user's data-access tab shows it) and what the planner saw. */
async function tellNote() {
  const client = await daemon.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT set_config('app.current_user_id', 'demo-user', true)`);
    const { rows } = await client.query(`SELECT table_name, record_id, status, reason FROM mana_ai.decrypt_audit WHERE mission_id = 'demo-note' ORDER BY id`);
    await client.query('COMMIT');
    for (const r of rows) say(`grant v2   Notiz lesen            audit row: ${r.table_name}/${r.record_id} ${r.status}${r.reason ? ` (${r.reason})` : ''}: stored as enc:2: in sync_changes, opened with the mission's v2 grant`);
  } finally {
    client.release();
  }
  say(noteSeen
    ? `grant v2   Notiz lesen            the planner saw the note decrypted: „${noteSeen}“`
    : 'grant v2   Notiz lesen            (with MANA_LLM_URL the prompt is mana-llm\'s; the audit row above says what was opened)');
}

// seed the demo user the way the webapp writes missions
const now = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();
const missions = [
  { id: 'demo-now', title: 'Sofort fällig', cadence: { kind: 'interval', everyMinutes: 60 }, state: 'active', nextRunAt: iso(now + 1000) },
  { id: 'demo-minute', title: 'Jede Minute', cadence: { kind: 'interval', everyMinutes: 1 }, state: 'active', nextRunAt: iso(now + 3000) },
  // computed as the webapp does: the next 09:00 in the user's zone
  { id: 'demo-daily', title: 'Täglich um 9', cadence: { kind: 'daily', atHour: 9, atMinute: 0 }, state: 'active', nextRunAt: iso(nextRunAfter({ kind: 'daily', atHour: 9, atMinute: 0 }, now, zone)!) },
  { id: 'demo-paused', title: 'Pausiert', cadence: { kind: 'interval', everyMinutes: 5 }, state: 'paused', nextRunAt: iso(now + 2000) },
];
const agents = [
  { id: 'demo-agent-spar', name: 'Sparfuchs', role: 'plant mit kleinem Budget', state: 'active', maxTokensPerDay: 1000 },
  { id: 'demo-agent-night', name: 'Nachtschicht', role: 'arbeitet, wenn man sie lässt', state: 'paused' },
];
const agentMissions = [
  { id: 'demo-spar-1', title: 'Sparfuchs 1', agentId: 'demo-agent-spar', nextRunAt: iso(now + 2000) },
  { id: 'demo-spar-2', title: 'Sparfuchs 2', agentId: 'demo-agent-spar', nextRunAt: iso(now + 2500) },
  { id: 'demo-spar-3', title: 'Sparfuchs 3', agentId: 'demo-agent-spar', nextRunAt: iso(now + 3000) },
  { id: 'demo-night', title: 'Nachtschicht', agentId: 'demo-agent-night', nextRunAt: iso(now + 1500) },
].map((m) => ({ ...m, cadence: { kind: 'interval', everyMinutes: 60 }, state: 'active' }));
missions.push(...agentMissions);
// The webapp's and mana-auth's part, with the reference module: the demo
// user's master key, a note written as enc:2: values, a v2 grant for it.
const masterKey = webcrypto.getRandomValues(new Uint8Array(32));
const vault = grantV2.createRecordKeys(await grantV2.importRecordKeyRoot(masterKey));
masterKey.fill(0);
const note = await grantV2.encryptRecord(vault, { userId: 'demo-user', table: 'notes', recordId: 'demo-note-1' },
  { id: 'demo-note-1', title: 'Einkaufsliste', content: 'Milch, Haferflocken und Äpfel für die Woche', createdAt: iso(now), updatedAt: iso(now) }, ['title', 'content'], 0);
const noteGrant = await grantV2.buildGrant({
  keys: vault, userId: 'demo-user', missionId: 'demo-note', records: [{ table: 'notes', id: 'demo-note-1', epoch: 0 }],
  runner: await grantV2.importRunnerPublicKey(runnerPair.publicKey),
});
missions.push({ id: 'demo-news', title: 'Nachrichten', cadence: { kind: 'interval', everyMinutes: 60 }, state: 'active', nextRunAt: iso(now + 2500),
  research: { mode: 'news', query: 'Energiewende' } } as (typeof missions)[number]);
missions.push({ id: 'demo-note', title: 'Notiz lesen', cadence: { kind: 'interval', everyMinutes: 60 }, state: 'active', nextRunAt: iso(now + 2000),
  inputs: [{ module: 'notes', table: 'notes', id: 'demo-note-1' }], grant: noteGrant } as (typeof missions)[number]);
const writer = new pg.Client({ connectionString: url });
// A terminal's Ctrl-C reaches postgres too: a dropped connection is expected then.
writer.on('error', () => {});
await writer.connect();
const pushAgent = async (id: string, data: Record<string, unknown>, op: 'insert' | 'update') => {
  const ts = iso(Date.now());
  await writer.query('BEGIN');
  await writer.query(`SELECT set_config('app.current_user_id', 'demo-user', true)`);
  await writer.query(
    `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
     VALUES ('ai', 'agents', $1, 'demo-user', $2, $3, $4, 'demo-webapp')`,
    [id, op, JSON.stringify(data), JSON.stringify(op === 'update' ? Object.fromEntries(Object.keys(data).map((k) => [k, ts])) : {})],
  );
  await writer.query('COMMIT');
};
for (const a of agents) {
  await pushAgent(a.id, { ...a, createdAt: iso(now), updatedAt: iso(now), maxConcurrentMissions: 1, policy: { tools: {}, defaultForAi: 'propose' } }, 'insert');
}
await writer.query('BEGIN');
await writer.query(`SELECT set_config('app.current_user_id', 'demo-user', true)`);
await writer.query(
  `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
   VALUES ('notes', 'notes', 'demo-note-1', 'demo-user', 'insert', $1, '{}', 'demo-webapp')`,
  [JSON.stringify(note)],
);
await writer.query('COMMIT');
for (const m of missions) {
  await writer.query('BEGIN');
  await writer.query(`SELECT set_config('app.current_user_id', 'demo-user', true)`);
  await writer.query(
    `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
     VALUES ('ai', 'aiMissions', $1, 'demo-user', 'insert', $2, '{}', 'demo-webapp')`,
    [m.id, JSON.stringify({ createdAt: iso(now), updatedAt: iso(now), objective: `${m.title}: Ziel`, conceptMarkdown: '', inputs: [], iterations: [], ...m })],
  );
  await writer.query('COMMIT');
  const { rows } = await writer.query(`SELECT sid FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [m.id]);
  titles.set(rows[0].sid, m.title);
}
say(`seeded demo-user with ${missions.length} missions (one due at once, one every minute, one daily, one paused, three of agent Sparfuchs with 1,000 tokens a day, one of the paused agent Nachtschicht, one reading an encrypted note through a v2 grant, one researching news); Ctrl-C to stop`);
// The user resumes the paused agent a little later, as from the webapp.
setTimeout(() => {
  void pushAgent('demo-agent-night', { state: 'active' }, 'update').then(
    () => say('agent Nachtschicht set active again (as the webapp would)'),
    (error: Error) => say(`could not resume agent Nachtschicht: ${error.message}`),
  ).finally(() => void writer.end());
}, 8000).unref();

let stopping = false;
async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  say('stopping …');
  await writer.end().catch(() => {});
  await daemon.stop();
  stub?.close();
  searchStub?.close();
  if (values.keep) {
    // A terminal's Ctrl-C also reached postgres (same process group); bring
    // it back on the same data so the URL below works.
    await server.ensureRunning();
    say(`Postgres left running: ${url}`);
    say(`  try: psql '${url}' -c 'SELECT * FROM mana_ai.mission_schedule'`);
    say(`       npm run inspect -- --url '${url}'`);
    say('Ctrl-C again stops it and removes the temporary data');
    kept = true;
    // Nothing else holds the event loop now; wait for the next signal.
    setInterval(() => {}, 1 << 30);
    return;
  }
  await finalStop(code);
}
let finalStopping = false;
async function finalStop(code: number) {
  if (finalStopping) return;
  finalStopping = true;
  await server.stop();
  say('stopped; temporary data removed');
  process.exit(code);
}
// One handler for every signal, so a second Ctrl-C during the shutdown
// never kills the process before Postgres and its directory are gone.
let kept = false;
const onSignal = () => void (kept ? finalStop(0) : shutdown(0));
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
if (values['exit-after']) setTimeout(() => void shutdown(0), Number(values['exit-after']) * 1000);
