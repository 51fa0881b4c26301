-- 010: a claim lives as long as the daemon that made it.
--
-- Until now a claim was valid until its lease ran out (5 min): a dead
-- daemon's runs waited that long, and an alive daemon whose LLM took
-- longer than the lease lost its run to a peer, which asked the LLM again.
-- Now a claim names its daemon's membership session: the backend pid of the
-- connection that holds the daemon's membership slot lock (namespace
-- MEMBER_NS of src/db/sql/partition-locks.ts). That lock lives exactly as
-- long as the daemon's session, so pg_locks answers "is the claimer alive?"
-- without a heartbeat. A claim whose witness is gone is taken over at once;
-- the lease stays only as the last resort for a daemon that is alive but
-- wedged, and the configuration keeps it longer than the worst case of one
-- run (src/config.ts).

ALTER TABLE mana_ai.mission_runs
  ADD COLUMN claimed_slot int,
  ADD COLUMN claimed_pid  int;

-- True while the session that holds membership slot p_slot is backend
-- p_pid. A claim without a witness (made before this migration, or while
-- the daemon's lock connection was down) counts as alive: only its lease
-- ends it.
CREATE FUNCTION mana_ai.claimer_alive(p_slot int, p_pid int)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
  SELECT p_slot IS NULL OR p_pid IS NULL OR EXISTS (
    SELECT 1 FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
       AND l.classid = 1634271232::oid           -- MEMBER_NS, 0x61690000
       AND l.objid = p_slot::oid
       AND l.pid = p_pid
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
$$;

DROP FUNCTION mana_ai.claim_run(bigint, timestamptz, text, interval, interval);

-- Outcomes as in 004; `held` now means "claimed by a daemon that is alive",
-- with retry_at = that claim's lease end (the last resort).
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
  version bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai
AS $$
DECLARE
  s mana_ai.mission_snapshots%ROWTYPE;
  r mana_ai.mission_runs%ROWTYPE;
  v_last timestamptz;
BEGIN
  SELECT * INTO s FROM mana_ai.mission_snapshots ms WHERE ms.sid = p_sid;
  IF s.sid IS NULL OR s.deleted OR s.state IS DISTINCT FROM 'active' OR s.next_run_at IS DISTINCT FROM p_due_at THEN
    outcome := 'moved';
    RETURN NEXT;
    RETURN;
  END IF;

  -- No mission runs more than once per p_min_gap, whatever its cadence or
  -- its devices say (a hot loop would burn the LLM budget).
  SELECT max(mr.started_at) INTO v_last
    FROM mana_ai.mission_runs mr
   WHERE mr.mission_key = s.mission_key AND mr.due_at <> p_due_at;
  IF v_last IS NOT NULL AND v_last > now() - p_min_gap THEN
    outcome := 'throttled';
    retry_at := v_last + p_min_gap;
    RETURN NEXT;
    RETURN;
  END IF;

  INSERT INTO mana_ai.mission_runs AS mr
         (mission_key, sid, user_id, mission_id, due_at, status, attempts, claimed_by, lease_until, claimed_slot, claimed_pid)
  VALUES (s.mission_key, s.sid, s.user_id, s.mission_id, p_due_at, 'running', 1, p_worker, now() + p_lease, p_slot, p_pid)
  ON CONFLICT (mission_key, due_at) DO UPDATE
     SET status = 'running',
         attempts = mr.attempts + 1,
         claimed_by = EXCLUDED.claimed_by,
         lease_until = EXCLUDED.lease_until,
         claimed_slot = EXCLUDED.claimed_slot,
         claimed_pid = EXCLUDED.claimed_pid,
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
CREATE FUNCTION mana_ai.adopt_claims(p_run_ids bigint[], p_worker text, p_slot int, p_pid int)
RETURNS SETOF bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, mana_ai
AS $$
  UPDATE mana_ai.mission_runs
     SET claimed_slot = p_slot, claimed_pid = p_pid
   WHERE run_id = ANY(p_run_ids) AND claimed_by = p_worker AND status = 'running'
  RETURNING run_id
$$;
