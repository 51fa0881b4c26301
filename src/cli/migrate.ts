// `npm run migrate`: applies sql/ to SYNC_DATABASE_URL and exits 0.

import { migrate } from '../db/migrate.js';

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
