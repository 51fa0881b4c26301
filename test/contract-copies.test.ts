// The fact files the tests read are copies kept in test/fixtures (so a
// clone of the repository alone passes); beside the project's workspace
// they must equal ../shared/contract/ byte for byte, so a contract change
// fails here instead of leaving the tests on an old copy.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { CONTRACT_COPIES, SHARED_CONTRACT, sharedContractPresent } from './harness/contract.js';


it('the fixture copies equal ../shared/contract (when it exists)', { skip: sharedContractPresent() ? false : 'no ../shared/contract beside this clone' }, () => {
  const fixtures = new URL('./fixtures/', import.meta.url);
  for (const [copy, name] of Object.entries(CONTRACT_COPIES)) {
    const ours = readFileSync(new URL(copy, fixtures), 'utf8');
    const theirs = readFileSync(join(SHARED_CONTRACT, name), 'utf8');
    assert.equal(ours, theirs, `test/fixtures/${copy} differs from ../shared/contract/${name}: copy the contract's file again`);
  }
});
