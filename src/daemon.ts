// Wires the daemon together: migrations, pools, LLM client, resolvers,
// reactor and HTTP. Everything a test or the demo needs to start and stop a
// real daemon in-process; main.ts adds signals and the process exit.

import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type pg from 'pg';
import type { Config } from './config.js';
import { migrate, schemaStatus, type MergeRule } from './db/migrate.js';
import { createDb, createPool, type Db } from './db/pool.js';
import { createHttpServer } from './http/server.js';
import { auditRoutes } from './http/audit-routes.js';
import { researchRoutes } from './http/research-routes.js';
import { ResearchClient } from './research/mana-research.js';
import { coreRoutes } from './http/routes.js';
import { createUserTokenVerifier } from './http/user-token.js';
import type { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { LlmClient } from './planner/llm-client.js';
import { startTracing, type Tracing } from './tracing/tracing.js';
import { loadRunnerKeys } from './grants/runner-keys.js';
import { encryptedResolver, ENCRYPTED_MODULES } from './planner/resolvers/encrypted.js';
import { goalsResolver } from './planner/resolvers/goals.js';
import { Memberships } from './auth/memberships.js';
import { ResolverRegistry } from './planner/resolvers/registry.js';
import { assertCatalog, catalogFor } from './planner/catalog/index.js';
import { countParked } from './db/sql/parked.js';
import { Reactor } from './reactor/reactor.js';
import { coerceError } from './coerce-error.js';

export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

/**
 * The schema must be current before anything runs. Nothing pending: no
 * DDL, no lock, so a least-privileged runtime role starts. Something
 * pending: applied here if this role may (development, the demo), else the
 * start stops and says who must run what. mana-sync's table as recorded
 * must verify (src/db/sync-table.ts), or the start stops and says why.
 * The merge rule the trigger folds with is the database's: only `migrate
 * -- --webapp` changes it (two daemon versions in a rolling deploy must not
 * flip it on each start); the daemon sets it only on a database that has
 * no schema yet. A mismatch is said at error level, and in /health; the
 * daemon still starts (every fold stays valid, it differs from the
 * webapp's only in the two clauses of CONTRACT.md section 12).
 */
async function ensureSchema(databaseUrl: string, webapp: MergeRule, log: Logger): Promise<void> {
  const status = await schemaStatus(databaseUrl);
  let rule = status?.mergeRule ?? null;
  if (status !== null && status.pending.length === 0) {
    log.info({ mergeRule: rule }, 'schema up to date');
  } else {
    try {
      const migrated = await migrate(databaseUrl, { log: (m) => log.info(m), ...(status === null ? { webapp } : {}) });
      rule = status === null ? webapp : rule;
      log.info({ applied: migrated.applied, defined: migrated.defined.length, mergeRule: rule }, 'schema up to date');
    } catch (error) {
      const why = status === null ? 'the mana_ai schema does not exist' : `the schema is not what this build needs: ${status.pending.join('; ')}`;
      throw new Error(
        `${why}, and this role could not fix it (${coerceError(error).message}). ` +
          `Run \`npm run migrate -- --runtime-role <this role>\` as the schema owner, then start again.`,
      );
    }
  }
  if (rule !== webapp) {
    log.error(
      { mergeRule: rule, webapp },
      `the database folds with the ${rule} merge rule but this daemon serves the ${webapp} webapp: run \`npm run migrate -- --webapp ${webapp}\` as the schema owner, then \`npm run backfill -- --restart\``,
    );
  }
}

export interface Daemon {
  config: Config;
  metrics: Metrics;
  pool: pg.Pool;
  db: Db;
  reactor: Reactor | null;
  tracing: Tracing;
  http: Server;
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts the daemon. `opts.tracing` replaces the tracing the configuration
 * names (scripts/bench-latency-trace.ts records the spans in its process).
 */
export async function startDaemon(config: Config, log: Logger, opts: { tracing?: Tracing } = {}): Promise<Daemon> {
  assertCatalog(catalogFor(config.webapp), config.webapp);
  if (config.tickIntervalMs !== undefined) {
    log.info({ TICK_INTERVAL_MS: config.tickIntervalMs }, 'TICK_INTERVAL_MS is ignored: runs are driven by NOTIFY and the timer wheel, not by polling');
  }
  await ensureSchema(config.databaseUrl, config.webapp, log);

  const metrics = createMetrics();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const pool = createPool({
    connectionString: config.databaseUrl, applicationName: 'mana-ai', max: config.dbPoolSize,
    onClientError: (error) => {
      metrics.dbConnectionErrors.inc();
      log.warn({ err: error.message }, 'a database connection was lost while in use; its transaction fails and its run is given back');
    },
  });
  let dbHealthy = true;
  pool.on('error', () => {
    dbHealthy = false;
  });
  pool.on('connect', () => {
    dbHealthy = true;
  });
  const db = createDb(pool);
  const llm = new LlmClient({
    baseUrl: config.llmUrl,
    serviceKey: config.serviceKey,
    model: config.plannerModel,
    temperature: config.plannerTemperature,
    timeoutMs: config.llmTimeoutMs,
    maxAttempts: config.llmMaxAttempts,
    retryBaseMs: config.llmRetryBaseMs,
    onRetry: (reason, attempt, delayMs) => {
      metrics.llmRetries.inc({ reason });
      log.warn({ reason, attempt, retryInMs: Math.round(delayMs) }, 'mana-llm request failed; retrying');
    },
    onRequest: (seconds, outcome) => metrics.plannerRequestDuration.observe({ outcome }, seconds),
  });
  const runnerKeys = await loadRunnerKeys(config.privateKeyPem, config.previousPrivateKeyPem, log);
  // Shared-space inputs need mana-auth; without MANA_AUTH_URL, personal records only.
  const memberships = config.authUrl
    ? new Memberships({ authUrl: config.authUrl, serviceKey: config.serviceKey, cacheMs: config.membershipsCacheMs }, metrics, log)
    : null;
  const resolvers = new ResolverRegistry().register('goals', goalsResolver);
  for (const m of ENCRYPTED_MODULES) resolvers.register(m.modules, encryptedResolver(m), { encrypted: true });

  // deep research through mana-research, only when switched on (issue 31; docs/research.md)
  const researchClient = config.deepResearch ? new ResearchClient({ baseUrl: config.deepResearch.url, serviceKey: config.serviceKey, timeoutMs: config.researchTimeoutMs }) : null;
  if (config.deepResearch) log.info({ provider: config.deepResearch.provider }, 'deep research enabled (MANA_RESEARCH_URL)');
  const tracing = opts.tracing ?? await startTracing({
    endpoint: config.otlpEndpoint, tracesEndpoint: config.otlpTracesEndpoint, serviceName: config.otelServiceName, scheduleDelayMs: config.otelScheduleDelayMs, log,
  });
  metrics.parkedSource.current = () => countParked(pool);
  const reactor = config.tickEnabled
    ? new Reactor({ pool, db, config, log, metrics, llm, resolvers, runnerKeys, tracing, parkedRecheckMs: config.parkedRecheckMs, memberships, researchClient })
    : null;
  if (!reactor) log.info('TICK_ENABLED=false: serving HTTP only, no missions are run');

  // Event-loop delay is read at scrape time and reset, so each scrape sees its own window.
  const collectLoop = () => {
    metrics.eventLoopDelay.set({ quantile: '0.5' }, loop.percentile(50) / 1e9);
    metrics.eventLoopDelay.set({ quantile: '0.99' }, loop.percentile(99) / 1e9);
    metrics.eventLoopDelay.set({ quantile: '1' }, loop.max / 1e9);
    loop.reset();
  };
  // one verifier (one JWKS cache) for the audit and the research API
  const verifyUserToken = config.authUrl ? createUserTokenVerifier({ authUrl: config.authUrl, issuer: config.jwtIssuer, audience: config.jwtAudience }) : null;
  const http = createHttpServer({
    routes: [
      ...coreRoutes({ version: VERSION, metrics, pool, reactor, dbHealthy: () => dbHealthy, webapp: config.webapp }),
      ...auditRoutes({ db, verifyUserToken }),
      ...researchRoutes({ db, verifyUserToken }),
    ],
    metrics,
    log,
    serviceKey: config.serviceKey,
  });
  const origMetrics = metrics.registry.metrics.bind(metrics.registry);
  metrics.registry.metrics = async () => {
    collectLoop();
    return origMetrics();
  };

  if (reactor) await reactor.start();
  // undici is loaded now that the schedule is (src/lazy-undici.ts), so the first run does not wait for it
  void llm.prepare().catch((error: unknown) => log.warn({ err: coerceError(error).message }, 'LLM client not prepared; the first request prepares it'));
  await new Promise<void>((resolve) => http.listen(config.port, resolve));
  const address = http.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  log.info({ port, workerId: config.workerId, timeZone: config.timeZone, concurrency: config.concurrency }, 'mana-ai started');

  let stopped: Promise<void> | null = null;
  return {
    config, metrics, pool, db, reactor, tracing, http, port,
    stop() {
      stopped ??= (async () => {
        log.info('shutting down');
        // A database that is already gone must not keep the process from
        // closing the rest; the claims it could not give back expire with
        // their lease and another daemon (or the next start) takes them.
        await reactor?.stop(config.shutdownGraceMs).catch((error: unknown) => log.error({ err: coerceError(error).message }, 'reactor stop failed; leases will expire'));
        await new Promise<void>((resolve) => http.close(() => resolve()));
        http.closeAllConnections?.();
        await llm.close();
        await tracing.shutdown(); // the last runs' spans
        loop.disable();
        await db.destroy().catch(() => {});
        // Kysely ends the pool only once it has used it: a daemon that never
        // wrote back would otherwise keep its pool's connections open
        if (!pool.ending) await pool.end().catch(() => {});
        log.info('stopped');
      })();
      return stopped;
    },
  };
}
