// test/trigger-property.test.ts again with the HEAD merge rule (CONTRACT.md
// section 12; `npm run migrate -- --webapp head`): the trigger's fold and
// the TypeScript fold agree under that rule too.
process.env['MANA_AI_TEST_MERGE_RULE'] = 'head';
// 300 sequences here; the seed's v0.4 run keeps 1,000 (`PROPERTY_RUNS` sets both)
process.env['PROPERTY_RUNS'] ??= '300';
await import('../trigger-property.test.js');
