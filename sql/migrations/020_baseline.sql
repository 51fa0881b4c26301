-- 020: the baseline. mana-ai's tables, columns, indexes and sequences as
-- the migrations 001-020 of the first layout left them, in one file.
--
-- Migrations hold what a database keeps (tables, columns, indexes, data
-- changes); they are numbered, immutable and checksummed. Functions,
-- trigger functions, triggers and views are not here: each has one current
-- definition under sql/functions, sql/views or sql/triggers, which migrate
-- applies after the migrations whenever a file's text changes
-- (docs/schema.md). A database migrated by the first layout (its 20
-- checksums in schema_migrations, listed in legacy.json) is recognised as
-- having this baseline and is not migrated again.
--
-- The four key functions below are the exception, and stay here: stored
-- generated columns are computed by them, so they must exist before the
-- tables, and changing one would leave every stored value stale. A change
-- to a key is a new migration that rewrites the columns, never an edit.

CREATE SCHEMA IF NOT EXISTS mana_ai;

-- The identity of a mission (and of an agent) is (user_id, record id). Ids
-- come from devices and can be absurdly long, so unique indexes and lock
-- keys use a digest instead of the raw text (a btree entry is limited to
-- ~2.7 kB).
CREATE FUNCTION mana_ai.mission_key(p_user_id text, p_mission_id text)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
  SELECT sha256(convert_to(p_user_id, 'UTF8') || '\x00'::bytea || convert_to(p_mission_id, 'UTF8'))
$$;

-- Stable partition of a user (scale-out). md5 is stable across Postgres
-- versions, unlike hashtext.
CREATE FUNCTION mana_ai.user_partition(p_user_id text, p_partitions int DEFAULT 64)
RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
  SELECT (('x' || substr(md5(p_user_id), 1, 8))::bit(32)::bigint % p_partitions)::int
$$;

-- The agent's grouping key in memory and in payloads: 53 bits of its digest,
-- exact as a JavaScript number. Only grouping relies on it; every decision
-- that matters is taken by claim_run on the exact (user_id, agent_id).
CREATE FUNCTION mana_ai.agent_ref(p_user_id text, p_agent_id text)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
  SELECT (('x' || encode(substr(mana_ai.mission_key(p_user_id, p_agent_id), 1, 7), 'hex'))::bit(56)::bigint >> 3)
$$;

-- A 53-bit digest of the user id, exact as a JS number, so the daemon can
-- serve due runs round-robin across users without holding user ids in
-- memory. Two users sharing a ref only share a round-robin turn.
CREATE FUNCTION mana_ai.user_ref(p_user_id text)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
  SELECT (('x' || encode(substr(sha256(convert_to(p_user_id, 'UTF8')), 1, 7), 'hex'))::bit(56)::bigint >> 3)
$$;

