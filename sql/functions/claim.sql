-- Claiming a run. Each (mission, due time) is planned once, by any number
-- of daemons, across crashes: the unique key of mission_runs is the
-- guarantee; a claim lives as long as its daemon's generation lock (or,
-- as the last resort, its lease). The write-back marks the run finished in
-- the same transaction as its sync_changes row. Never runs the LLM, never
-- writes to mana-sync's table.

-- True while the session that holds membership slot p_slot is backend
-- p_pid (daemons from before the generation). A claim without a witness
-- counts as alive: only its lease ends it.
CREATE OR REPLACE FUNCTION mana_ai.claimer_alive(p_slot int, p_pid int)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT p_slot IS NULL OR p_pid IS NULL OR EXISTS (
    SELECT 1 FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
       AND l.classid = 1634271232::oid           -- MEMBER_NS, 0x61690000
       AND l.objid = p_slot::oid
       AND l.pid = p_pid
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
$$;

-- True while any session holds the claimer's generation lock (GEN_NS of
-- src/db/sql/partition-locks.ts): a blip of one of its connections leaves
-- the other, a dead process leaves none, a reused pid holds none. Claims
-- without a generation are judged by their slot and pid.
CREATE OR REPLACE FUNCTION mana_ai.claimer_alive(p_slot int, p_pid int, p_gen int)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN p_gen IS NOT NULL THEN EXISTS (
                SELECT 1 FROM pg_catalog.pg_locks l
                 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                   AND l.classid = 1634271234::oid           -- GEN_NS, 0x61690002
                   AND l.objid = (p_gen::bigint & 4294967295)::oid
                   AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))
              ELSE mana_ai.claimer_alive(p_slot, p_pid) END
$$;

-- Outcomes:
--   claimed    the caller owns the run (until its generation dies, or lease_until)
--   moved      the snapshot is not active at this due time any more
--   agent-paused | agent-archived | agent-deleted   the agent's gate
--   throttled  the mission ran less than p_min_gap ago; retry at retry_at
--   agent-busy max_concurrent runs of the agent in flight on live claims;
--              retry_at = the earliest of their lease ends
--   over-budget tokens in the last 24 h >= budget; retry_at = when the window
--              frees enough, NULL = not before the budget changes
--   held       another live claim; retry at retry_at (its lease end)
--   finished   this (mission, due time) is done
-- Claims of one agent are serialised by a transaction advisory lock, so two
-- daemons never both see a free slot. `agent` describes the agent for the
-- reactor and, on `claimed`, for the run. The claim records the claimer's
-- generation; others' claims are judged alive by theirs.
-- 030: the claim also says whether the mission is parked (the run read it
-- in a query of its own before, issue 30); a changed result needs the drop.
DROP FUNCTION IF EXISTS mana_ai.claim_run(bigint, timestamptz, text, interval, interval, int, int, int);
CREATE OR REPLACE FUNCTION mana_ai.claim_run(
  p_sid bigint,
  p_due_at timestamptz,
  p_worker text,
  p_lease interval,
  p_min_gap interval,
  p_slot int,
  p_pid int,
  p_gen int)
RETURNS TABLE (
  outcome text,
  run_id bigint,
  attempts int,
  retry_at timestamptz,
  user_id text,
  mission_id text,
  record jsonb,
  version bigint,
  agent jsonb,
  parked boolean)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
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
       AND mana_ai.claimer_alive(mr.claimed_slot, mr.claimed_pid, mr.claimed_gen);
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
         (mission_key, sid, user_id, mission_id, due_at, status, attempts, claimed_by, lease_until, claimed_slot, claimed_pid, claimed_gen, agent_key)
  VALUES (s.mission_key, s.sid, s.user_id, s.mission_id, p_due_at, 'running', 1, p_worker, now() + p_lease, p_slot, p_pid, p_gen, a.agent_key)
  ON CONFLICT (mission_key, due_at) DO UPDATE
     SET status = 'running',
         attempts = mr.attempts + 1,
         claimed_by = EXCLUDED.claimed_by,
         lease_until = EXCLUDED.lease_until,
         claimed_slot = EXCLUDED.claimed_slot,
         claimed_pid = EXCLUDED.claimed_pid,
         claimed_gen = EXCLUDED.claimed_gen,
         agent_key = EXCLUDED.agent_key,
         started_at = now()
   WHERE mr.status = 'released'
      OR (mr.status = 'running'
          AND (mr.lease_until < now() OR NOT mana_ai.claimer_alive(mr.claimed_slot, mr.claimed_pid, mr.claimed_gen)))
  RETURNING mr.* INTO r;

  IF r.run_id IS NOT NULL THEN
    outcome := 'claimed';
    run_id := r.run_id;
    attempts := r.attempts;
    user_id := s.user_id;
    mission_id := s.mission_id;
    record := s.record;
    version := s.version;
    parked := s.parked;
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

