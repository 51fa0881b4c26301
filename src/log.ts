// Structured JSON-lines logging (pino). Every line about a mission carries
// userId and missionId. Keys, tokens and PEMs are redacted by path as a
// second line of defence; the first is never passing them to a logger.
// Prompts, LLM answers and user content go to debug at most.

import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream; base?: Record<string, unknown> } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: 'mana-ai', ...opts.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'serviceKey', '*.serviceKey', 'privateKeyPem', '*.privateKeyPem', 'previousPrivateKeyPem', '*.previousPrivateKeyPem', 'authorization', '*.authorization',
          'headers.authorization', 'token', '*.token', 'key', '*.key', 'mdk', '*.mdk', 'wrappedKey', '*.wrappedKey',
        ],
        censor: '[redacted]',
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    (opts.destination as pino.DestinationStream | undefined) ?? pino.destination({ sync: false }),
  );
}
