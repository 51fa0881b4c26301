-- 018: a claim's witness is its daemon's generation (issue 18).
--
-- Until now a claim named its daemon's membership session (slot and
-- backend pid, sql/010). Two things went wrong with that:
--   * a blip of that one connection (a restart of a pooler, a cut TCP
--     connection) made every claim of a healthy daemon look dead, so its
--     peers ran its runs a second time (the LLM asked twice, the tokens of
--     the losing write-back not charged), and claims made while the
--     connection came back were never adopted;
--   * a pid reused by a later backend that also took the same slot vouched
--     for a dead daemon's claims.
-- Now every daemon process draws a random generation at start and holds
-- the *shared* advisory lock (0x61690002, generation) on both of its
-- long-lived connections, the partition-lock connection and the LISTEN
-- connection. A claim records the generation; the claimer is alive while
-- any session holds that lock: one connection's blip leaves the other, a
-- dead process leaves none, and a reused pid holds no generation lock.
-- Claims without a generation (older daemons) are judged as before.

ALTER TABLE mana_ai.mission_runs ADD COLUMN claimed_gen int;

CREATE FUNCTION mana_ai.claimer_alive(p_slot int, p_pid int, p_gen int)
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

DROP FUNCTION mana_ai.claim_run(bigint, timestamptz, text, interval, interval, int, int);

-- As in 012, with the claimer's generation: recorded with the claim, and
-- the claims of others judged alive by theirs.
CREATE FUNCTION mana_ai.claim_run(
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
  agent jsonb)
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
