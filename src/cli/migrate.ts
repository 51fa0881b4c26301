// `npm run migrate`: applies sql/ to SYNC_DATABASE_URL and exits 0.

import { migrate } from '../db/migrate.js';

if (process.argv.includes('--help')) {
  console.log(`usage: npm run migrate

Applies the numbered files in sql/ that SYNC_DATABASE_URL's database has not
seen yet, each in its own transaction, under an advisory lock (safe from
several hosts at once). An applied file that was edited since stops with a
message naming it. The daemon does the same at every start.`);
  process.exit(0);
}
const url = process.env['SYNC_DATABASE_URL'];
if (!url) {
  console.error('SYNC_DATABASE_URL is not set: point it at the mana_sync database (postgres://user:pass@host:5432/mana_sync).');
  process.exit(2);
}
try {
  const result = await migrate(url, { log: (m) => console.log(m) });
  console.log(`migrations: ${result.applied.length} applied, ${result.alreadyApplied} already there`);
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}
