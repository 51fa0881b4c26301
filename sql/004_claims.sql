-- 004: claiming a run. Each (mission, due time) is planned once, by any
-- number of daemons, across crashes: the unique key of mission_runs is the
-- guarantee, the lease is how a crashed daemon's claim is taken over.
-- The write-back marks the run finished in the same transaction as its
-- sync_changes row (src/write-back/write-back.ts), so "done" and "written"
-- are one fact.

-- Outcomes:
--   claimed    the caller owns the run until lease_until
--   moved      the snapshot is not active at this due time any more
--   throttled  the mission ran less than p_min_gap ago; retry at retry_at
--   held       another claim is alive; retry at retry_at (its lease end)
--   finished   this due time was already handled
CREATE FUNCTION mana_ai.claim_run(
  p_sid bigint,
  p_due_at timestamptz,
  p_worker text,
  p_lease interval,
  p_min_gap interval)
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
         (mission_key, sid, user_id, mission_id, due_at, status, attempts, claimed_by, lease_until)
  VALUES (s.mission_key, s.sid, s.user_id, s.mission_id, p_due_at, 'running', 1, p_worker, now() + p_lease)
  ON CONFLICT (mission_key, due_at) DO UPDATE
     SET status = 'running',
         attempts = mr.attempts + 1,
         claimed_by = EXCLUDED.claimed_by,
         lease_until = EXCLUDED.lease_until,
         started_at = now()
   WHERE mr.status = 'released'
      OR (mr.status = 'running' AND mr.lease_until < now())
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
