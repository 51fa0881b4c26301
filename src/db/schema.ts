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
  /** the seed's name of the per-field map (CONTRACT.md section 2); today's mana-sync calls it field_meta */
  field_timestamps?: ColumnType<unknown, unknown, unknown>;
  /** today's mana-sync (section 12); absent from the seed's table: src/db/sql/sync-schema.ts says which exist */
  field_meta?: ColumnType<unknown, unknown, unknown>;
  origin?: string | null;
  space_id?: string | null;
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
  /** the record's agentId (sql/functions/snapshot-store.sql), null = none */
  agent_id: string | null;
  agent_ref: Generated<number | null>;
  /** sql/migrations/020_baseline.sql: 53-bit digest of user_id, for round-robin across users */
  user_ref: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

/** sql/functions/snapshot-store.sql: one row per agent, folded like missions; gate fields derived by agent_gate_of. */
export interface AgentSnapshotsTable {
  aid: Generated<number>;
  user_id: string;
  agent_id: string;
  agent_key: Generated<Buffer>;
  agent_ref: Generated<number>;
  partition: Generated<number>;
  record: JsonObject;
  field_ts: Record<string, string>;
  gate: 'active' | 'paused' | 'archived' | 'deleted';
  max_concurrent: number;
  /** null = no budget */
  max_tokens_per_day: number | null;
  policy: JsonObject | null;
  version: number;
  last_change_id: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

/** sql/functions/snapshot-store.sql: append-only for the daemon; RLS on user_id; pruned by its insert trigger. */
export interface TokenUsageTable {
  id: Generated<number>;
  user_id: string;
  agent_id: string | null;
  mission_id: string;
  tokens_used: number;
  ts: Generated<Date>;
  estimated: Generated<boolean>;
  run_id: number | null;
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
  claimed_slot: number | null;
  claimed_pid: number | null;
  /** sql/functions/claim.sql: the claimer process's generation */
  claimed_gen: number | null;
  /** the agent the run was claimed under (sql/functions/snapshot-store.sql) */
  agent_key: Buffer | null;
  /** sql/migrations/020_baseline.sql: the plan of an attempt whose write-back failed outside the mission */
  pending_plan: unknown | null;
  /** sql/migrations/020_baseline.sql: the prompt version the run was planned with */
  prompt_version: string | null;
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
  transient: Generated<boolean>;
  partition: number | null;
  repaired_at: Date | null;
  repair_error: string | null;
  kind: Generated<'mission' | 'agent'>;
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
  /** the shared space the record was read from; null = the owner's personal record */
  space_id: Generated<string | null>;
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
  'mana_ai.agent_snapshots': AgentSnapshotsTable;
  'mana_ai.token_usage': TokenUsageTable;
  'mana_ai.snapshot_errors': SnapshotErrorsTable;
  'mana_ai.decrypt_audit': DecryptAuditTable;
  'mana_ai.schema_migrations': SchemaMigrationsTable;
}
