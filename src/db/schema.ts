// TypeScript types of the tables, in one place. sql/ is the source of
// truth; these mirror it for Kysely and must change with every migration
// that changes a column the code reads or writes.

import type { ColumnType, Generated } from 'kysely';
import type { JsonObject } from '../merge/merge.js';

type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface SyncChangesTable {
  id: Generated<string>;
  app_id: string;
  table_name: string;
  record_id: string;
  user_id: string;
  op: 'insert' | 'update' | 'delete';
  data: unknown;
  field_timestamps: ColumnType<unknown, unknown, unknown>;
  client_id: string;
  created_at: Generated<Date>;
  schema_version: Generated<number>;
  actor: unknown;
}

export interface MissionSnapshotsTable {
  sid: Generated<number>;
  user_id: string;
  mission_id: string;
  mission_key: Generated<Buffer>;
  partition: Generated<number>;
  record: JsonObject;
  field_ts: Record<string, string>;
  state: string | null;
  next_run_at: Date | null;
  deleted: boolean;
  version: number;
  last_change_id: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export type RunStatus = 'running' | 'released' | 'done' | 'failed' | 'skipped' | 'cancelled';

export interface MissionRunsTable {
  run_id: Generated<number>;
  mission_key: Buffer;
  sid: number;
  user_id: string;
  mission_id: string;
  due_at: Timestamp;
  status: RunStatus;
  attempts: number;
  claimed_by: string | null;
  lease_until: Date | null;
  iteration_id: string | null;
  error: string | null;
  created_at: Generated<Date>;
  started_at: Generated<Date>;
  finished_at: Date | null;
}

export interface SnapshotErrorsTable {
  id: Generated<number>;
  change_id: string | null;
  user_id: string | null;
  record_id: string | null;
  op: string | null;
  error: string;
  sqlstate: string | null;
  created_at: Generated<Date>;
}

export interface DecryptAuditTable {
  /** bigserial: pg returns it as a string */
  id: Generated<string>;
  user_id: string;
  mission_id: string;
  iteration_id: string | null;
  table_name: string;
  record_id: string;
  status: 'ok' | 'failed' | 'scope-violation';
  reason: string | null;
  ts: Generated<Date>;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  checksum: string;
  applied_at: Generated<Date>;
}

export interface Database {
  sync_changes: SyncChangesTable;
  'mana_ai.mission_snapshots': MissionSnapshotsTable;
  'mana_ai.mission_runs': MissionRunsTable;
  'mana_ai.snapshot_errors': SnapshotErrorsTable;
  'mana_ai.decrypt_audit': DecryptAuditTable;
  'mana_ai.schema_migrations': SchemaMigrationsTable;
}
