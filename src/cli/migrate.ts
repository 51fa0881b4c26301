// `npm run migrate`: applies sql/ to SYNC_DATABASE_URL and exits 0.

import { migrate } from '../db/migrate.js';
import { coerceError } from '../coerce-error.js';

if (process.argv.includes('--help')) {
  console.log(`usage: npm run migrate [-- --runtime-role NAME] [--webapp v0.4|head] [--sync-table SCHEMA.TABLE]

Applies the numbered files in sql/ that SYNC_DATABASE_URL's database has not
seen yet, then every definition that changed or that the catalog lacks,
the SECURITY DEFINER hygiene and the runtime roles' grants, all in one
transaction under an advisory lock (safe from several hosts at once; a
failure leaves nothing half done). An applied file that was edited since
stops with a message naming it. Run it as the role that owns the mana_ai
schema.

--runtime-role NAME   grant the existing role NAME exactly what the daemon
                      needs at run time (docs/ops.md, "Least privilege"), and
                      remember it: later migrations re-apply its grants.
                      Run the daemon as NAME.
--webapp v0.4|head    the webapp generation the deployment serves: the
                      trigger folds with its merge rule from now on
                      (CONTRACT.md sections 3 and 12). Unset keeps the
                      database's (v0.4 on a new one). After a change, run
                      npm run backfill -- --restart to refold snapshots.
--sync-table S.T      mana-sync's table, recorded in mana_ai.sync_table and
                      verified on every migrate and daemon start (permanent,
                      its owner, row-level security forced, its columns).
                      Unset: the one recorded, else the only permanent table
                      named sync_changes (two are refused).

The daemon applies pending migrations at start only when its role may; as
a runtime role it refuses to start until they are applied.`);
  process.exit(0);
}
const roleAt = process.argv.indexOf('--runtime-role');
const runtimeRole = roleAt >= 0 ? process.argv[roleAt + 1] : undefined;
if (roleAt >= 0 && (!runtimeRole || runtimeRole.startsWith('--'))) {
  console.error('--runtime-role needs the name of an existing role, e.g. --runtime-role mana_ai_runtime');
  process.exit(2);
}
const webappAt = process.argv.indexOf('--webapp');
const webapp = webappAt >= 0 ? (process.argv[webappAt + 1] as 'v0.4' | 'head') : undefined;
if (webappAt >= 0 && webapp !== 'v0.4' && webapp !== 'head') {
  console.error('--webapp takes v0.4 or head');
  process.exit(2);
}
const tableAt = process.argv.indexOf('--sync-table');
const syncTable = tableAt >= 0 ? process.argv[tableAt + 1] : undefined;
if (tableAt >= 0 && (!syncTable || syncTable.startsWith('--'))) {
  console.error('--sync-table needs schema.table, e.g. --sync-table public.sync_changes');
  process.exit(2);
}
const url = process.env['SYNC_DATABASE_URL'];
if (!url) {
  console.error('SYNC_DATABASE_URL is not set: point it at the mana_sync database (postgres://user:pass@host:5432/mana_sync).');
  process.exit(2);
}
try {
  const result = await migrate(url, { log: (m) => console.log(m), ...(runtimeRole ? { runtimeRole } : {}), ...(webapp ? { webapp } : {}), ...(syncTable ? { syncTable } : {}) });
  console.log(`migrations: ${result.applied.length} applied, ${result.alreadyApplied} already there${result.granted.length ? `; runtime rights granted to ${result.granted.join(', ')}` : ''}`);
} catch (error) {
  console.error(coerceError(error).message);
  process.exit(1);
}
