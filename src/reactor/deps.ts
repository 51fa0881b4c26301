// What the reactor and its run dispatcher are built from: what a run needs
// (execute-run.ts), the whole config, and for tests the wheel's clock. A
// file of its own so that run-dispatcher.ts does not import reactor.ts,
// which imports it. Types only.

import type { Config } from '../config.js';
import type { RunDeps } from '../run/execute-run.js';
import type { WheelClock } from './timer-wheel.js';
import type { ResearchClient } from '../research/mana-research.js';

export interface ReactorDeps extends Omit<RunDeps, 'config' | 'deepJobs'> {
  config: Config;
  clock?: WheelClock;
  /** mana-research, when deep research is on (config.deepResearch) */
  researchClient?: ResearchClient | null;
}
