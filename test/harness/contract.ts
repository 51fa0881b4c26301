// The contract's fact files the tests read (CONTRACT.md, tools-*.json,
// the grant v2 vector and key, sync_changes.sql), as copies kept in
// test/fixtures so that a clone of this repository alone passes its tests.
// The copies come from ../shared/contract/ (the contract beside the
// repository in the project's workspace); test/contract-copies.test.ts
// compares them byte for byte with it whenever that directory exists.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './repo-root.js';

/** the repository's copies */
export const CONTRACT_FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'contract');
/** the contract beside the repository, when this checkout has one */
export const SHARED_CONTRACT = join(REPO_ROOT, '..', 'shared', 'contract');
export const sharedContractPresent = (): boolean => existsSync(SHARED_CONTRACT);

/** copy in test/fixtures/contract → its name in ../shared/contract */
export const CONTRACT_COPIES: Record<string, string> = {
  'contract/tools-v04.json': 'tools-v04.json',
  'contract/tools-head.json': 'tools-head.json',
  'contract/TOOLS.md': 'TOOLS.md',
  'contract/grant-v2-vector.json': 'grant-v2-vector.json',
  'contract/grant-v2-test-key.pem': 'grant-v2-test-key.pem',
  'sync_changes.sql': 'sync_changes.sql',
};

export function readContractFile(name: string): string {
  return readFileSync(join(CONTRACT_FIXTURES, name), 'utf8');
}
