// The mutations of `npm run mutations` (scripts/mutations.ts) stay
// applicable: each one's text occurs exactly once in its file and each
// names test files that exist. Running them takes minutes and is not part
// of `npm test`; docs/reliability.md keeps the last run's output.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { it } from 'node:test';
import { MUTATIONS } from '../scripts/mutations.js';

it('every mutation applies to exactly one place and names existing tests', () => {
  const ids = new Set<string>();
  for (const m of MUTATIONS) {
    assert.ok(!ids.has(m.id), `${m.id} once`);
    ids.add(m.id);
    const text = readFileSync(m.file, 'utf8');
    assert.equal(text.split(m.find).length - 1, 1, `${m.id}: its text occurs once in ${m.file}`);
    for (const t of m.tests) assert.ok(existsSync(t), `${m.id}: ${t} exists`);
  }
  assert.ok(MUTATIONS.length >= 20);
});
