// Per-user work happens only inside a transaction scoped with
// app.current_user_id (mana-sync's row-level security). This is the one
// way the code opens such a transaction; it refuses an empty user id
// before touching the database.

import { sql, type Transaction } from 'kysely';
import type { Db } from './pool.js';
import type { Database } from './schema.js';

export class EmptyUserIdError extends Error {
  override name = 'EmptyUserIdError';
  constructor() {
    super('refusing a user-scoped transaction without a user id');
  }
}

export type ScopedTx = Transaction<Database>;

export async function withUserScope<T>(db: Db, userId: string, fn: (trx: ScopedTx) => Promise<T>): Promise<T> {
  if (typeof userId !== 'string' || userId.length === 0) throw new EmptyUserIdError();
  return db.transaction().execute(async (trx) => {
    await sql`SELECT set_config('app.current_user_id', ${userId}, true)`.execute(trx);
    return fn(trx);
  });
}
