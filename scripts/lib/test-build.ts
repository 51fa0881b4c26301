// The JavaScript `npm test` runs (scripts/test.ts): src/, test/ and scripts/
// transpiled file by file with esbuild into .cache/test-js/, laid out as the
// repository is, so every relative import and every path a module finds
// from its own location (sql/, package.json, test/fixtures, grant-v2/)
// resolves as from the sources (those four are links back to them). The
// same transform tsx applies when it loads a file, done once per run instead
// of in every test process: Node 20 runs tsx's loader on a thread of its
// own and asks it across threads for each of the ~440 modules a test
// imports, which cost each test process about 1.5 s of CPU
// (docs/performance.md, "The test suite"). Types are checked by
// `npm run typecheck` first; this step never does. Each run rebuilds the
// folder from scratch: two runs at once in one checkout would clobber each
// other's (`npm run mutations` tests in a copy of its own). The burst and
// latency benches build src/ and scripts/ the same way into a folder of
// their own (scripts/build-bench.ts, buildJs).

import { existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';

export const TEST_BUILD_DIR = join('.cache', 'test-js');
const SOURCE_DIRS = ['src', 'test', 'scripts'];
/** what modules find next to themselves, linked back to the repository */
const LINKS = ['sql', 'package.json', 'grant-v2', join('test', 'fixtures')];

/** The TypeScript files under `dir` (fixtures excluded), sorted by path: what the build transpiles, and where scripts/test.ts finds the tests. */
export function tsFiles(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'fixtures' ? [] : tsFiles(p);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Transpiles the sources into TEST_BUILD_DIR (from scratch) and returns it. */
export async function buildTests(root = '.'): Promise<string> {
  // stack traces of a failing test point at the TypeScript line (node --enable-source-maps)
  return buildJs(SOURCE_DIRS, TEST_BUILD_DIR, { root, sourcemap: 'inline' });
}

/**
 * Transpiles the TypeScript of `dirs` into `outDir` under `root` (from
 * scratch), laid out as the repository is, with LINKS beside it; returns
 * the folder. esbuild's transform as the production build applies it
 * (no `keepNames`), where tsx's loader wraps every function it defines
 * in a naming call at run time.
 */
export async function buildJs(dirs: readonly string[], outDir: string, opts: { root?: string; sourcemap?: 'inline' } = {}): Promise<string> {
  const root = opts.root ?? '.';
  const out = join(root, outDir);
  rmSync(out, { recursive: true, force: true });
  await build({
    entryPoints: dirs.flatMap((d) => tsFiles(join(root, d))),
    outdir: out,
    outbase: root,
    format: 'esm',
    platform: 'node',
    target: 'node20.18',
    ...(opts.sourcemap ? { sourcemap: opts.sourcemap } : {}),
    logLevel: 'warning',
  });
  for (const link of LINKS) {
    if (!existsSync(join(root, link))) continue;
    mkdirSync(join(out, link, '..'), { recursive: true });
    symlinkSync(relative(join(out, link, '..'), join(root, link)), join(out, link));
  }
  return out;
}

/** A test file's transpiled path: test/x.test.ts → .cache/test-js/test/x.test.js */
export const builtPath = (file: string, root = '.'): string => join(root, TEST_BUILD_DIR, file.replace(/\.ts$/, '.js'));
