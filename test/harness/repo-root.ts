// The repository's root, also when a test runs from its transpiled copy in
// .cache/test-js/ (scripts/lib/test-build.ts): the copy's package.json is a
// link to the real one, so its real path names the root either way. For
// tests that read the sources themselves or look beside the repository.

import { realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = dirname(realpathSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json')));
