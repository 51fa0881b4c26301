-- 022: what the runner trusts is recorded, not looked up by a name another
-- role can create (issue 27, items 1 and 8).
--
-- mana_ai.sync_table: mana-sync's table, recorded once by migrate (at
-- first install, or as configured with `migrate -- --sync-table S.T`) and
-- verified on every migrate and daemon start (src/db/sync-table.ts):
-- permanent, the recorded schema and owner, row-level security enabled
-- and forced, the expected columns. Before it, the table was "the one our
-- trigger is on", found by the trigger's name, which any role can give a
-- trigger on a temporary table of its own.
CREATE TABLE mana_ai.sync_table (
  singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  schema_name text NOT NULL,
  table_name  text NOT NULL,
  owner_name  text NOT NULL,
  recorded_by text NOT NULL CHECK (recorded_by IN ('install', 'configuration')),
  recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Retention lives in a table: mana_ai.retention() read a setting
-- (current_setting('mana_ai.run_retention')) that any session can set for
-- itself, inside a SECURITY DEFINER pruner that deletes every user's rows.
-- The database-level values an operator set the old way are carried over.
ALTER TABLE mana_ai.settings DROP CONSTRAINT settings_key_check;
ALTER TABLE mana_ai.settings ADD CONSTRAINT settings_key_check CHECK (key IN ('merge_rule', 'run_retention', 'error_retention'));
INSERT INTO mana_ai.settings (key, value)
SELECT k, v FROM (VALUES ('run_retention', current_setting('mana_ai.run_retention', true)),
                         ('error_retention', current_setting('mana_ai.error_retention', true))) AS s(k, v)
 WHERE nullif(v, '') IS NOT NULL
ON CONFLICT (key) DO NOTHING;

-- Only a mission's own failures park it, and any change by its user brings
-- it back at once (issue 27, item 4). The snapshot says whether it is
-- parked, so the trigger knows from the row it has already locked (no
-- extra lookup on mana-sync's insert path), and unparks it in the same
-- transaction as the user's write.
ALTER TABLE mana_ai.mission_snapshots ADD COLUMN parked boolean NOT NULL DEFAULT false;
UPDATE mana_ai.mission_snapshots s SET parked = true
  FROM mana_ai.parked p WHERE p.sid = s.sid AND p.parked_version = s.version;
DELETE FROM mana_ai.parked p
 WHERE NOT EXISTS (SELECT 1 FROM mana_ai.mission_snapshots s WHERE s.sid = p.sid AND s.parked);
-- When a mission was last unparked: its failure streak counts from there
-- (before, the failures that parked it still counted after an unpark, and
-- one more failure parked it again at once).
CREATE TABLE mana_ai.unparked (
  mission_key bytea       PRIMARY KEY,
  user_id     text        NOT NULL,
  unparked_at timestamptz NOT NULL DEFAULT now(),
  -- 'user' (a change of the mission) or 'operator' (mana_ai.unpark_all)
  unparked_by text        NOT NULL
);

-- Every answer is paid for where it arrives (issue 27, item 6): each of a
-- run's answers is charged in its own short transaction as soon as it
-- arrives, under a key of its own, so a retry of that charge never charges
-- twice and nothing that fails later (the step check, the write-back, a
-- retry of the run) leaves it unpaid.
ALTER TABLE mana_ai.token_usage ADD COLUMN answer_key text;
CREATE UNIQUE INDEX token_usage_answer ON mana_ai.token_usage (run_id, answer_key) WHERE answer_key IS NOT NULL;

-- A record has one scope (issue 27, item 2): the audit row of a read names
-- the space it came from (NULL: the owner's personal record).
ALTER TABLE mana_ai.decrypt_audit ADD COLUMN space_id text;
