-- 023: no iteration that reached the server is lost while its mission
-- exists (issue 28; CONTRACT.md section 13). Every mission update the
-- webapp pushes carries its whole `iterations` array with one fresh
-- timestamp; a device that had not pulled the runner's write-back (or
-- another device's foreground iteration) erases it by field-level
-- last-write-wins. The trigger sees every write as it is folded: when ids
-- present before a write are absent after it, and the mission is not
-- deleted, it records the iterations as they stood before here and tells
-- the partition's daemon, which writes one repair row
-- (src/write-back/restore-iterations.ts).
CREATE TABLE mana_ai.lost_iterations (
  id          bigserial   PRIMARY KEY,
  mission_key bytea       NOT NULL,
  user_id     text        NOT NULL,
  mission_id  text        NOT NULL,
  partition   int         NOT NULL,
  -- the sync_changes row whose fold lost them
  change_id   uuid,
  -- the lost iterations as they stood before that write (a JSON array)
  iterations  jsonb       NOT NULL,
  lost_at     timestamptz NOT NULL DEFAULT now(),
  -- set by the repair that restored them, or that found nothing to restore
  restored_at timestamptz,
  outcome     text CHECK (outcome IN ('restored', 'present', 'deleted')),
  -- the repair's own sync_changes row, when it wrote one
  repair_change_id uuid
);
CREATE INDEX lost_iterations_pending ON mana_ai.lost_iterations (partition, id) WHERE restored_at IS NULL;
CREATE INDEX lost_iterations_mission ON mana_ai.lost_iterations (mission_key) WHERE restored_at IS NULL;
