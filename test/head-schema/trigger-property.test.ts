// test/trigger-property.test.ts again, against today's mana-sync schema (CONTRACT.md
// section 12: field_meta instead of field_timestamps, origin, space_id and
// the space members' read policy; test/fixtures/sync_changes_head.sql).
process.env['MANA_AI_TEST_SYNC_SCHEMA'] = 'head';
// 300 sequences here; the seed's v0.4 run keeps 1,000 (`PROPERTY_RUNS` sets both)
process.env['PROPERTY_RUNS'] ??= '300';
await import('../trigger-property.test.js');
