// Writes sync_changes rows the way mana-sync does: a transaction scoped to
// the user, as whichever role the pool connects with.

import pg from 'pg';
import { FIELD_MAP } from './db.js';

export interface RawChange {
  userId: string;
  recordId: string;
  op: 'insert' | 'update' | 'delete';
  data: unknown;
  fieldTimestamps?: unknown;
  appId?: string;
  tableName?: string;
  clientId?: string;
}

export async function pushChange(pool: pg.Pool, c: RawChange): Promise<{ id: string; createdAt: string }> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT set_config('app.current_user_id', $1, true)`, [c.userId]);
    const { rows } = await client.query<{ id: string; created_at: Date }>(
      `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, ${FIELD_MAP}, client_id)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8) RETURNING id, created_at`,
      [
        c.appId ?? 'ai',
        c.tableName ?? 'aiMissions',
        c.recordId,
        c.userId,
        c.op,
        c.data === undefined ? null : JSON.stringify(c.data),
        JSON.stringify(c.fieldTimestamps ?? {}),
        c.clientId ?? 'test-device',
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
