-- An operators' view (docs/ops.md). Read-only; it never hides a column's
-- meaning behind the daemon's in-memory state.

-- Parked missions: a change by the user unparks one at once (the trigger,
-- sql/functions/unpark.sql), so the snapshot's flag is the truth.
CREATE OR REPLACE VIEW mana_ai.parked_missions AS
SELECT p.user_id, p.mission_id, s.record ->> 'title' AS title, p.failures, p.last_error, p.parked_at, p.parked_version,
       s.next_run_at, p.sid
  FROM mana_ai.parked p
  JOIN mana_ai.mission_snapshots s ON s.sid = p.sid
 WHERE s.parked AND NOT s.deleted AND s.state = 'active';
