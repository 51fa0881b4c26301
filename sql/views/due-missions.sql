-- An operators' view (docs/ops.md). Read-only; it never hides a column's
-- meaning behind the daemon's in-memory state.

-- What would run now: active, not deleted, next run in the past.
CREATE OR REPLACE VIEW mana_ai.due_missions AS
SELECT s.sid,
       s.user_id,
       s.mission_id,
       mana_ai.ts_text(s.record -> 'title') AS title,
       s.next_run_at,
       now() - s.next_run_at                 AS overdue_by,
       s.partition
  FROM mana_ai.mission_snapshots s
 WHERE s.state = 'active' AND NOT s.deleted AND s.next_run_at <= now();