-- After its lock connection came back (new session, new pid), a daemon
-- moves the witness of the runs it still has in flight to the new session,
-- unless a peer took them meanwhile. Returns the runs kept.
CREATE OR REPLACE FUNCTION mana_ai.adopt_claims(p_run_ids bigint[], p_worker text, p_slot int, p_pid int)
RETURNS SETOF bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
  UPDATE mana_ai.mission_runs
     SET claimed_slot = p_slot, claimed_pid = p_pid
   WHERE run_id = ANY(p_run_ids) AND claimed_by = p_worker AND status = 'running'
  RETURNING run_id
$$;

-- The write-back's first statement: the same row lock the trigger takes,
-- and the snapshot as it stands under it. Between this and the write-back's
-- insert no device change can be folded, and the insert's own trigger finds
-- the lock already held by its transaction. SECURITY DEFINER so the runtime
-- role needs no UPDATE right on the snapshots to lock one (FOR UPDATE
-- requires it); execution is granted to that role alone (sql/grants/runtime-role.sql).
--
-- p_wait_ms bounds the wait for the lock (MANA_AI_WRITE_BACK_LOCK_WAIT_MS):
-- a transaction of mana-sync's that holds the row (a device's push that
-- does not commit) must not hold the run past its lease. Past it the
-- statement fails with lock_not_available (55P03) and the run gives its
-- claim back with its plan kept (src/run/execute-run.ts). Only ever
-- tightens: an operator's lock_timeout that is already shorter (set for
-- the role, say) stands. NULL or 0: the session's lock_timeout as it is.
-- The setting is put back after the lock; a timeout aborts the
-- transaction, which undoes it too.
DROP FUNCTION IF EXISTS mana_ai.lock_snapshot_for_write_back(bigint);
CREATE OR REPLACE FUNCTION mana_ai.lock_snapshot_for_write_back(p_sid bigint, p_wait_ms int DEFAULT NULL)
RETURNS TABLE (record jsonb, state text, next_run_at timestamptz, deleted boolean, version bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_before text := pg_catalog.current_setting('lock_timeout');
  v_before_ms numeric;
BEGIN
  IF p_wait_ms IS NOT NULL AND p_wait_ms > 0 THEN
    -- the setting as shown ('0', '500ms', '2s', '1min', '1h', '1d'): every unit it uses is an interval unit
    v_before_ms := pg_catalog.date_part('epoch', v_before::interval) * 1000;
    IF v_before_ms = 0 OR v_before_ms > p_wait_ms THEN
      PERFORM pg_catalog.set_config('lock_timeout', p_wait_ms::text || 'ms', true);
    END IF;
  END IF;
  RETURN QUERY
    SELECT s.record, s.state, s.next_run_at, s.deleted, s.version
      FROM mana_ai.mission_snapshots s
     WHERE s.sid = p_sid
       FOR UPDATE;
  PERFORM pg_catalog.set_config('lock_timeout', v_before, true);
END
$$;

REVOKE ALL ON FUNCTION mana_ai.lock_snapshot_for_write_back(bigint, int) FROM PUBLIC;

-- The same lock without waiting (FOR UPDATE NOWAIT): a batch of
-- write-backs (write_back_runs) takes every lock this way, so it never
-- waits for a row: no transaction of mana-sync's that locks rows in
-- another order can deadlock with it, and one busy row never holds up the
-- runs behind it. lock_not_available: that run is written by the general
-- path, which waits for it alone, and boundedly.
CREATE OR REPLACE FUNCTION mana_ai.try_lock_snapshot_for_write_back(p_sid bigint)
RETURNS TABLE (record jsonb, state text, next_run_at timestamptz, deleted boolean, version bigint)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
  SELECT s.record, s.state, s.next_run_at, s.deleted, s.version
    FROM mana_ai.mission_snapshots s
   WHERE s.sid = p_sid
     FOR UPDATE NOWAIT
$$;
REVOKE ALL ON FUNCTION mana_ai.try_lock_snapshot_for_write_back(bigint) FROM PUBLIC;

-- Several claims in one statement (issue 30: a burst's runs leave the queue
-- together), each answered exactly as claim_run answers it alone; one
-- transaction, so one round trip and one commit. The common case is
-- claimed set-based: a mission active at its due time, without an agent,
-- not throttled, whose run has no row yet is claimed by one INSERT for
-- all of them, in (mission, due time) order so that two batches never
-- wait for each other's rows in opposite orders. Every other item (moved,
-- a mission of an agent, throttled, a run that has a row: held, finished,
-- released or its claimer gone; a repeat within the batch) goes through
-- claim_run, in order, after it: the rule of when a run is free to take
-- stays claim_run's alone.
CREATE OR REPLACE FUNCTION mana_ai.claim_runs(
  p_sids bigint[], p_dues timestamptz[], p_worker text, p_lease interval, p_min_gap interval, p_slot int, p_pid int, p_gen int)
