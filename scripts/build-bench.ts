// Builds what the burst and latency benches run (issue 30): src/ and
// scripts/ transpiled by esbuild into .cache/bench-js/, laid out as the
// repository is (scripts/lib/test-build.ts), so the daemon they measure
// runs as production runs it: JavaScript from esbuild's transform, as in
// dist/main.js. Started through tsx instead, every function the daemon's
// modules define at run time (a run's closures, callbacks, arrow
// functions) went through tsx's naming helper first, which the image never
// does: 0.05–0.25 ms of the daemon's CPU a run in a burst
// (docs/performance.md, the twelfth stop). graphile-worker, beside it,
// runs from its published JavaScript either way. Never run by the tests.
//
//   npm run bench:vs-graphile   → node --import tsx scripts/build-bench.ts && node .cache/bench-js/scripts/bench-vs-graphile.js

import { join } from 'node:path';
import { buildJs } from './lib/test-build.js';

await buildJs(['src', 'scripts'], join('.cache', 'bench-js'));
