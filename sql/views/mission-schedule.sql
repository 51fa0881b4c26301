-- An operators' view (docs/ops.md). Read-only; it never hides a column's
-- meaning behind the daemon's in-memory state.

-- Per mission: who, what, when next, and how the last run went.
CREATE OR REPLACE VIEW mana_ai.mission_schedule AS
SELECT s.sid,
       s.user_id,
       s.mission_id,
       mana_ai.ts_text(s.record -> 'title') AS title,
       s.state,
       s.deleted,
       CASE WHEN jsonb_typeof(s.record -> 'cadence') = 'object'
            THEN mana_ai.ts_text(s.record -> 'cadence' -> 'kind') END AS cadence_kind,
       s.next_run_at,
       CASE WHEN jsonb_typeof(s.record -> 'iterations') = 'array'
            THEN jsonb_array_length(s.record -> 'iterations') ELSE 0 END AS iteration_count,
       CASE WHEN jsonb_typeof(s.record -> 'iterations') = 'array'
             AND jsonb_typeof(s.record -> 'iterations' -> -1) = 'object'
            THEN mana_ai.ts_text(s.record -> 'iterations' -> -1 -> 'overallStatus') END AS last_iteration_status,
       r.status      AS last_run_status,
       r.due_at      AS last_run_due_at,
       r.finished_at AS last_run_finished_at,
       r.error       AS last_run_error,
       s.version,
       s.updated_at
  FROM mana_ai.mission_snapshots s
  LEFT JOIN LATERAL (
        SELECT r.status, r.due_at, r.finished_at, r.error
          FROM mana_ai.mission_runs r
         WHERE r.mission_key = s.mission_key
         ORDER BY r.due_at DESC
         LIMIT 1) r ON true;
