// test/iterations-property.test.ts again with the HEAD merge rule
// (CONTRACT.md section 12; `npm run migrate -- --webapp head`): losses are
// found and repaired under that rule too, with 15 interleavings (the seed's
// run covers 30; `ITERATION_PROPERTY_RUNS` sets both).
process.env['MANA_AI_TEST_MERGE_RULE'] = 'head';
process.env['ITERATION_PROPERTY_RUNS'] ??= '15';
await import('../iterations-property.test.js');