RETURNS TABLE (ord int, outcome text, run_id bigint, attempts int, retry_at timestamptz, user_id text, mission_id text,
               record jsonb, version bigint, agent jsonb, parked boolean)
LANGUAGE plpgsql VOLATILE
-- planned once per connection: with the arrays' lengths known a custom plan
-- looked cheaper every time, and planning each call cost more than the claims
SET plan_cache_mode = force_generic_plan
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  v_ord int[];
  v_run bigint[];
  v_att int[];
  v_user text[];
  v_mission text[];
  v_record jsonb[];
  v_version bigint[];
  v_parked boolean[];
BEGIN
  WITH snap AS MATERIALIZED (
    -- by sid alone: given the due time as well, the planner took the
    -- next_run_at index, and a burst's missions share their due time
    SELECT i.n::int AS n, i.due, s.sid, s.mission_key, s.user_id, s.mission_id, s.record, s.version, s.parked,
           s.deleted, s.state, s.next_run_at, s.agent_id
      FROM unnest(p_sids, p_dues) WITH ORDINALITY AS i(sid, due, n)
      JOIN mana_ai.mission_snapshots s ON s.sid = i.sid
  ), cand AS (
    -- the first of repeats only: the others are claim_run's (held by this claim), and a
    -- repeat joined to the one row inserted would be answered claimed twice
    SELECT DISTINCT ON (r.sid, r.due) r.n, r.due, r.sid, r.mission_key, r.user_id, r.mission_id, r.record, r.version, r.parked
      FROM snap r
     WHERE NOT r.deleted AND r.state = 'active' AND r.next_run_at = r.due AND r.agent_id IS NULL
       AND NOT EXISTS (SELECT 1 FROM mana_ai.mission_runs mr
                        WHERE mr.mission_key = r.mission_key AND mr.due_at <> r.due AND mr.started_at > now() - p_min_gap)
     ORDER BY r.sid, r.due, r.n
  ), ins AS (
    INSERT INTO mana_ai.mission_runs AS mr
           (mission_key, sid, user_id, mission_id, due_at, status, attempts, claimed_by, lease_until, claimed_slot, claimed_pid, claimed_gen, agent_key)
    SELECT c.mission_key, c.sid, c.user_id, c.mission_id, c.due, 'running', 1, p_worker, now() + p_lease, p_slot, p_pid, p_gen, NULL
      FROM cand c
     ORDER BY c.mission_key, c.due
    -- a run that has a row is claim_run's to judge (below)
    ON CONFLICT (mission_key, due_at) DO NOTHING
    RETURNING mr.mission_key, mr.due_at, mr.run_id, mr.attempts
  )
  SELECT array_agg(c.n), array_agg(i.run_id), array_agg(i.attempts), array_agg(c.user_id), array_agg(c.mission_id),
         array_agg(c.record), array_agg(c.version), array_agg(c.parked)
    INTO v_ord, v_run, v_att, v_user, v_mission, v_record, v_version, v_parked
    FROM cand c
    JOIN ins i ON i.mission_key = c.mission_key AND i.due_at = c.due;

  RETURN QUERY
    SELECT u.n, 'claimed'::text, u.run_id, u.attempts, NULL::timestamptz, u.user_id, u.mission_id, u.record, u.version, NULL::jsonb, u.parked
      FROM unnest(v_ord, v_run, v_att, v_user, v_mission, v_record, v_version, v_parked)
           AS u(n, run_id, attempts, user_id, mission_id, record, version, parked);

  RETURN QUERY
    SELECT i.n::int, c.*
      FROM unnest(p_sids, p_dues) WITH ORDINALITY AS i(sid, due, n)
     CROSS JOIN LATERAL mana_ai.claim_run(i.sid, i.due, p_worker, p_lease, p_min_gap, p_slot, p_pid, p_gen) c
     WHERE v_ord IS NULL OR NOT (i.n::int = ANY (v_ord))
     ORDER BY i.n;
END
$$;
