// `npm run mutations`: breaks each guarantee of docs/reliability.md on
// purpose, one at a time, and checks that the test named for it fails
// (issue 27: three guarantees survived a deliberate break of the code).
// Each mutation is a one-line change in a copy of the repository (a
// temporary directory; node_modules linked), so the working tree is never
// touched; the test files run there as `npm test` runs them, on their own
// embedded Postgres. Prints one line per mutation and exits 1 when any
// survives. `-- --only ID[,ID]` runs some; `-- --list` lists them.

import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

interface Mutation {
  id: string;
  /** the guarantee it breaks, as docs/reliability.md states it */
  guarantee: string;
  file: string;
  find: string;
  replace: string;
  /** test files that must fail */
  tests: string[];
}

export const MUTATIONS: Mutation[] = [
  // the three the review found surviving (issue 27), as they apply today
  { id: 'charge-skipped', guarantee: 'every answer is paid for where it arrives, on every path (the retry path too)', file: 'src/planner/plan-mission.ts',
    find: 'void deps.onAnswer?.(usage);', replace: 'void 0;', tests: ['test/park-and-pay.test.ts'] },
  { id: 'oldest-failures', guarantee: 'the newest failures count towards the park, not the oldest', file: 'src/db/sql/parked.ts',
    find: 'ORDER BY r.due_at DESC', replace: 'ORDER BY r.due_at ASC', tests: ['test/dead-letter.test.ts'] },
  // the review's third (charging before the write-back instead of inside it) is now the design: each answer is
  // charged in a transaction of its own as it arrives; what that must never do is charge an answer twice
  { id: 'charge-twice', guarantee: 'each answer is charged exactly once', file: 'src/planner/plan-mission.ts',
    find: 'void deps.onAnswer?.(usage);', replace: 'void deps.onAnswer?.(usage);\n  void deps.onAnswer?.(usage);', tests: ['test/park-and-pay.test.ts'] },
  // issue 27's guarantees
  { id: 'llm-outage-parks', guarantee: 'only a mission\'s own failures park it (mana-llm outages are outside the mission)', file: 'src/run/execute-run.ts',
    find: 'const failure = isLlmOutage(error) ?', replace: 'const failure = false ?', tests: ['test/park-and-pay.test.ts'] },
  { id: 'no-trigger-unpark', guarantee: 'any change by the user unparks a mission at once', file: 'sql/functions/snapshot-trigger.sql',
    find: "v_kind = 'mission' AND v_mission.parked AND", replace: "v_kind = 'mission' AND false AND", tests: ['test/park-and-pay.test.ts'] },
  { id: 'streak-survives-unpark', guarantee: 'the failure streak starts again at an unpark', file: 'src/db/sql/parked.ts',
    find: "AND r.finished_at > coalesce((SELECT u.unparked_at FROM mana_ai.unparked u WHERE u.mission_key = m.mission_key), '-infinity')", replace: '', tests: ['test/park-and-pay.test.ts'] },
  { id: 'unverified-writers', guarantee: 'a shared record is folded from rows by verified members of its space only', file: 'src/planner/resolvers/scope-rule.ts',
    find: 'if (r.userId !== owner && !isMember(r.userId, r.spaceId)) continue;', replace: '', tests: ['test/record-scope.test.ts'] },
  { id: 'personal-any-writer', guarantee: "a personal record is folded from its owner's rows only", file: 'sql/functions/rebuild.sql',
    find: "WHEN 'personal' THEN c.user_id = p_user_id AND (j.row ->> 'space_id') IS NULL", replace: "WHEN 'personal' THEN true", tests: ['test/record-scope.test.ts'] },
  { id: 'space-unverified', guarantee: 'the write-back names no space its owner is not a verified member of', file: 'src/write-back/write-back.ts',
    find: 'return (await q.spacesOf(q.userId))?.includes(stored) ? stored : null;', replace: 'return stored;', tests: ['test/record-scope.test.ts'] },
  { id: 'no-plan-limit', guarantee: 'one plan-size limit in both planner modes', file: 'src/planner/plan-mission.ts',
    find: "steps.length >= PLAN_LIMITS.stepsPerPlan ? 'steps-per-plan' : null;", replace: 'null;', tests: ['test/park-and-pay.test.ts'] },
  { id: 'unbounded-step', guarantee: 'the step check never throws on any answer', file: 'src/planner/validate-step.ts',
    find: 'if (!withinBounds(value)) {', replace: 'if (false) {', tests: ['test/park-and-pay.test.ts'] },
  { id: 'rls-not-verified', guarantee: "mana-sync's table is verified on every migrate and start (RLS forced)", file: 'src/db/sync-table.ts',
    find: 'if (!r.rls || !r.forced)', replace: 'if (false)', tests: ['test/trusted-catalog.test.ts'] },
  { id: 'retention-from-setting', guarantee: 'no SECURITY DEFINER path reads a setting its caller controls', file: 'sql/functions/retention.sql',
    find: 'SELECT s.value INTO v FROM mana_ai.settings s WHERE s.key = p_name;', replace: "v := current_setting('mana_ai.' || p_name, true);", tests: ['test/retention.test.ts'] },
  { id: 'trust-checksums', guarantee: 'migrate re-creates what the catalog lacks, whatever the checksums say', file: 'src/db/migrate.ts',
    find: 'new Set([...plan.changed, ...missing.keys()])', replace: 'plan.changed', tests: ['test/trusted-catalog.test.ts'] },
  { id: 'definer-public', guarantee: 'no SECURITY DEFINER function is executable by PUBLIC', file: 'sql/functions/secure-definers.sql',
    find: "EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f.sig);", replace: 'NULL;', tests: ['test/trusted-catalog.test.ts'] },
  { id: 'kept-plan-unchecked', guarantee: "a kept plan is checked again against the agent's policy", file: 'src/run/execute-run.ts',
    find: 'const rechecked = recheckKeptPlan(iteration, agent, catalogFor(config.webapp));', replace: 'const rechecked = { iteration, dropped: 0 };', tests: ['test/park-and-pay.test.ts'] },
  { id: 'view-as-owner', guarantee: 'views that read RLS tables read them as their caller', file: 'sql/views/agent-budget.sql',
    find: 'WITH (security_invoker = true) ', replace: '', tests: ['test/trusted-catalog.test.ts'] },
  { id: 'only-enc1', guarantee: 'any enc:<n>: value is ciphertext everywhere', file: 'src/grants/ciphertext.ts',
    find: 'const CIPHERTEXT = /^enc:[0-9]+:/;', replace: 'const CIPHERTEXT = /^enc:1:/;', tests: ['test/encrypted-mission.test.ts', 'test/grants-units.test.ts'] },
  // issue 28
  { id: 'loss-not-recorded', guarantee: 'no iteration that reached the server is lost while its mission exists (the trigger records losses)', file: 'sql/functions/snapshot-trigger.sql',
    find: '        IF v_lost IS NOT NULL THEN', replace: '        IF false THEN', tests: ['test/iterations-kept.test.ts'] },
  { id: 'incoming-not-counted', guarantee: "an iteration a write carries that loses the merge is restored too", file: 'sql/functions/snapshot-trigger.sql',
    find: "CASE WHEN jsonb_typeof(NEW.data) = 'object' THEN NEW.data -> 'iterations' END);", replace: 'NULL);', tests: ['test/iterations-kept.test.ts'] },
  { id: 'repair-loses-merge', guarantee: "the repair row wins the merge against a device clock ahead", file: 'src/write-back/restore-iterations.ts',
    find: 'const ts = compareCodePoints(nowIso, stored) > 0 ? nowIso : justAfter(stored);', replace: 'const ts = nowIso;', tests: ['test/iterations-kept.test.ts'] },
  { id: 'device-version-lost', guarantee: "for an id present in both, the current version wins (the device's feedback stands)", file: 'src/write-back/iteration-union.ts',
    find: 'if (id !== null && !have.has(id)) missing.set(id, it);', replace: 'if (id !== null) missing.set(id, it);', tests: ['test/iteration-union.test.ts'] },
  { id: 'pending-not-loaded', guarantee: 'a loss recorded while no daemon ran is repaired at the next load', file: 'src/reactor/reactor.ts',
    find: '          await this.iterationRepairs.pending(wanted);', replace: '', tests: ['test/iterations-property.test.ts'] },
  // issue 29
  { id: 'revocation-ignored', guarantee: 'a revoked or superseded v2 grant never opens again', file: 'src/grants/v2/unwrap-v2.ts',
    find: "if (ctx.isRevoked(header.grantId)) return { ok: false, reason: 'revoked' };", replace: '', tests: ['test/grant-v2.test.ts', 'test/grant-v2-units.test.ts'] },
  { id: 'stale-grant-serves', guarantee: 'a stale device\'s older grant is refused and the newest live grant serves', file: 'src/grants/v2/grant-choice.ts',
    find: 'if (live && id !== live.grantId)', replace: 'if (false)', tests: ['test/grant-v2.test.ts'] },
  { id: 'aad-unbound', guarantee: 'an enc:2: value moved to another record, field, user or epoch does not open', file: 'src/grants/v2/decrypt-v2.ts',
    find: 'return openGcm(key, iv, data, fieldAad(ref.userId, ref.table, ref.recordId, field, epoch));', replace: 'return openGcm(key, iv, data, fieldAad(ref.userId, ref.table, ref.recordId, \'content\', epoch));', tests: ['test/grant-v2.test.ts'] },
  { id: 'null-revokes-nothing', guarantee: 'writing grant: null ends every v2 grant of the mission', file: 'sql/functions/grant-state.sql',
    find: 'AND g.mission_id = p_mission_id  -- every grant seen', replace: 'AND false', tests: ['test/grant-v2.test.ts'] },
  // issue 30
  { id: 'batch-ignores-version', guarantee: 'a write-back built from the claim\'s record is written only while the mission is as the claim read it', file: 'sql/functions/write-back.sql',
    find: 'IF v_version IS DISTINCT FROM w.version OR v_deleted THEN', replace: 'IF v_deleted THEN', tests: ['test/write-back-batch.test.ts'] },
  { id: 'batch-waits', guarantee: 'a batch of write-backs waits for no snapshot row, its first neither: it never waits while holding a row, and one busy row never holds up the runs behind it', file: 'sql/functions/write-back.sql',
    find: 'FROM mana_ai.try_lock_snapshot_for_write_back(w.sid) l;', replace: 'FROM mana_ai.lock_snapshot_for_write_back(w.sid) l;', tests: ['test/write-back-batch.test.ts', 'test/write-back-lock-wait.test.ts'] },
  { id: 'slot-held-through-write-back', guarantee: 'a run\'s planning slot ends with its plan: a waiting write-back never keeps the next due mission from the LLM', file: 'src/reactor/run-dispatcher.ts',
    find: 'planned: () => this.freePlanningSlot(key),', replace: 'planned: () => void 0,', tests: ['test/planning-slots.test.ts'] },
  { id: 'no-claim-ahead', guarantee: 'a freed planning slot goes to a run whose claim is already answered: the next due run is claimed while the slots are busy', file: 'src/reactor/run-dispatcher.ts',
    find: 'this.claiming.size < concurrency * CLAIMS_PER_SLOT &&', replace: 'this.claiming.size + this.planning.size < concurrency &&', tests: ['test/claim-ahead.test.ts'] },
  { id: 'claim-runs-no-throttle', guarantee: 'a batch of claims answers each item as claim_run alone does: a mission that ran less than the gap ago is throttled, not claimed', file: 'sql/functions/claim.sql',
    find: 'AND mr.started_at > now() - p_min_gap)', replace: 'AND false)', tests: ['test/claims.test.ts'] },
  { id: 'writing-unbounded', guarantee: 'while the write-backs cannot commit, no run beyond concurrency × (1 + CLAIMS_PER_SLOT + WRITING_PER_SLOT) is claimed or planned', file: 'src/reactor/run-dispatcher.ts',
    find: '&& this.inFlight.size < concurrency * (1 + CLAIMS_PER_SLOT + WRITING_PER_SLOT) &&', replace: '&&', tests: ['test/claim-ahead.test.ts'] },
  { id: 'slot-wait-unbounded', guarantee: 'a claimed run never waits for a planning slot past what its lease allows', file: 'src/reactor/run-dispatcher.ts',
    find: '}, maxWaitMs);', replace: '}, 2_147_483_647);', tests: ['test/claim-ahead.test.ts'] },
  { id: 'write-back-wait-unbounded', guarantee: "a run's write-back waits for a busy snapshot row at most MANA_AI_WRITE_BACK_LOCK_WAIT_MS, then gives the claim back with its plan kept", file: 'src/db/sql/lock-snapshot.ts',
    find: '${waitMs ?? null}::int', replace: '${null}::int', tests: ['test/write-back-lock-wait.test.ts'] },
  { id: 'charge-fails-writes', guarantee: 'a failing charge fails only the charges of its batch, never the write-backs beside it', file: 'sql/functions/write-back.sql',
    find: "    EXCEPTION WHEN OTHERS THEN\n      ord := 0;", replace: "    EXCEPTION WHEN division_by_zero THEN\n      ord := 0;", tests: ['test/write-back-batch.test.ts'] },
  { id: 'containment-as-equality', guarantee: "the trigger's one-statement path lets a whole-array push through only when no stored iteration id is lost: ids compare as JSON values, so an object id merely contained in the new one is a loss", file: 'sql/functions/snapshot-trigger.sql',
    find: "AND NOT jsonb_path_exists(s.record -> 'iterations',", replace: "AND true OR jsonb_path_exists(s.record -> 'iterations',", tests: ['test/iterations-kept.test.ts'] },
  // issue 31
  { id: 'kept-answer-ignored', guarantee: 'a deep research answer is paid for once: a failed plan\'s next run uses the kept answer', file: 'src/research/deep-jobs.ts',
    find: "const kept = jobs.find((j) => j.status === 'completed' && j.query === run.query", replace: "const kept = jobs.find((j) => false && j.status === 'completed'", tests: ['test/deep-research.test.ts'] },
  { id: 'news-not-cached', guarantee: 'a news query is searched once per user and day', file: 'src/research/research.ts',
    find: 'if (cached) {', replace: 'if (false) {', tests: ['test/research.test.ts'] },
  { id: 'any-url', guarantee: 'a planned step links only the run\'s sources', file: 'src/planner/validate-step.ts',
    find: "else if (sourceUrls && p.name === 'url'", replace: "else if (false && sourceUrls && p.name === 'url'", tests: ['test/research.test.ts'] },
  { id: 'wake-early', guarantee: 'a deep research job that ends before its due time never runs the mission early', file: 'src/reactor/reactor.ts',
    find: 'if (this.stopping || dueMs > Date.now()) return;', replace: 'if (this.stopping) return;', tests: ['test/deep-research.test.ts'] },
  // earlier guarantees of docs/reliability.md
  { id: 'write-back-unlocked', guarantee: 'one lock, one order: the write-back locks the snapshot row first', file: 'sql/functions/claim.sql',
    find: '   WHERE s.sid = p_sid\n     FOR UPDATE NOWAIT\n$$;', replace: '   WHERE s.sid = p_sid\n$$;', tests: ['test/races.test.ts'] },
  { id: 'general-write-back-unlocked', guarantee: 'one lock, one order: the general write-back locks the snapshot row first, within its bounded wait', file: 'sql/functions/claim.sql',
    find: '     WHERE s.sid = p_sid\n       FOR UPDATE;', replace: '     WHERE s.sid = p_sid;', tests: ['test/write-back-batch.test.ts'] },
  { id: 'fold-newest-first', guarantee: 'inputs are current: rows fold in log order', file: 'sql/functions/rebuild.sql',
    find: '     ORDER BY c.created_at, c.id\n  LOOP', replace: '     ORDER BY c.created_at DESC, c.id DESC\n  LOOP', tests: ['test/races.test.ts'] },
  { id: 'schedule-overwritten', guarantee: "the user's changes during a run stand", file: 'src/write-back/write-back.ts',
    find: "const stillDue = snap.state === 'active' && snap.nextRunAtMs === w.dueMs;", replace: 'const stillDue = true;', tests: ['test/races.test.ts'] },
  { id: 'observer-throws', guarantee: 'an observer never changes a run', file: 'src/reactor/events.ts',
    find: '      } catch (error) {\n        this.report(event, error);\n      }', replace: '      } catch (error) {\n        throw error;\n      }', tests: ['test/reactor.test.ts'] },
  { id: 'trigger-raises', guarantee: "the trigger never makes a mana-sync insert fail", file: 'sql/functions/snapshot-trigger.sql',
    find: '    EXCEPTION WHEN OTHERS THEN\n      v_payload := NULL;', replace: '    EXCEPTION WHEN OTHERS THEN\n      RAISE;', tests: ['test/trigger-malformed.test.ts'] },
  // issue 30's COPY load: what a start schedules is what the database says, for the partitions asked for
  { id: 'load-any-partition', guarantee: 'a load reads the partitions it was asked for, no others', file: 'src/db/sql/load-schedule.ts',
    find: "     AND partition IN (SELECT unnest(current_setting('mana_ai.load_partitions')::int[]))\n", replace: '\n', tests: ['test/schedule-copy.test.ts'] },
  { id: 'load-due-truncated', guarantee: 'a mission loaded at a start is due when mana_ai.schedulable_due_ms() says', file: 'src/db/sql/schedule-copy-reader.ts',
    find: 'const due = Math.floor(us / 1000) + PG_EPOCH_MS;', replace: 'const due = Math.trunc(us / 1000) + PG_EPOCH_MS;', tests: ['test/schedule-copy.test.ts'] },
];

