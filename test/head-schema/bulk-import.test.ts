// test/bulk-import.test.ts again, against today's mana-sync schema
// (CONTRACT.md section 12; test/fixtures/sync_changes_head.sql), with
// 20,000 rows in the statement (the seed's run covers 50,000; `BULK_ROWS`
// sets both).
process.env['MANA_AI_TEST_SYNC_SCHEMA'] = 'head';
process.env['BULK_ROWS'] ??= '20000';
await import('../bulk-import.test.js');
