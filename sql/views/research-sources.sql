-- An operators' view (docs/ops.md, docs/research.md): what each run's
-- research asked and brought, newest first. It reads research_runs as its
-- caller (security_invoker), so row-level security still shows a runtime
-- role only the rows of app.current_user_id; operators read it as a role
-- with BYPASSRLS, or one user's rows through GET /internal/research.
CREATE OR REPLACE VIEW mana_ai.research_sources WITH (security_invoker = true) AS
SELECT r.user_id, r.mission_id, r.due_at, r.kind, r.query, r.language, r.outcome,
       jsonb_array_length(r.sources) AS source_count,
       (SELECT coalesce(jsonb_agg(s -> 'url'), '[]'::jsonb) FROM jsonb_array_elements(r.sources) s) AS urls,
       r.created_at
  FROM mana_ai.research_runs r
 ORDER BY r.id DESC;
