// `npm run check:deep-research`: deep research submitted ahead of the due
// time, end to end (issue 31), in about two minutes: a mission due every
// minute (cron) that asks for deep research, the real daemon as the
// runtime role on an embedded PostgreSQL, stand-ins for mana-research
// (answering at its first poll) and mana-llm. The first run has no job
// yet: it waits without a claim and is woken by its job's end. After it,
// the next due time's job goes out at once (the lead is longer than the
// cadence), so the next run starts on time with its answer: no `waiting`,
// one job per due time. Prints what it saw; exits 1 on a miss.

import { parseArgs } from 'node:util';
import { Writable } from 'node:stream';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { startDaemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import type { RunEvent } from '../src/reactor/reactor.js';
import { startResearchServer } from '../test/harness/research-server.js';
import { planAnswer, startLlmServer } from '../test/harness/llm-server.js';
import { openBenchDatabase } from './lib/bench-db.js';
import { createRuntimeRole } from './lib/sync-database.js';

const { values } = parseArgs({ options: { help: { type: 'boolean', default: false } } });
if (values.help) {
  console.log(`usage: npm run check:deep-research

A mission due every minute asks for deep research; checks that the second
run's job was submitted ahead of its due time and the run started on time
with the answer (no waiting), one job per due time. About two minutes.`);
  process.exit(0);
}

const QUERY = 'Entwicklung der Strompreise';
const db = await openBenchDatabase();
const daemonUrl = await createRuntimeRole(db.url);
const research = await startResearchServer(() => 'held');
research.complete(QUERY); // every job of this query completes at its first poll
const llm = await startLlmServer(() => ({ content: planAnswer('Plan mit Tiefenrecherche') }));
const daemon = await startDaemon(
  loadConfig({
    PORT: '0', SYNC_DATABASE_URL: daemonUrl, MANA_LLM_URL: llm.url, MANA_AI_WORKER_ID: 'check-deep',
    MANA_RESEARCH_URL: research.url, MANA_AI_DEEP_RESEARCH_ENABLED: 'true', MANA_AI_DEEP_RESEARCH_POLL_MS: '200',
    MANA_AI_DEEP_RESEARCH_LEAD_MS: '3600000', MANA_AI_DEEP_RESEARCH_MAX_AGE_MS: '600000', MANA_AI_MIN_RUN_GAP_MS: '0',
  }),
  createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
);
const events: (RunEvent & { at: number })[] = [];
daemon.reactor!.on('run-finished', (e: RunEvent) => events.push({ ...e, at: Date.now() }));
const results: [string, boolean][] = [];
try {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const now = new Date().toISOString();
  await client.query(
    `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
     VALUES ('ai', 'aiMissions', 'deep-minute', 'check-user', 'insert', $1, '{}', 'check')`,
    [JSON.stringify({ id: 'deep-minute', title: 'Jede Minute tief', objective: 'Strompreise verfolgen', conceptMarkdown: '', inputs: [], iterations: [], state: 'active',
      cadence: { kind: 'cron', expression: '* * * * *' }, nextRunAt: now, createdAt: now, updatedAt: now, research: { mode: 'deep', query: QUERY } })],
  );
  const planned = (n: number) => new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`no ${n} planned runs within 150 s`)), 150_000);
    const iv = setInterval(() => {
      if (events.filter((e) => e.outcome === 'planned').length >= n) {
        clearInterval(iv);
        clearTimeout(deadline);
        resolve();
      }
    }, 100);
  });
  await planned(2);
  const [first, second] = events.filter((e) => e.outcome === 'planned');
  const waits = events.filter((e) => e.outcome === 'waiting');
  results.push([`first run: waited for its job ${waits.filter((e) => e.dueMs === first!.dueMs).length} time(s), then planned`, waits.some((e) => e.dueMs === first!.dueMs)]);
  const lateMs = second!.at - second!.dueMs;
  results.push([`second run (due ${new Date(second!.dueMs).toISOString()}): no waiting, written back ${lateMs} ms after its due time`, !waits.some((e) => e.dueMs === second!.dueMs) && lateMs >= 0 && lateMs < 5_000]);
  const { rows } = await client.query(`SELECT due_at, status, submitted_at FROM mana_ai.research_jobs WHERE mission_id = 'deep-minute' ORDER BY id`);
  const secondJob = rows.find((r) => (r.due_at as Date).getTime() === second!.dueMs);
  results.push([`the second run's job was submitted ${secondJob ? Math.round((second!.dueMs - (secondJob.submitted_at as Date).getTime()) / 1000) : '?'} s before its due time and used`, !!secondJob && secondJob.submitted_at < secondJob.due_at && secondJob.status === 'used']);
  const submits = research.submits.filter((s) => s.query === QUERY).length;
  const dueTimes = new Set(rows.map((r) => (r.due_at as Date).getTime())).size;
  results.push([`${submits} submits for ${dueTimes} due times (one each)`, submits === dueTimes]);
  const prompt = llm.requests.at(-1)?.body.messages.map((m) => m.content).join('\n') ?? '';
  results.push(['the second run\'s prompt carries the answer', prompt.includes(`Antwort der Tiefenrecherche zu ${QUERY}.`)]);
  await client.end();
} catch (error) {
  results.push([`check failed: ${(error as Error).message}`, false]);
} finally {
  await daemon.stop();
  await llm.close();
  await research.close();
  await db.close();
}
for (const [line, ok] of results) console.log(`${ok ? 'ok  ' : 'MISS'} ${line}`);
process.exit(results.every(([, ok]) => ok) ? 0 : 1);
