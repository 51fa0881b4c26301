// Writes sync_changes rows the way mana-sync does: a transaction scoped to
// the user, as whichever role the pool connects with.

import pg from 'pg';

export interface RawChange {
  userId: string;
  recordId: string;
  op: 'insert' | 'update' | 'delete';
  data: unknown;
  fieldTimestamps?: unknown;
  appId?: string;
  tableName?: string;
  clientId?: string;
  /** mana-sync's space_id column (today's schema only): the space the pushing client named */
  spaceId?: string | null;
}

/** The per-field map's column of the pool's sync_changes (the seed's or today's), looked up once per pool. */
const mapColumns = new WeakMap<pg.Pool, Promise<string>>();
function mapColumnOf(pool: pg.Pool): Promise<string> {
  let column = mapColumns.get(pool);
  if (!column) {
    column = pool
      .query<{ attname: string }>(`SELECT attname FROM pg_attribute WHERE attrelid = 'sync_changes'::regclass AND attname IN ('field_meta', 'field_timestamps') AND NOT attisdropped`)
      .then((r) => r.rows[0]?.attname ?? 'field_timestamps');
    mapColumns.set(pool, column);
  }
  return column;
}

export async function pushChange(pool: pg.Pool, c: RawChange): Promise<{ id: string; createdAt: string }> {
  const mapColumn = await mapColumnOf(pool);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT set_config('app.current_user_id', $1, true)`, [c.userId]);
    const space = c.spaceId !== undefined && c.spaceId !== null;
    const { rows } = await client.query<{ id: string; created_at: Date }>(
      `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, ${mapColumn}, client_id${space ? ', space_id' : ''})
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8${space ? ', $9' : ''}) RETURNING id, created_at`,
      [
        c.appId ?? 'ai',
        c.tableName ?? 'aiMissions',
        c.recordId,
        c.userId,
        c.op,
        c.data === undefined ? null : JSON.stringify(c.data),
        JSON.stringify(c.fieldTimestamps ?? {}),
        c.clientId ?? 'test-device',
        ...(space ? [c.spaceId] : []),
      ],
    );
    await client.query('COMMIT');
    return { id: rows[0]!.id, createdAt: rows[0]!.created_at.toISOString() };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** A mission as the webapp's first insert writes it. */
export function webappMission(over: Record<string, unknown> = {}): Record<string, unknown> {
  const now = new Date().toISOString();
  return {
    id: over['id'] ?? 'm-1',
    createdAt: now,
    updatedAt: now,
    title: 'Wochenplanung',
    objective: 'Jede Woche die wichtigsten Aufgaben planen',
    conceptMarkdown: '# Plan\nAufgaben sammeln.',
    inputs: [],
    cadence: { kind: 'interval', everyMinutes: 60 },
    state: 'active',
    nextRunAt: now,
    iterations: [],
    ...over,
  };
}
