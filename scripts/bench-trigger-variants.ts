// What each construct of a trigger costs a mission write as mana-sync
// makes it (BEGIN, set_config, INSERT, COMMIT from Node): the figure
// bench-trigger's single-row ratio is made of. A server-side loop hides
// most of it (docs/performance.md), so every variant here is a real trigger
// function fired by a real one-row insert from the client, side by side
// with a plain insert and with today's trigger, in shuffled rounds.
// Each variant gets rows of its own table_name ('v_<name>') and its own
// trigger; it acts on the same 500 mission snapshots as today's trigger.
// Never part of `npm test`: it measures, it asserts nothing.
// Statements go as mana-sync's driver sends them (prepared once per
// connection), or with --unnamed parsed and planned per write (the mode of
// the figures before 2026-12-01; scripts/lib/one-row-writes.ts).
// Usage: npm run bench:trigger-variants [-- --rows N --rounds R --only a,b --unnamed]

import { parseArgs } from 'node:util';
import { machine, median, openBenchDatabase } from './lib/bench-db.js';
import { oneRowWrites, seedBenchMissions } from './lib/one-row-writes.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '15' },
    only: { type: 'string' },
    unnamed: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(`usage: npm run bench:trigger-variants -- [--rows N] [--rounds R] [--only name,name] [--unnamed]

Times one-row mission writes through trigger variants (docs/performance.md,
"What a statement in the trigger costs"). --rows: writes per side and round
(default 400); --rounds: shuffled rounds, medians reported (default 15);
--unnamed: every statement parsed and planned per write instead of
prepared once per connection as mana-sync's driver (pgx) does.`);
  process.exit(0);
}

const DEFINER = `LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, mana_ai, pg_temp`;
const KEY = `mana_ai.mission_key(NEW.user_id, NEW.record_id)`;
/** name -> body of the trigger function (between BEGIN and END) and its DECLARE section */
const VARIANTS: Record<string, { declare?: string; body: string }> = {
  'empty': { body: `RETURN NULL;` },
  'exception-block': { declare: 'x int;', body: `BEGIN x := 1; EXCEPTION WHEN OTHERS THEN x := 2; END; RETURN NULL;` },
  'to_jsonb(NEW)': { declare: 'm jsonb;', body: `m := mana_ai.field_map_of(to_jsonb(NEW)); RETURN NULL;` },
  'mission_key()': { declare: 'k bytea;', body: `k := ${KEY}; RETURN NULL;` },
  'select': { declare: 'v mana_ai.mission_snapshots%ROWTYPE;', body: `SELECT * INTO v FROM mana_ai.mission_snapshots WHERE mission_key = ${KEY}; RETURN NULL;` },
  'update': { body: `UPDATE mana_ai.mission_snapshots s SET record = s.record || NEW.data, version = s.version + 1 WHERE mission_key = ${KEY}; RETURN NULL;` },
  'update (version only)': { body: `UPDATE mana_ai.mission_snapshots s SET version = s.version + 1 WHERE mission_key = ${KEY}; RETURN NULL;` },
  'update+exception': { body: `BEGIN UPDATE mana_ai.mission_snapshots s SET record = s.record || NEW.data, version = s.version + 1 WHERE mission_key = ${KEY}; EXCEPTION WHEN OTHERS THEN NULL; END; RETURN NULL;` },
  'lock+update': {
    declare: 'v mana_ai.mission_snapshots%ROWTYPE;',
    body: `SELECT * INTO v FROM mana_ai.mission_snapshots WHERE mission_key = ${KEY} FOR UPDATE;
           UPDATE mana_ai.mission_snapshots SET record = v.record || NEW.data, version = version + 1 WHERE sid = v.sid; RETURN NULL;`,
  },
  'update with jsonb_each sub-select': {
    body: `UPDATE mana_ai.mission_snapshots s SET record = (SELECT s.record || jsonb_object_agg(e.key, e.value) FROM jsonb_each(NEW.data) e), version = s.version + 1
            WHERE mission_key = ${KEY}; RETURN NULL;`,
  },
};

const ROWS = Number(values.rows);
const ROUNDS = Number(values.rounds);
const only = values.only?.split(',');
const names = Object.keys(VARIANTS).filter((n) => !only || only.includes(n));

const db = await openBenchDatabase();
const c = await db.pool.connect();
try {
  await seedBenchMissions(c);
  const sides: { name: string; app: string; table: string }[] = [
    { name: 'plain insert (notes)', app: 'notes', table: 'notes' },
    { name: "today's trigger", app: 'ai', table: 'aiMissions' },
  ];
  for (const [i, name] of names.entries()) {
    const v = VARIANTS[name]!;
    await c.query(`CREATE FUNCTION pg_temp.variant_${i}() RETURNS trigger ${DEFINER} AS $$
      DECLARE ${v.declare ?? ''} BEGIN ${v.body} END $$`);
    await c.query(`CREATE TRIGGER bench_variant_${i} AFTER INSERT ON sync_changes FOR EACH ROW
      WHEN (NEW.app_id = 'ai' AND NEW.table_name = 'v_${i}') EXECUTE FUNCTION pg_temp.variant_${i}()`);
    sides.push({ name, app: 'ai', table: `v_${i}` });
  }
  const write = (app: string, table: string, tag: string) => oneRowWrites(c, app, table, ROWS, tag, values.unnamed ? 'unnamed' : 'pgx');
  for (const s of sides) await write(s.app, s.table, 'warm');
  const times = new Map<string, number[]>();
  for (let r = 0; r < ROUNDS; r++) {
    const order = [...sides].sort(() => Math.random() - 0.5);
    for (const s of order) {
      const list = times.get(s.name) ?? [];
      list.push(await write(s.app, s.table, `${r}`));
      times.set(s.name, list);
    }
  }
  const plain = median(times.get(sides[0]!.name)!);
  console.log(`bench-trigger-variants: ${ROWS} one-row transactions a side and round, ${ROUNDS} shuffled rounds, medians; statements ${values.unnamed ? 'parsed and planned per write' : 'prepared once per connection (as pgx)'}; ${machine()}`);
  for (const s of sides) {
    const m = median(times.get(s.name)!);
    console.log(`  ${s.name.padEnd(32)} ${m.toFixed(0).padStart(5)} µs  ${(m / plain).toFixed(2)}x  ${s === sides[0] ? '' : `+${(m - plain).toFixed(0)} µs`}`);
  }
} finally {
  c.release();
  await db.close();
}
