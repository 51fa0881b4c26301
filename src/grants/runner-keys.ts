// The runner's private keys for one process: MANA_AI_PRIVATE_KEY_PEM (the
// current key; v1 grants use only it, as CONTRACT.md section 7 says) and
// MANA_AI_PREVIOUS_PRIVATE_KEY_PEM (optional, accepted during a key change
// for v2 grants, chosen by the header's runnerKid). Holds CryptoKeys only,
// never PEM text or key bytes.

import type { Logger } from '../log.js';
import { loadPrivateKey, reportPrivateKey, type LoadedKey } from './private-key.js';

export interface RunnerKeys {
  readonly current: LoadedKey | null;
  readonly previous: LoadedKey | null;
  /** The key a v2 grant names by runnerKid, current or previous; undefined: `wrap-rejected`. */
  byKid(kid: string): LoadedKey | undefined;
}

export function runnerKeys(current: LoadedKey | null, previous: LoadedKey | null = null): RunnerKeys {
  return {
    current,
    previous,
    byKid: (kid) => (current?.kid === kid ? current : previous?.kid === kid ? previous : undefined),
  };
}

export const NO_RUNNER_KEYS: RunnerKeys = runnerKeys(null, null);

export async function loadRunnerKeys(pem: string | undefined, previousPem: string | undefined, log: Logger): Promise<RunnerKeys> {
  const current = reportPrivateKey(await loadPrivateKey(pem), log);
  const previous = reportPrivateKey(await loadPrivateKey(previousPem), log, 'MANA_AI_PREVIOUS_PRIVATE_KEY_PEM');
  if (previous && current && previous.kid === current.kid) {
    log.warn({ runnerKid: current.kid }, 'MANA_AI_PREVIOUS_PRIVATE_KEY_PEM is the current key; it adds nothing');
  }
  return runnerKeys(current, previous);
}
