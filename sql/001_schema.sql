-- 001: the runner's own schema. Everything mana-ai keeps lives in `mana_ai`;
-- mana-sync's `sync_changes` is never altered here except for the trigger
-- in 002. This file must never touch another schema's tables.

CREATE SCHEMA IF NOT EXISTS mana_ai;

-- The identity of a mission is (user_id, mission_id). Ids come from devices
-- and can be absurdly long, so unique indexes and lock keys use a digest
-- instead of the raw text (a btree entry is limited to ~2.7 kB).
CREATE FUNCTION mana_ai.mission_key(p_user_id text, p_mission_id text)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
  SELECT sha256(convert_to(p_user_id, 'UTF8') || '\x00'::bytea || convert_to(p_mission_id, 'UTF8'))
$$;

-- Stable partition of a user (issue: scale-out). md5 is stable across
-- Postgres versions, unlike hashtext.
CREATE FUNCTION mana_ai.user_partition(p_user_id text, p_partitions int DEFAULT 64)
RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
  SELECT (('x' || substr(md5(p_user_id), 1, 8))::bit(32)::bigint % p_partitions)::int
$$;

-- One row per mission: the merged record as a client holds it.
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
  updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX mission_snapshots_key ON mana_ai.mission_snapshots (mission_key);
CREATE INDEX mission_snapshots_user ON mana_ai.mission_snapshots (user_id);
-- "active and due": what the reactor loads and what due_missions shows.
CREATE INDEX mission_snapshots_due ON mana_ai.mission_snapshots (next_run_at)
  WHERE state = 'active' AND NOT deleted AND next_run_at IS NOT NULL;

-- Rows the trigger could not fold. The insert into sync_changes still
-- committed; this table is where an operator sees why a mission is stale.
CREATE TABLE mana_ai.snapshot_errors (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  change_id  uuid,
  user_id    text,
  record_id  text,
  op         text,
  error      text        NOT NULL,
  sqlstate   text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX snapshot_errors_created ON mana_ai.snapshot_errors (created_at);

-- The run log: one row per (mission, due time). The unique key is the
-- exactly-once guarantee; see claim_run in 003.
CREATE TABLE mana_ai.mission_runs (
  run_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  mission_key  bytea       NOT NULL,
  sid          bigint      NOT NULL,
  user_id      text        NOT NULL,
  mission_id   text        NOT NULL,
  due_at       timestamptz NOT NULL,
  status       text        NOT NULL CHECK (status IN ('running', 'released', 'done', 'failed', 'skipped', 'cancelled')),
  attempts     int         NOT NULL DEFAULT 1,
  claimed_by   text,
  lease_until  timestamptz,
  iteration_id text,
  error        text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  UNIQUE (mission_key, due_at)
);
CREATE INDEX mission_runs_user ON mana_ai.mission_runs (user_id, mission_id, due_at DESC);
CREATE INDEX mission_runs_open ON mana_ai.mission_runs (lease_until) WHERE status IN ('running', 'released');
CREATE INDEX mission_runs_recent ON mana_ai.mission_runs (mission_key, started_at DESC);