-- One row per mission: the merged record as a client holds it, and what
-- the reactor schedules by, derived from it (sql/functions/snapshot-store.sql).
CREATE TABLE mana_ai.mission_snapshots (
  sid            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id        text        NOT NULL,
  mission_id     text        NOT NULL,
  mission_key    bytea       NOT NULL GENERATED ALWAYS AS (mana_ai.mission_key(user_id, mission_id)) STORED,
  partition      int         NOT NULL GENERATED ALWAYS AS (mana_ai.user_partition(user_id)) STORED,
  record         jsonb       NOT NULL,
  -- per-field timestamps of `record` (the merge rule's bookkeeping)
  field_ts       jsonb       NOT NULL DEFAULT '{}',
  state          text,
  next_run_at    timestamptz,
  deleted        boolean     NOT NULL DEFAULT false,
  -- grows by one with every change applied to this row
  version        bigint      NOT NULL DEFAULT 1,
  last_change_id uuid,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  -- the record's agentId when that is a non-empty string, and its ref
  agent_id       text,
  agent_ref      bigint GENERATED ALWAYS AS (mana_ai.agent_ref(user_id, agent_id)) STORED,
  user_ref       bigint GENERATED ALWAYS AS (mana_ai.user_ref(user_id)) STORED
);
CREATE UNIQUE INDEX mission_snapshots_key ON mana_ai.mission_snapshots (mission_key);
CREATE INDEX mission_snapshots_user ON mana_ai.mission_snapshots (user_id);
-- "active and due": what the reactor loads and what due_missions shows.
CREATE INDEX mission_snapshots_due ON mana_ai.mission_snapshots (next_run_at)
  WHERE state = 'active' AND NOT deleted AND next_run_at IS NOT NULL;

-- Rows the trigger could not fold. The insert into sync_changes still
-- committed; this table is where an operator sees why a snapshot is stale,
-- and where the owning daemon finds transient failures to repair.
CREATE TABLE mana_ai.snapshot_errors (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  change_id    uuid,
  user_id      text,
  record_id    text,
  op           text,
  error        text        NOT NULL,
  sqlstate     text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  transient    boolean     NOT NULL DEFAULT false,
  partition    int,
  repaired_at  timestamptz,
  repair_error text,
  -- which kind of record failed, so the repair rebuilds the right one
  kind         text        NOT NULL DEFAULT 'mission' CHECK (kind IN ('mission', 'agent'))
);
CREATE INDEX snapshot_errors_created ON mana_ai.snapshot_errors (created_at);
CREATE INDEX snapshot_errors_pending ON mana_ai.snapshot_errors (partition, id)
  WHERE transient AND repaired_at IS NULL;

-- The run log: one row per (mission, due time). The unique key is the
-- exactly-once guarantee (sql/functions/claim.sql).
CREATE TABLE mana_ai.mission_runs (
  run_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  mission_key    bytea       NOT NULL,
  sid            bigint      NOT NULL,
  user_id        text        NOT NULL,
  mission_id     text        NOT NULL,
  due_at         timestamptz NOT NULL,
  status         text        NOT NULL CHECK (status IN ('running', 'released', 'done', 'failed', 'skipped', 'cancelled')),
  attempts       int         NOT NULL DEFAULT 1,
  claimed_by     text,
  lease_until    timestamptz,
  iteration_id   text,
  error          text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  started_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz,
  -- the claimer's witnesses: membership slot and backend (old daemons),
  -- and its process generation (claimer_alive)
  claimed_slot   int,
  claimed_pid    int,
  -- the agent the run ran under, so a claim can count the agent's runs in flight
  agent_key      bytea,
  -- the plan an interrupted write-back made, written by the retry instead
  -- of asking the LLM again; cleared when written
  pending_plan   jsonb,
  claimed_gen    int,
  -- short hash of the prompt template, tool catalog and planner mode
  prompt_version text,
  UNIQUE (mission_key, due_at)
);
CREATE INDEX mission_runs_user ON mana_ai.mission_runs (user_id, mission_id, due_at DESC);
CREATE INDEX mission_runs_open ON mana_ai.mission_runs (lease_until) WHERE status IN ('running', 'released');
CREATE INDEX mission_runs_recent ON mana_ai.mission_runs (mission_key, started_at DESC);
CREATE INDEX mission_runs_agent_running ON mana_ai.mission_runs (agent_key) WHERE status = 'running';
-- Finished runs only (retention): running and released ones are claims and retries.
CREATE INDEX mission_runs_finished ON mana_ai.mission_runs (finished_at)
  WHERE status IN ('done', 'failed', 'skipped', 'cancelled');

-- The backfill's cursor (scripts/backfill.ts), which makes it resumable.
CREATE TABLE mana_ai.backfill_progress (
  id              int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  last_user_id    text,
  last_record_id  text,
  missions_done   bigint NOT NULL DEFAULT 0,
  rows_done       bigint NOT NULL DEFAULT 0,
  started_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz,
  last_table_name text
);

-- The decrypt audit (CONTRACT.md section 7): one row per decrypt attempt
-- under a mission grant. Append-only in fact, not by convention (the
-- triggers in sql/triggers/audit.sql raise for every role, the owner
-- included). Row-level security is forced, so the owner too sees and writes
-- only the rows of the user its transaction is scoped to.
CREATE TABLE mana_ai.decrypt_audit (
  id           bigserial PRIMARY KEY,
  user_id      text        NOT NULL,
  mission_id   text        NOT NULL,
  iteration_id text        NULL,
  table_name   text        NOT NULL,
  record_id    text        NOT NULL,
  status       text        NOT NULL CHECK (status IN ('ok', 'failed', 'scope-violation')),
  reason       text        NULL,
  ts           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decrypt_audit_user_mission_id ON mana_ai.decrypt_audit (user_id, mission_id, id DESC);
CREATE INDEX decrypt_audit_user_id ON mana_ai.decrypt_audit (user_id, id DESC);
ALTER TABLE mana_ai.decrypt_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE mana_ai.decrypt_audit FORCE ROW LEVEL SECURITY;
CREATE POLICY decrypt_audit_own_rows ON mana_ai.decrypt_audit
  USING (user_id = current_setting('app.current_user_id', true))
  WITH CHECK (user_id = current_setting('app.current_user_id', true));
REVOKE UPDATE, DELETE, TRUNCATE ON mana_ai.decrypt_audit FROM PUBLIC;

-- Roles the runtime rights were granted to (grant_runtime_role); granted
-- again after every migration so a new table never leaves one without.
CREATE TABLE mana_ai.runtime_roles (
  role_name  name PRIMARY KEY,
  granted_at timestamptz NOT NULL DEFAULT now()
);

-- Agents (CONTRACT.md section 10), folded like missions; what the gate
-- needs is derived into columns (agent_gate_of).
CREATE TABLE mana_ai.agent_snapshots (
  aid                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id            text        NOT NULL,
  agent_id           text        NOT NULL,
  agent_key          bytea       NOT NULL GENERATED ALWAYS AS (mana_ai.mission_key(user_id, agent_id)) STORED,
  agent_ref          bigint      NOT NULL GENERATED ALWAYS AS (mana_ai.agent_ref(user_id, agent_id)) STORED,
  partition          int         NOT NULL GENERATED ALWAYS AS (mana_ai.user_partition(user_id)) STORED,
  record             jsonb       NOT NULL,
  field_ts           jsonb       NOT NULL DEFAULT '{}',
  -- active | paused | archived | deleted
  gate               text        NOT NULL,
  max_concurrent     int         NOT NULL,
  -- NULL = no budget; 0 = the agent may not run
  max_tokens_per_day bigint,
  policy             jsonb,
  version            bigint      NOT NULL DEFAULT 1,
  last_change_id     uuid,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX agent_snapshots_key ON mana_ai.agent_snapshots (agent_key);
CREATE INDEX agent_snapshots_user ON mana_ai.agent_snapshots (user_id);
CREATE INDEX agent_snapshots_partition ON mana_ai.agent_snapshots (partition);
-- Agent versions come from one sequence, so a re-created agent's states
-- are newer than its removal (a version never goes backwards).
CREATE SEQUENCE mana_ai.agent_versions AS bigint;

-- Token usage (section 10): one row per LLM answer of a run, written in the
-- write-back's transaction; agent_id NULL for a run without an agent;
-- `estimated` when the answer had no usage.total_tokens.
CREATE TABLE mana_ai.token_usage (
  id          bigserial   PRIMARY KEY,
  user_id     text        NOT NULL,
  agent_id    text,
  mission_id  text        NOT NULL,
  tokens_used int         NOT NULL CHECK (tokens_used >= 0),
  ts          timestamptz NOT NULL DEFAULT now(),
  estimated   boolean     NOT NULL DEFAULT false,
  run_id      bigint
);
CREATE INDEX token_usage_agent ON mana_ai.token_usage (user_id, agent_id, ts);
CREATE INDEX token_usage_ts ON mana_ai.token_usage (ts);
ALTER TABLE mana_ai.token_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY token_usage_user_isolation ON mana_ai.token_usage
  USING (user_id = current_setting('app.current_user_id', true))
  WITH CHECK (user_id = current_setting('app.current_user_id', true));

-- The dead-letter: missions parked after MANA_AI_MAX_CONSECUTIVE_FAILURES
-- failed runs in a row, at the snapshot version the parking write-back
-- left; parked while that version stands (docs/reliability.md).
CREATE TABLE mana_ai.parked (
  mission_key    bytea       PRIMARY KEY,
  sid            bigint      NOT NULL,
  user_id        text        NOT NULL,
  mission_id     text        NOT NULL,
  -- the snapshot's version after the parking write-back: parked while it stays
  parked_version bigint      NOT NULL,
  failures       int         NOT NULL,
  last_error     text,
  parked_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parked_sid ON mana_ai.parked (sid);
