// test/race-property.test.ts again, against today's mana-sync schema
// (CONTRACT.md section 12; test/fixtures/sync_changes_head.sql), for 10 s
// instead of 30 (the seed's run covers the long window; `RACE_SECONDS`
// sets both).
process.env['MANA_AI_TEST_SYNC_SCHEMA'] = 'head';
process.env['RACE_SECONDS'] ??= '10';
await import('../race-property.test.js');
