// test/iterations-property.test.ts again, against today's mana-sync schema
// (CONTRACT.md section 12; field_meta), with 15 interleavings (the seed's
// run covers 30; `ITERATION_PROPERTY_RUNS` sets both).
process.env['MANA_AI_TEST_SYNC_SCHEMA'] = 'head';
process.env['ITERATION_PROPERTY_RUNS'] ??= '15';
await import('../iterations-property.test.js');
