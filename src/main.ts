// The process: configuration, logger, daemon, signals. SIGTERM and SIGINT
// stop it gracefully (runs in flight get the grace period) and exit 0.

import { ConfigError, loadConfig } from './config.js';
import { startDaemon } from './daemon.js';
import { createLogger } from './log.js';
import { coerceError } from './coerce-error.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  throw error;
}
const log = createLogger({ level: config.logLevel });
process.on('unhandledRejection', (reason) => log.error({ err: String(reason) }, 'unhandled rejection'));

try {
  const daemon = await startDaemon(config, log);
  let signals = 0;
  const onSignal = (signal: string) => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'signal received');
    void daemon.stop().then(() => {
      log.flush();
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
} catch (error) {
  log.fatal({ err: coerceError(error).message }, 'start failed');
  log.flush();
  setTimeout(() => process.exit(1), 50);
}
