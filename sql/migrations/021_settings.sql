-- 021: settings of the deployment that the database itself must know,
-- because code that runs in mana-sync's sessions (the trigger) depends on
-- them. One today: `merge_rule`, the webapp generation whose merge rule
-- the fold applies ('v0.4' | 'head'; CONTRACT.md sections 3 and 12), set
-- by `npm run migrate -- --webapp NAME` and filled into fold_change by
-- migrate (sql/functions/merge.sql). Absent means 'v0.4'.
CREATE TABLE mana_ai.settings (
  key        text PRIMARY KEY CHECK (key IN ('merge_rule')),
  value      text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (key <> 'merge_rule' OR value IN ('v0.4', 'head'))
);
