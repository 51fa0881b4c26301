-- 012: agents and daily token budgets (CONTRACT.md section 10, issue 12).
--
-- Agents arrive like missions: rows of app 'ai', table 'agents' in
-- sync_changes. A second trigger folds them with the same merge rule
-- (fold_change) into agent_snapshots, under the same row lock, with the
-- same promise: it never makes mana-sync's insert fail; a fold error is
-- recorded (kind 'agent') and repaired like a mission's.
--
-- What the reactor needs of an agent is derived into columns (the gate:
-- active/paused/archived/deleted, max_concurrent, max_tokens_per_day) and
-- NOTIFYd on mana_ai_agents only when one of them or the policy changes; a
-- new name, avatar or memory wakes nobody. A mission's snapshot exposes its
-- agentId as a column, and its NOTIFY carries the agent's ref, so the
-- reactor groups missions by agent without reading records.
--
-- claim_run stays the last guard: it re-checks the agent's gate, counts the
-- agent's runs in flight across all daemons under a per-agent lock, and
-- sums the agent's tokens of the last 24 h. Usage is written by the
-- write-back in its own transaction (append-only for the daemon) and old
-- rows are pruned by the insert itself, never by a polling loop.

-- The agent's grouping key in memory and in payloads: 53 bits of its digest,
-- exact as a JavaScript number. Only grouping relies on it; every decision
-- that matters is taken by claim_run on the exact (user_id, agent_id).
CREATE FUNCTION mana_ai.agent_ref(p_user_id text, p_agent_id text)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
  SELECT (('x' || encode(substr(mana_ai.mission_key(p_user_id, p_agent_id), 1, 7), 'hex'))::bit(56)::bigint >> 3)
$$;

