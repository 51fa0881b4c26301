// test/trigger-property.test.ts again with the HEAD merge rule (CONTRACT.md
// section 12; `npm run migrate -- --webapp head`): the trigger's fold and
// the TypeScript fold agree under that rule too.
process.env['MANA_AI_TEST_MERGE_RULE'] = 'head';
await import('../trigger-property.test.js');