const ROOT = resolve(import.meta.dirname, '..');

function runTests(dir: string, files: string[], timeoutMs: number): Promise<number> {
  return new Promise((res) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/test.ts', ...files], { cwd: dir, stdio: 'ignore', env: { ...process.env } });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      res(signal ? 124 : code ?? 1);
    });
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help')) {
    console.log('usage: npm run mutations [-- --only ID[,ID]] [--list]\n\nBreaks each guarantee on purpose in a copy of the repository and checks that its test fails; exits 1 when a mutation survives.');
    return;
  }
  if (args.includes('--list')) {
    for (const m of MUTATIONS) console.log(`${m.id.padEnd(24)} ${m.tests.join(', ')}  (${m.guarantee})`);
    return;
  }
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? new Set((args[onlyAt + 1] ?? '').split(',')) : null;
  const chosen = MUTATIONS.filter((m) => !only || only.has(m.id));
  const dir = mkdtempSync(join(tmpdir(), 'mana-ai-mutations-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    for (const part of ['src', 'sql', 'test', 'scripts', 'package.json', 'tsconfig.json']) cpSync(join(ROOT, part), join(dir, part), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    let survived = 0;
    for (const m of chosen) {
      const path = join(dir, m.file);
      const original = readFileSync(join(ROOT, m.file), 'utf8');
      const hits = original.split(m.find).length - 1;
      if (hits !== 1) {
        console.log(`ERROR    ${m.id}: the text to mutate occurs ${hits} times in ${m.file}`);
        survived += 1;
        continue;
      }
      writeFileSync(path, original.replace(m.find, m.replace));
      const t0 = Date.now();
      const code = await runTests(dir, m.tests, 300_000);
      writeFileSync(path, original);
      const caught = code !== 0;
      if (!caught) survived += 1;
      console.log(`${caught ? 'caught  ' : 'SURVIVED'} ${m.id.padEnd(24)} by ${m.tests.join(', ')} in ${((Date.now() - t0) / 1000).toFixed(0)} s  (${m.guarantee})`);
    }
    console.log(`${chosen.length - survived} of ${chosen.length} mutations caught`);
    process.exitCode = survived > 0 ? 1 : 0;
  } finally {
    cleanup();
  }
}

// run only as the script, not when test/mutation-list.test.ts imports the list
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