CREATE TABLE mana_ai.agent_snapshots (
  aid                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id            text        NOT NULL,
  agent_id           text        NOT NULL,
  agent_key          bytea       NOT NULL GENERATED ALWAYS AS (mana_ai.mission_key(user_id, agent_id)) STORED,
  agent_ref          bigint      NOT NULL GENERATED ALWAYS AS (mana_ai.agent_ref(user_id, agent_id)) STORED,
  partition          int         NOT NULL GENERATED ALWAYS AS (mana_ai.user_partition(user_id)) STORED,
  record             jsonb       NOT NULL,
  field_ts           jsonb       NOT NULL DEFAULT '{}',
  -- what the gate sees (agent_gate_of below): active | paused | archived | deleted
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

-- Gone unless deletedAt is absent, null, "" or false (src/merge/derive.ts):
-- the one definition for agents and, from here on, missions.
CREATE FUNCTION mana_ai.record_deleted(p_record jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT coalesce(p_record -> 'deletedAt', 'null'::jsonb) NOT IN ('null'::jsonb, '""'::jsonb, 'false'::jsonb)
$$;

-- The gate fields of an agent record. Decisions the contract leaves open
-- (docs/agents.md): a deleted record is 'deleted' whatever its state; state
-- absent or null is 'active' (the webapp's default); an unknown state is
-- 'paused' (never run what we do not understand); maxConcurrentMissions
-- that is not a number, or below 1, is 1, above 1000 is 1000;
-- maxTokensPerDay that is not a number is no budget, a negative one is 0.
CREATE FUNCTION mana_ai.agent_gate_of(
  p_record jsonb,
  OUT gate text,
  OUT max_concurrent int,
  OUT max_tokens_per_day bigint,
  OUT policy jsonb)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT
    CASE WHEN mana_ai.record_deleted(p_record) THEN 'deleted'
         WHEN coalesce(p_record -> 'state', 'null'::jsonb) IN ('null'::jsonb, '"active"'::jsonb) THEN 'active'
         WHEN p_record -> 'state' = '"archived"'::jsonb THEN 'archived'
         ELSE 'paused' END,
    CASE WHEN jsonb_typeof(p_record -> 'maxConcurrentMissions') = 'number'
         THEN least(greatest(floor((p_record ->> 'maxConcurrentMissions')::numeric), 1), 1000)::int
         ELSE 1 END,
    CASE WHEN jsonb_typeof(p_record -> 'maxTokensPerDay') = 'number'
         THEN least(greatest(floor((p_record ->> 'maxTokensPerDay')::numeric), 0), 1e15)::bigint END,
    CASE WHEN jsonb_typeof(p_record -> 'policy') = 'object' THEN p_record -> 'policy' END
$$;

CREATE FUNCTION mana_ai.notify_agent(p_ref bigint, p_version bigint, p_partition int, p_gate text, p_max_concurrent int, p_budget bigint)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
  -- No ids, no names: the ref, the partition and the gate fields.
  SELECT pg_notify('mana_ai_agents',
                   json_build_object('g', p_ref, 'v', p_version, 'p', p_partition, 's', p_gate,
                                     'c', p_max_concurrent, 'b', p_budget)::text)
$$;

-- Stores a fold result for one agent whose row (if any) the caller has
-- locked; false = the row was created concurrently, lock it and fold again.
-- A removed record (hard delete) NOTIFYs the gate 'absent': its missions
-- run as missions without an agent (section 10).
CREATE FUNCTION mana_ai.store_agent_snapshot(
  p_old mana_ai.agent_snapshots,
  p_user_id text,
  p_agent_id text,
  p_record jsonb,
  p_field_ts jsonb,
  p_change_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai
AS $$
DECLARE
  g record;
  v_row mana_ai.agent_snapshots%ROWTYPE;
BEGIN
  IF p_record IS NULL THEN
    IF p_old.aid IS NOT NULL THEN
      DELETE FROM mana_ai.agent_snapshots WHERE aid = p_old.aid;
      PERFORM mana_ai.notify_agent(p_old.agent_ref, p_old.version + 1, p_old.partition, 'absent', 1, NULL);
    END IF;
    RETURN true;
  END IF;

  SELECT * INTO g FROM mana_ai.agent_gate_of(p_record);

  IF p_old.aid IS NULL THEN
    INSERT INTO mana_ai.agent_snapshots
      (user_id, agent_id, record, field_ts, gate, max_concurrent, max_tokens_per_day, policy, version, last_change_id)
    VALUES (p_user_id, p_agent_id, p_record, p_field_ts, g.gate, g.max_concurrent, g.max_tokens_per_day, g.policy, 1, p_change_id)
    ON CONFLICT (agent_key) DO NOTHING
    RETURNING * INTO v_row;
    IF v_row.aid IS NULL THEN
      RETURN false;
    END IF;
    PERFORM mana_ai.notify_agent(v_row.agent_ref, 1, v_row.partition, g.gate, g.max_concurrent, g.max_tokens_per_day);
    RETURN true;
  END IF;

  UPDATE mana_ai.agent_snapshots
     SET record = p_record,
         field_ts = p_field_ts,
         gate = g.gate,
         max_concurrent = g.max_concurrent,
         max_tokens_per_day = g.max_tokens_per_day,
         policy = g.policy,
         version = version + 1,
         last_change_id = p_change_id,
         updated_at = now()
   WHERE aid = p_old.aid;

  IF g.gate IS DISTINCT FROM p_old.gate
     OR g.max_concurrent IS DISTINCT FROM p_old.max_concurrent
     OR g.max_tokens_per_day IS DISTINCT FROM p_old.max_tokens_per_day
     OR g.policy IS DISTINCT FROM p_old.policy THEN
    PERFORM mana_ai.notify_agent(p_old.agent_ref, p_old.version + 1, p_old.partition, g.gate, g.max_concurrent, g.max_tokens_per_day);
  END IF;
  RETURN true;
END
$$;

CREATE FUNCTION mana_ai.apply_agent_change(
  p_change_id uuid,
  p_user_id text,
  p_record_id text,
  p_op text,
  p_data jsonb,
  p_field_timestamps jsonb,
  p_created_at timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai
AS $$
DECLARE
  v_key bytea;
  v_old mana_ai.agent_snapshots%ROWTYPE;
  v_record jsonb;
  v_fts jsonb;
BEGIN
  IF p_user_id IS NULL OR p_user_id = '' OR p_record_id IS NULL THEN
    RAISE EXCEPTION 'change without user_id or record_id' USING ERRCODE = '22023';
  END IF;
  v_key := mana_ai.mission_key(p_user_id, p_record_id);
  FOR v_try IN 1..3 LOOP
    SELECT * INTO v_old FROM mana_ai.agent_snapshots WHERE agent_key = v_key FOR UPDATE;
    SELECT f.record, f.field_ts INTO v_record, v_fts
      FROM mana_ai.fold_change(v_old.record, v_old.field_ts, p_record_id, p_op, p_data, p_field_timestamps, p_created_at) AS f;
    IF mana_ai.store_agent_snapshot(v_old, p_user_id, p_record_id, v_record, v_fts, p_change_id) THEN
      RETURN;
    END IF;
  END LOOP;
  RAISE EXCEPTION 'snapshot of this agent was created concurrently and is not visible to this transaction'
    USING ERRCODE = '40001';
END
$$;

CREATE FUNCTION mana_ai.rebuild_agent_snapshot(p_user_id text, p_agent_id text)
RETURNS int
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, public
AS $$
DECLARE
  v_key bytea := mana_ai.mission_key(p_user_id, p_agent_id);
  v_old mana_ai.agent_snapshots%ROWTYPE;
  f record;
BEGIN
  PERFORM set_config('app.current_user_id', p_user_id, true);
  FOR v_try IN 1..3 LOOP
    SELECT * INTO v_old FROM mana_ai.agent_snapshots WHERE agent_key = v_key FOR UPDATE;
    SELECT * INTO f FROM mana_ai.fold_record(p_user_id, 'ai', 'agents', p_agent_id);
    IF v_old.aid IS NOT NULL AND f.record IS NOT NULL
       AND v_old.record = f.record AND v_old.field_ts = f.field_ts THEN
      RETURN f.rows_folded;
    END IF;
    IF mana_ai.store_agent_snapshot(v_old, p_user_id, p_agent_id, f.record, f.field_ts, f.last_change_id) THEN
      RETURN f.rows_folded;
    END IF;
  END LOOP;
  RAISE EXCEPTION 'snapshot of this agent was created concurrently and is not visible to this transaction'
    USING ERRCODE = '40001';
END
$$;

-- Fold errors: which kind of record failed, so the repair rebuilds the right one.
ALTER TABLE mana_ai.snapshot_errors
  ADD COLUMN kind text NOT NULL DEFAULT 'mission' CHECK (kind IN ('mission', 'agent'));

CREATE FUNCTION mana_ai.on_sync_agent_change()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, mana_ai
AS $$
DECLARE
  v_message text;
  v_sqlstate text;
  v_error_id bigint;
  v_transient boolean;
  v_partition int;
BEGIN
  BEGIN
    PERFORM mana_ai.apply_agent_change(NEW.id, NEW.user_id, NEW.record_id, NEW.op, NEW.data,
                                       NEW.field_timestamps, NEW.created_at);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_sqlstate = RETURNED_SQLSTATE;
    BEGIN
      v_transient := mana_ai.is_transient_sqlstate(v_sqlstate);
      v_partition := mana_ai.user_partition(NEW.user_id);
      INSERT INTO mana_ai.snapshot_errors (change_id, user_id, record_id, op, error, sqlstate, transient, partition, kind)
      VALUES (NEW.id, NEW.user_id, NEW.record_id, left(NEW.op, 16),
              left(coalesce(v_message, 'unknown error'), 2000), v_sqlstate, v_transient, v_partition, 'agent')
      RETURNING id INTO v_error_id;
      PERFORM pg_notify('mana_ai_snapshot_errors',
                        json_build_object('id', v_error_id, 'p', v_partition, 't', v_transient)::text);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'mana_ai: could not record snapshot error for change %', NEW.id;
    END;
  END;
  RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.on_sync_agent_change() FROM PUBLIC;

-- On the same table as the mission trigger (found through it, as
-- grant_runtime_role does), for agent rows only: other apps' writes cost
-- one WHEN test, as before.
DO $$
DECLARE
  v_sync regclass;
BEGIN
  SELECT tgrelid::regclass INTO v_sync FROM pg_trigger WHERE tgname = 'mana_ai_mission_snapshot';
  EXECUTE format($t$CREATE TRIGGER mana_ai_agent_snapshot
                     AFTER INSERT ON %s
                     FOR EACH ROW
                     WHEN (NEW.app_id = 'ai' AND NEW.table_name = 'agents')
                     EXECUTE FUNCTION mana_ai.on_sync_agent_change()$t$, v_sync);
END
$$;

CREATE OR REPLACE FUNCTION mana_ai.repair_snapshot_error(p_error_id bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, public
AS $$
DECLARE
  e mana_ai.snapshot_errors%ROWTYPE;
BEGIN
  SELECT * INTO e FROM mana_ai.snapshot_errors
   WHERE id = p_error_id AND transient AND repaired_at IS NULL
     FOR UPDATE SKIP LOCKED;
  IF e.id IS NULL THEN
    RETURN 'not-pending';
  END IF;
  BEGIN
    IF e.kind = 'agent' THEN
      PERFORM mana_ai.rebuild_agent_snapshot(e.user_id, e.record_id);
    ELSE
      PERFORM mana_ai.rebuild_snapshot(e.user_id, e.record_id);
    END IF;
    UPDATE mana_ai.snapshot_errors SET repaired_at = now(), repair_error = NULL WHERE id = e.id;
    RETURN 'repaired';
  EXCEPTION WHEN OTHERS THEN
    UPDATE mana_ai.snapshot_errors SET repair_error = left(SQLERRM, 2000) WHERE id = e.id;
    RETURN 'failed';
  END;
END
$$;

-- A mission's agent: the agentId of its record when that is a non-empty
-- string, and the ref the reactor groups by.
ALTER TABLE mana_ai.mission_snapshots ADD COLUMN agent_id text;
ALTER TABLE mana_ai.mission_snapshots
  ADD COLUMN agent_ref bigint GENERATED ALWAYS AS (mana_ai.agent_ref(user_id, agent_id)) STORED;

CREATE FUNCTION mana_ai.agent_id_of(p_record jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT nullif(mana_ai.ts_text(p_record -> 'agentId'), '')
$$;

UPDATE mana_ai.mission_snapshots SET agent_id = mana_ai.agent_id_of(record) WHERE mana_ai.agent_id_of(record) IS NOT NULL;

CREATE FUNCTION mana_ai.notify_schedule(p_sid bigint, p_version bigint, p_partition int, p_due_ms bigint, p_agent_ref bigint)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
  SELECT pg_notify('mana_ai_missions',
                   json_build_object('s', p_sid, 'v', p_version, 'p', p_partition, 'd', p_due_ms, 'g', p_agent_ref)::text)
$$;

-- As in 008, and the agent: stored with the record, and a change of agent
-- NOTIFYs like a change of schedule.
CREATE OR REPLACE FUNCTION mana_ai.store_snapshot(
  p_old mana_ai.mission_snapshots,
  p_user_id text,
  p_mission_id text,
  p_record jsonb,
  p_field_ts jsonb,
  p_change_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai
AS $$
DECLARE
  v_state text;
  v_next timestamptz;
  v_deleted boolean;
  v_agent text;
  v_row mana_ai.mission_snapshots%ROWTYPE;
BEGIN
  IF p_record IS NULL THEN
    IF p_old.sid IS NOT NULL THEN
      DELETE FROM mana_ai.mission_snapshots WHERE sid = p_old.sid;
      PERFORM mana_ai.notify_schedule(p_old.sid, p_old.version + 1, p_old.partition, NULL, p_old.agent_ref);
    END IF;
    RETURN true;
  END IF;

  v_state := mana_ai.ts_text(p_record -> 'state');
  v_next := mana_ai.parse_iso(mana_ai.ts_text(p_record -> 'nextRunAt'));
  v_deleted := mana_ai.record_deleted(p_record);
  v_agent := mana_ai.agent_id_of(p_record);

  IF p_old.sid IS NULL THEN
    INSERT INTO mana_ai.mission_snapshots
      (user_id, mission_id, record, field_ts, state, next_run_at, deleted, agent_id, version, last_change_id)
    VALUES (p_user_id, p_mission_id, p_record, p_field_ts, v_state, v_next, v_deleted, v_agent, 1, p_change_id)
    ON CONFLICT (mission_key) DO NOTHING
    RETURNING * INTO v_row;
    IF v_row.sid IS NULL THEN
      RETURN false;
    END IF;
    PERFORM mana_ai.notify_schedule(v_row.sid, v_row.version, v_row.partition,
                                    mana_ai.schedulable_due_ms(v_state, v_deleted, v_next), v_row.agent_ref);
    RETURN true;
  END IF;

  UPDATE mana_ai.mission_snapshots
     SET record = p_record,
         field_ts = p_field_ts,
         state = v_state,
         next_run_at = v_next,
         deleted = v_deleted,
         agent_id = v_agent,
         version = version + 1,
         last_change_id = p_change_id,
         updated_at = now()
   WHERE sid = p_old.sid
  RETURNING * INTO v_row;

  IF v_state IS DISTINCT FROM p_old.state
     OR v_next IS DISTINCT FROM p_old.next_run_at
     OR v_deleted IS DISTINCT FROM p_old.deleted
     OR v_agent IS DISTINCT FROM p_old.agent_id THEN
    PERFORM mana_ai.notify_schedule(v_row.sid, v_row.version, v_row.partition,
                                    mana_ai.schedulable_due_ms(v_state, v_deleted, v_next), v_row.agent_ref);
  END IF;
  RETURN true;
END
$$;

-- Token usage (section 10): one row per LLM answer of a run, written in the
-- write-back's transaction. agent_id is NULL for a run without an agent.
-- `estimated` marks a count the runner estimated because the answer had no
-- usage.total_tokens. Row-level security as on every per-user table; the
-- claim and the view read it with their own scope.
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

-- How long usage is kept: twice the budget window, so "what did it spend
-- yesterday" can still be answered, and no longer.
CREATE FUNCTION mana_ai.token_usage_retention()
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT interval '48 hours' $$;

-- Pruning rides on the inserts: each new row deletes up to 100 rows older
-- than the retention (any user's; skipping rows another insert is deleting).
-- Rows age out no faster than they arrive, so this keeps up, and an idle
-- system costs nothing. SECURITY DEFINER: the daemon itself may only insert.
CREATE FUNCTION mana_ai.prune_token_usage()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, mana_ai
AS $$
BEGIN
  DELETE FROM mana_ai.token_usage
   WHERE id IN (SELECT u.id FROM mana_ai.token_usage u
                 WHERE u.ts < now() - mana_ai.token_usage_retention()
                 ORDER BY u.ts
                 LIMIT 100
                 FOR UPDATE SKIP LOCKED);
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION mana_ai.prune_token_usage() FROM PUBLIC;

CREATE TRIGGER token_usage_prune
  AFTER INSERT ON mana_ai.token_usage
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.prune_token_usage();

-- Tokens an agent used in the rolling 24 h window. Runs as the caller:
-- the caller's transaction must be scoped to p_user_id.
CREATE FUNCTION mana_ai.agent_tokens_used(p_user_id text, p_agent_id text)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, mana_ai
AS $$
  SELECT coalesce(sum(u.tokens_used), 0)::bigint
    FROM mana_ai.token_usage u
   WHERE u.user_id = p_user_id AND u.agent_id = p_agent_id AND u.ts > now() - interval '24 hours'
$$;

-- The first moment at which the agent's usage in the window falls below
-- p_budget: walking the counted rows oldest first, the time the first row
-- leaves the window after which the newer rows alone stay under budget
-- (when dropping the oldest row is enough, that is the oldest row + 24 h).
-- NULL when no such moment comes without a change of budget (budget 0).
CREATE FUNCTION mana_ai.budget_frees_at(p_user_id text, p_agent_id text, p_budget bigint)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, mana_ai
AS $$
  SELECT x.ts + interval '24 hours'
    FROM (SELECT u.ts, u.id,
                 coalesce(sum(u.tokens_used) OVER (ORDER BY u.ts DESC, u.id DESC
                                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS newer
            FROM mana_ai.token_usage u
           WHERE u.user_id = p_user_id AND u.agent_id = p_agent_id AND u.ts > now() - interval '24 hours') x
   WHERE x.newer < p_budget
   ORDER BY x.ts, x.id
   LIMIT 1
$$;

-- Runs remember the agent they ran under, so the claim can count an
-- agent's runs in flight.
ALTER TABLE mana_ai.mission_runs ADD COLUMN agent_key bytea;
CREATE INDEX mission_runs_agent_running ON mana_ai.mission_runs (agent_key) WHERE status = 'running';

DROP FUNCTION mana_ai.claim_run(bigint, timestamptz, text, interval, interval, int, int);

-- Outcomes as in 010, and the agent's gates, checked in this order after
-- `moved`: agent-paused | agent-archived | agent-deleted (the agent's
-- state), throttled, agent-busy (max_concurrent runs of the agent in flight
-- on live claims; retry_at = the earliest of their lease ends),
-- over-budget (tokens in the last 24 h >= budget; retry_at = when the
-- window frees enough, NULL = not before the budget changes). Claims of one
-- agent are serialised by a transaction advisory lock, so two daemons can
-- never both see a free slot. `agent` describes the agent for the reactor
-- (gate fields, version) and, on `claimed`, for the run (record).
CREATE FUNCTION mana_ai.claim_run(
  p_sid bigint,
  p_due_at timestamptz,
  p_worker text,
  p_lease interval,
  p_min_gap interval,
  p_slot int,
  p_pid int)
RETURNS TABLE (
  outcome text,
  run_id bigint,
  attempts int,
  retry_at timestamptz,
  user_id text,
  mission_id text,
  record jsonb,
  version bigint,
  agent jsonb)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai
AS $$
DECLARE
  s mana_ai.mission_snapshots%ROWTYPE;
  a mana_ai.agent_snapshots%ROWTYPE;
  r mana_ai.mission_runs%ROWTYPE;
  v_last timestamptz;
  v_busy int;
  v_busy_until timestamptz;
  v_used bigint;
BEGIN
  SELECT * INTO s FROM mana_ai.mission_snapshots ms WHERE ms.sid = p_sid;
  IF s.sid IS NULL OR s.deleted OR s.state IS DISTINCT FROM 'active' OR s.next_run_at IS DISTINCT FROM p_due_at THEN
    outcome := 'moved';
    RETURN NEXT;
    RETURN;
  END IF;

  IF s.agent_id IS NOT NULL THEN
    SELECT * INTO a FROM mana_ai.agent_snapshots ag WHERE ag.agent_key = mana_ai.mission_key(s.user_id, s.agent_id);
  END IF;
  IF a.aid IS NOT NULL THEN
    agent := jsonb_build_object('ref', a.agent_ref, 'version', a.version, 'gate', a.gate,
                                'maxConcurrent', a.max_concurrent, 'budget', a.max_tokens_per_day);
    IF a.gate <> 'active' THEN
      outcome := 'agent-' || a.gate;
      RETURN NEXT;
      RETURN;
    END IF;
  END IF;

  SELECT max(mr.started_at) INTO v_last
    FROM mana_ai.mission_runs mr
   WHERE mr.mission_key = s.mission_key AND mr.due_at <> p_due_at;
  IF v_last IS NOT NULL AND v_last > now() - p_min_gap THEN
    outcome := 'throttled';
    retry_at := v_last + p_min_gap;
    RETURN NEXT;
    RETURN;
  END IF;

  IF a.aid IS NOT NULL THEN
    -- One claimer of this agent at a time, until this statement commits
    -- (the run row it inserts is then visible to the next one).
    PERFORM pg_advisory_xact_lock(1634271233, (a.agent_ref & 2147483647)::int);
    SELECT count(*), min(mr.lease_until) INTO v_busy, v_busy_until
      FROM mana_ai.mission_runs mr
     WHERE mr.agent_key = a.agent_key AND mr.status = 'running'
       AND NOT (mr.mission_key = s.mission_key AND mr.due_at = p_due_at)
       AND mr.lease_until >= now()
       AND mana_ai.claimer_alive(mr.claimed_slot, mr.claimed_pid);
    IF v_busy >= a.max_concurrent THEN
      outcome := 'agent-busy';
      retry_at := v_busy_until;
      RETURN NEXT;
      RETURN;
    END IF;
    IF a.max_tokens_per_day IS NOT NULL THEN
      PERFORM set_config('app.current_user_id', s.user_id, true);
      v_used := mana_ai.agent_tokens_used(s.user_id, s.agent_id);
      IF v_used >= a.max_tokens_per_day THEN
        outcome := 'over-budget';
        retry_at := mana_ai.budget_frees_at(s.user_id, s.agent_id, a.max_tokens_per_day);
        agent := agent || jsonb_build_object('used', v_used);
        RETURN NEXT;
        RETURN;
      END IF;
      agent := agent || jsonb_build_object('used', v_used);
    END IF;
  END IF;

  INSERT INTO mana_ai.mission_runs AS mr
         (mission_key, sid, user_id, mission_id, due_at, status, attempts, claimed_by, lease_until, claimed_slot, claimed_pid, agent_key)
  VALUES (s.mission_key, s.sid, s.user_id, s.mission_id, p_due_at, 'running', 1, p_worker, now() + p_lease, p_slot, p_pid, a.agent_key)
  ON CONFLICT (mission_key, due_at) DO UPDATE
     SET status = 'running',
         attempts = mr.attempts + 1,
         claimed_by = EXCLUDED.claimed_by,
         lease_until = EXCLUDED.lease_until,
         claimed_slot = EXCLUDED.claimed_slot,
         claimed_pid = EXCLUDED.claimed_pid,
         agent_key = EXCLUDED.agent_key,
         started_at = now()
   WHERE mr.status = 'released'
      OR (mr.status = 'running'
          AND (mr.lease_until < now() OR NOT mana_ai.claimer_alive(mr.claimed_slot, mr.claimed_pid)))
  RETURNING mr.* INTO r;

  IF r.run_id IS NOT NULL THEN
    outcome := 'claimed';
    run_id := r.run_id;
    attempts := r.attempts;
    user_id := s.user_id;
    mission_id := s.mission_id;
    record := s.record;
    version := s.version;
    IF a.aid IS NOT NULL THEN
      agent := agent || jsonb_build_object('id', a.agent_id, 'record', a.record);
    END IF;
    RETURN NEXT;
    RETURN;
  END IF;

  SELECT * INTO r FROM mana_ai.mission_runs mr WHERE mr.mission_key = s.mission_key AND mr.due_at = p_due_at;
  IF r.status = 'running' THEN
    outcome := 'held';
    retry_at := r.lease_until;
  ELSE
    outcome := 'finished';
  END IF;
  RETURN NEXT;
END
$$;

-- The agent's name as it stands now, for the write-back's actor (read in
-- the write-back's transaction). NULL when the agent record is gone.
CREATE FUNCTION mana_ai.agent_name(p_user_id text, p_agent_id text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, mana_ai
AS $$
  SELECT mana_ai.ts_text(a.record -> 'name')
    FROM mana_ai.agent_snapshots a
   WHERE a.agent_key = mana_ai.mission_key(p_user_id, p_agent_id)
$$;

-- Operators' view: per agent, what it used in the window, its budget, and
-- the next time it may run (now when nothing holds it; NULL when only the
-- user can change that: paused, archived, deleted, or budget 0).
CREATE VIEW mana_ai.agent_budget AS
SELECT a.user_id,
       a.agent_id,
       mana_ai.ts_text(a.record -> 'name') AS name,
       a.gate                              AS state,
       a.max_concurrent,
       a.max_tokens_per_day                AS budget,
       u.used                              AS used_24h,
       u.estimated_rows,
       greatest(u.used - a.max_tokens_per_day, 0) AS overshoot,
       (SELECT count(*) FROM mana_ai.mission_runs r
         WHERE r.agent_key = a.agent_key AND r.status = 'running')::int AS runs_in_flight,
       (SELECT count(*) FROM mana_ai.mission_snapshots m
         WHERE m.user_id = a.user_id AND m.agent_id = a.agent_id AND NOT m.deleted)::int AS missions,
       CASE WHEN a.gate <> 'active' THEN NULL
            WHEN a.max_tokens_per_day IS NULL OR u.used < a.max_tokens_per_day THEN now()
            ELSE mana_ai.budget_frees_at(a.user_id, a.agent_id, a.max_tokens_per_day) END AS may_run_at,
       a.partition,
       a.version,
       a.updated_at
  FROM mana_ai.agent_snapshots a
  CROSS JOIN LATERAL (
        SELECT coalesce(sum(t.tokens_used), 0)::bigint AS used,
               count(*) FILTER (WHERE t.estimated)::int AS estimated_rows
          FROM mana_ai.token_usage t
         WHERE t.user_id = a.user_id AND t.agent_id = a.agent_id AND t.ts > now() - interval '24 hours') u;

-- Backfill covers agents: its cursor now names the table too.
ALTER TABLE mana_ai.backfill_progress ADD COLUMN last_table_name text;
UPDATE mana_ai.backfill_progress SET last_table_name = 'aiMissions' WHERE last_user_id IS NOT NULL;

-- The runtime role's rights, now with agents and usage (sql/011).
CREATE OR REPLACE FUNCTION mana_ai.grant_runtime_role(p_role text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai
AS $$
DECLARE
  v_role pg_roles%ROWTYPE;
  v_sync regclass;
BEGIN
  SELECT * INTO v_role FROM pg_roles WHERE rolname = p_role;
  IF v_role.rolname IS NULL THEN
    RAISE EXCEPTION 'role "%" does not exist', p_role
      USING ERRCODE = '42704', HINT = 'Create it first, e.g. CREATE ROLE mana_ai_runtime LOGIN PASSWORD ''...'' NOSUPERUSER NOBYPASSRLS;';
  END IF;
  IF v_role.rolsuper OR v_role.rolbypassrls THEN
    RAISE WARNING 'role "%" is a superuser or bypasses row-level security: the grants are moot and mana-sync''s RLS does not bind it', p_role;
  END IF;

  SELECT tgrelid::regclass INTO v_sync FROM pg_trigger WHERE tgname = 'mana_ai_mission_snapshot';
  IF v_sync IS NULL THEN
    RAISE EXCEPTION 'the mana_ai snapshot trigger on sync_changes is missing; run all migrations first';
  END IF;

  EXECUTE format('GRANT USAGE ON SCHEMA mana_ai TO %I', p_role);
  EXECUTE format('GRANT SELECT ON mana_ai.mission_snapshots, mana_ai.agent_snapshots, mana_ai.schema_migrations, mana_ai.due_missions, mana_ai.mission_schedule, mana_ai.agent_budget TO %I', p_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON mana_ai.mission_runs TO %I', p_role);
  EXECUTE format('GRANT SELECT, INSERT ON mana_ai.decrypt_audit, mana_ai.token_usage TO %I', p_role);
  EXECUTE format('GRANT USAGE ON SEQUENCE mana_ai.decrypt_audit_id_seq, mana_ai.token_usage_id_seq TO %I', p_role);
  EXECUTE format('GRANT EXECUTE ON FUNCTION mana_ai.lock_snapshot_for_write_back(bigint), mana_ai.repair_snapshot_error(bigint), mana_ai.pending_snapshot_errors(int[], int) TO %I', p_role);
  BEGIN
    EXECUTE format('GRANT SELECT, INSERT ON %s TO %I', v_sync, p_role);
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'cannot grant SELECT, INSERT on % to %: this role does not own mana-sync''s table', v_sync, p_role
      USING ERRCODE = '42501', HINT = format('Ask mana-sync''s owner to run: GRANT SELECT, INSERT ON %s TO %I;', v_sync, p_role);
  END;

  INSERT INTO mana_ai.runtime_roles (role_name) VALUES (p_role)
  ON CONFLICT (role_name) DO UPDATE SET granted_at = now();
END
$$;
