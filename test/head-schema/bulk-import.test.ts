// test/bulk-import.test.ts again, against today's mana-sync schema (CONTRACT.md
// section 12: field_meta instead of field_timestamps, origin, space_id and
// the space members' read policy; test/fixtures/sync_changes_head.sql).
process.env['MANA_AI_TEST_SYNC_SCHEMA'] = 'head';
await import('../bulk-import.test.js');
