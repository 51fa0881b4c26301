// Configuration from the environment, validated once at start with
// valibot. Deployed names (CONTRACT.md section 8) keep their names and
// defaults; settings of our own carry the MANA_AI_ prefix. An invalid
// environment stops the start with one message that lists every problem.
// Never logs a value of a secret.

import { hostname } from 'node:os';
import * as v from 'valibot';
import { worstCaseRequestMs } from './planner/llm-client.js';
import { asksPerRun } from './planner/plan-limits.js';

/** Reading inputs and writing back, on top of the LLM requests, at most. */
export const RUN_OVERHEAD_MS = 60_000;

/**
 * The longest one run may legitimately take: every LLM request it may make
 * (asksPerRun: a repair round, tool rounds), each with all its attempts and
 * the waits between them, plus RUN_OVERHEAD_MS for its inputs, research and
 * write-back. A claim's lease must exceed it.
 */
export function worstCaseOfRunMs(o: { maxAttempts: number; timeoutMs: number; plannerMode: 'text' | 'tools' }): number {
  return asksPerRun(o.plannerMode) * worstCaseRequestMs(o) + RUN_OVERHEAD_MS;
}

const bool = (def: boolean) =>
  v.pipe(
    v.optional(v.string(), String(def)),
    v.trim(),
    v.toLowerCase(),
    v.picklist(['true', 'false', '1', '0', 'yes', 'no'], 'must be true or false'),
    v.transform((s) => s === 'true' || s === '1' || s === 'yes'),
  );

const int = (def: number, min: number, max: number) =>
  v.pipe(
    v.optional(v.string(), String(def)),
    v.trim(),
    v.regex(/^\d+$/, 'must be a whole number'),
    v.transform(Number),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );

const num = (def: number, min: number, max: number) =>
  v.pipe(
    v.optional(v.string(), String(def)),
    v.trim(),
    v.decimal('must be a number'),
    v.transform(Number),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );

const url = (def?: string) =>
  def === undefined
    ? v.optional(v.pipe(v.string(), v.trim(), v.url('must be a URL')))
    : v.pipe(v.optional(v.string(), def), v.trim(), v.url('must be a URL'));

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const EnvSchema = v.object({
  PORT: int(3067, 0, 65535),
  SYNC_DATABASE_URL: v.pipe(v.string('is required (postgres://user:pass@host:5432/mana_sync)'), v.trim(), v.regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')),
  MANA_LLM_URL: url('http://localhost:3025'),
  MANA_SERVICE_KEY: v.optional(v.pipe(v.string(), v.minLength(1))),
  MANA_AI_PRIVATE_KEY_PEM: v.optional(v.string()),
  MANA_AI_PREVIOUS_PRIVATE_KEY_PEM: v.optional(v.string()),
  MANA_AUTH_URL: url(),
  MANA_SEARCH_URL: url(),
  MANA_AI_RESEARCH_REGEXES: v.optional(v.picklist(['auto', 'on', 'off'], 'must be auto (on under MANA_AI_WEBAPP=head), on or off'), 'auto'),
  MANA_AI_RESEARCH_TIMEOUT_MS: int(10_000, 100, 120_000),
  MANA_RESEARCH_URL: url(),
  MANA_AI_DEEP_RESEARCH_ENABLED: bool(false),
  MANA_AI_DEEP_RESEARCH_PROVIDER: v.optional(v.picklist(['gemini-deep-research-max', 'gemini-deep-research', 'openai-deep-research'], 'must be gemini-deep-research-max, gemini-deep-research or openai-deep-research'), 'gemini-deep-research'),
  MANA_AI_DEEP_RESEARCH_LEAD_MS: int(1_800_000, 0, 86_400_000),
  MANA_AI_DEEP_RESEARCH_POLL_MS: int(30_000, 10, 300_000),
  MANA_AI_DEEP_RESEARCH_MAX_AGE_MS: int(4_500_000, 100, 86_400_000),
  MANA_AI_DEEP_RESEARCH_DAILY_CAP: int(3, 1, 100),
  JWT_AUDIENCE: v.optional(v.string(), 'mana'),
  JWT_ISSUER: v.optional(v.string()),
  TICK_ENABLED: bool(true),
  TICK_INTERVAL_MS: v.optional(v.string()),
  TZ: v.optional(v.string()),
  MANA_AI_PLANNER_MODEL: v.optional(v.pipe(v.string(), v.minLength(1)), 'ollama/gemma3:4b'),
  MANA_AI_PLANNER_TEMPERATURE: num(0.2, 0, 2),
  MANA_AI_LLM_TIMEOUT_MS: int(60_000, 100, 600_000),
  MANA_AI_LLM_MAX_ATTEMPTS: int(4, 1, 10),
  MANA_AI_LLM_RETRY_BASE_MS: int(500, 1, 60_000),
  MANA_AI_CONCURRENCY: int(4, 1, 256),
  MANA_AI_CLAIM_LEASE_MS: v.optional(v.pipe(v.string(), v.trim(), v.regex(/^\d+$/, 'must be a whole number'), v.transform(Number), v.maxValue(86_400_000, 'must be at most 86400000'))),
  MANA_AI_MIN_RUN_GAP_MS: int(60_000, 0, 86_400_000),
  MANA_AI_RUN_RETRY_BASE_MS: int(5_000, 10, 300_000),
  // within RUN_OVERHEAD_MS, so the worst case of one run (and the lease) holds whatever it is set to
  MANA_AI_WRITE_BACK_LOCK_WAIT_MS: int(15_000, 10, 30_000),
  MANA_AI_MAX_CONSECUTIVE_FAILURES: int(5, 1, 1000),
  MANA_AI_MEMBERSHIPS_CACHE_MS: v.optional(v.pipe(v.string(), v.trim(), v.regex(/^\d+$/, 'must be a whole number'), v.transform(Number), v.minValue(0, 'must be at least 0'), v.maxValue(86_400_000, 'must be at most 86400000')), '300000'),
  MANA_AI_PARKED_RECHECK_MS: v.optional(v.pipe(v.string(), v.trim(), v.regex(/^\d+$/, 'must be a whole number'), v.transform(Number), v.minValue(100, 'must be at least 100'), v.maxValue(86_400_000, 'must be at most 86400000'))),
  MANA_AI_PLANNER_MODE: v.optional(v.picklist(['text', 'tools'], 'must be text (a JSON answer) or tools (native tool calls)'), 'text'),
  MANA_AI_WEBAPP: v.optional(v.picklist(['v0.4', 'head'], 'must be v0.4 (the seed\'s webapp) or head (today\'s)'), 'v0.4'),
  MANA_AI_TIMEZONE: v.optional(v.pipe(v.string(), v.check(isTimeZone, 'must be an IANA time zone such as Europe/Berlin'))),
  MANA_AI_SHUTDOWN_GRACE_MS: int(25_000, 0, 600_000),
  MANA_AI_WHEEL_RESOLUTION_MS: int(10, 1, 1000),
  MANA_AI_LISTENER_CHECK_MS: int(30_000, 100, 3_600_000),
  // OpenTelemetry's standard variables (tracing is off unless an endpoint is set)
  OTEL_EXPORTER_OTLP_ENDPOINT: url(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url(),
  OTEL_SERVICE_NAME: v.optional(v.pipe(v.string(), v.minLength(1)), 'mana-ai'),
  OTEL_BSP_SCHEDULE_DELAY: int(5_000, 0, 600_000),
  OTEL_SDK_DISABLED: bool(false),
  MANA_AI_WORKER_ID: v.optional(v.pipe(v.string(), v.minLength(1))),
  MANA_AI_LOG_LEVEL: v.optional(v.picklist(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']), 'info'),
  MANA_AI_DB_POOL_SIZE: int(10, 2, 200),
});

export interface Config {
  /** HTTP port for /health, /metrics and /internal/* (PORT, 3067; 0 = any free port). */
  port: number;
  /** mana-sync's database (SYNC_DATABASE_URL), as the runtime role; never logged. */
  databaseUrl: string;
  /** mana-llm, OpenAI-compatible (MANA_LLM_URL). */
  llmUrl: string;
  /** Sent to mana-llm and required on /internal/* (MANA_SERVICE_KEY); undefined = those routes answer 401. Never logged. */
  serviceKey: string | undefined;
  /** The runner's RSA key that unwraps Mission Data Keys (MANA_AI_PRIVATE_KEY_PEM); undefined = grants disabled. Never logged. */
  privateKeyPem: string | undefined;
  /** The runner's previous key, accepted for v2 grants during a key change (MANA_AI_PREVIOUS_PRIVATE_KEY_PEM, chosen by runnerKid). Never logged. */
  previousPrivateKeyPem: string | undefined;
  /** mana-auth (MANA_AUTH_URL): JWKS for user tokens and the users' shared spaces; undefined = personal inputs only. */
  authUrl: string | undefined;
  /** Audience a user JWT must carry (JWT_AUDIENCE, mana). */
  jwtAudience: string;
  /** Issuer a user JWT must carry, when set (JWT_ISSUER). */
  jwtIssuer: string | undefined;
  /** TICK_ENABLED: false = serve HTTP only, run no missions (no reactor). */
  tickEnabled: boolean;
  /** Present only to say in the log that it is ignored. */
  tickIntervalMs: string | undefined;
  /** Model name sent to mana-llm (MANA_AI_PLANNER_MODEL). */
  plannerModel: string;
  /** Sampling temperature of planner requests. */
  plannerTemperature: number;
  /** Hard deadline of one mana-llm attempt. */
  llmTimeoutMs: number;
  /** mana-llm attempts per request (retried: unreachable, timeout, 429, 5xx). */
  llmMaxAttempts: number;
  /** First wait between mana-llm attempts (doubling, jittered). */
  llmRetryBaseMs: number;
  /** Runs this daemon plans at the same time. */
  concurrency: number;
  /** Last resort only: a live daemon's claim is never taken from it before this (sql/functions/claim.sql). */
  claimLeaseMs: number;
  /** The longest one run may legitimately take (LLM attempts, waits, inputs, write-back). */
  worstCaseRunMs: number;
  /** Least time between two runs of one mission, whatever its cadence says. */
  minRunGapMs: number;
  /** First wait before a run given back after a failure outside the mission is tried again (doubling, at most 5 min). */
  runRetryBaseMs: number;
  /**
   * Longest wait of a run's write-back for its mission's snapshot row
   * (MANA_AI_WRITE_BACK_LOCK_WAIT_MS, 15 s, at most 30 s): a device's push
   * holding the row longer sends the run back with its plan kept, to be
   * written after a backoff. An operator's shorter lock_timeout stands.
   */
  writeBackLockWaitMs: number;
  /** After this many failed runs in a row a mission is parked (sql/migrations/020_baseline.sql). */
  maxConsecutiveFailures: number;
  /** How long a parked mission waits to be looked at again; undefined = its cadence's interval (1 min to 1 day). */
  parkedRecheckMs: number | undefined;
  /** How long mana-auth's answer on a user's shared spaces is kept (mana-sync keeps it 5 min). */
  membershipsCacheMs: number;
  /** mana-search (MANA_SEARCH_URL): news research; undefined = a mission asking for news gets `skipped` and the prompt says so. */
  searchUrl: string | undefined;
  /** upstream's research regexes on objective and concept (MANA_AI_RESEARCH_REGEXES: auto = on under head, off under v0.4) */
  researchRegexes: boolean;
  /** one mana-search request's deadline (MANA_AI_RESEARCH_TIMEOUT_MS) */
  researchTimeoutMs: number;
  /** deep research through mana-research: on only with MANA_AI_DEEP_RESEARCH_ENABLED=true and MANA_RESEARCH_URL */
  deepResearch: { url: string; provider: string; leadMs: number; pollMs: number; maxAgeMs: number; dailyCap: number } | null;
  /** text: one JSON answer (CONTRACT.md section 6); tools: native tool calls, falling back to text for a model that cannot call tools */
  plannerMode: 'text' | 'tools';
  /** The webapp generation served: its tools, parameters and write-back shape (CONTRACT.md section 11). */
  webapp: 'v0.4' | 'head';
  /** IANA zone for cadences (MANA_AI_TIMEZONE, else TZ when it is a valid zone, else Europe/Berlin). */
  timeZone: string;
  /** On SIGTERM, how long runs in flight may finish before their claims are given back. */
  shutdownGraceMs: number;
  /** The timer wheel's tick: a run starts at most this late for the wheel's sake. */
  wheelResolutionMs: number;
  /** LISTEN connection check, which also asks whether every partition has an owner. */
  listenerCheckMs: number;
  /** Names this daemon in mission_runs and logs (MANA_AI_WORKER_ID, else `<hostname>-<pid>`). */
  workerId: string;
  /** pino level (MANA_AI_LOG_LEVEL). */
  logLevel: string;
  /** Connections of the work pool (the LISTEN and lock connections come on top). */
  dbPoolSize: number;
  /** OTLP/HTTP export of spans; both null = tracing off (src/tracing/tracing.ts) */
  otlpEndpoint: string | null;
  /** OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, used as it is (the other gets /v1/traces appended). */
  otlpTracesEndpoint: string | null;
  /** service.name on exported spans. */
  otelServiceName: string;
  /** Batch span processor delay between exports. */
  otelScheduleDelayMs: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(EnvSchema.entries)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const result = v.safeParse(EnvSchema, input);
  if (!result.success) {
    const lines = result.issues.map((issue) => {
      const key = issue.path?.map((p) => String(p.key)).join('.') ?? '(environment)';
      const message = issue.message.startsWith('Invalid key') ? 'is required' : issue.message;
      return `  ${key}: ${message}`;
    });
    throw new ConfigError(`invalid configuration, nothing started:\n${lines.join('\n')}`);
  }
  const e = result.output;
  // A claim lives as long as its daemon's session; the lease only ends the
  // claim of a daemon that is alive but wedged, so it must outlast the
  // slowest legitimate run (docs/reliability.md).
  const worstCaseRunMs = worstCaseOfRunMs({ maxAttempts: e.MANA_AI_LLM_MAX_ATTEMPTS, timeoutMs: e.MANA_AI_LLM_TIMEOUT_MS, plannerMode: e.MANA_AI_PLANNER_MODE });
  const claimLeaseMs = e.MANA_AI_CLAIM_LEASE_MS ?? worstCaseRunMs + 120_000;
  if (claimLeaseMs <= worstCaseRunMs) {
    throw new ConfigError(
      `invalid configuration, nothing started:\n  MANA_AI_CLAIM_LEASE_MS: must be longer than the worst case of one run, ${worstCaseRunMs} ms ` +
        `(${asksPerRun(e.MANA_AI_PLANNER_MODE)} LLM requests in ${e.MANA_AI_PLANNER_MODE} mode × (MANA_AI_LLM_MAX_ATTEMPTS × MANA_AI_LLM_TIMEOUT_MS + waits between attempts) + ${RUN_OVERHEAD_MS} ms); leave it unset for ${worstCaseRunMs + 120_000} ms`,
    );
  }
  const tz = e.MANA_AI_TIMEZONE ?? (e.TZ && isTimeZone(e.TZ) ? e.TZ : 'Europe/Berlin');
  return {
    port: e.PORT,
    databaseUrl: e.SYNC_DATABASE_URL,
    llmUrl: (e.MANA_LLM_URL ?? 'http://localhost:3025').replace(/\/+$/, ''),
    serviceKey: e.MANA_SERVICE_KEY,
    privateKeyPem: e.MANA_AI_PRIVATE_KEY_PEM,
    previousPrivateKeyPem: e.MANA_AI_PREVIOUS_PRIVATE_KEY_PEM,
    authUrl: e.MANA_AUTH_URL?.replace(/\/+$/, ''),
    jwtAudience: e.JWT_AUDIENCE,
    jwtIssuer: e.JWT_ISSUER,
    tickEnabled: e.TICK_ENABLED,
    tickIntervalMs: e.TICK_INTERVAL_MS,
    plannerModel: e.MANA_AI_PLANNER_MODEL,
    plannerTemperature: e.MANA_AI_PLANNER_TEMPERATURE,
    llmTimeoutMs: e.MANA_AI_LLM_TIMEOUT_MS,
    llmMaxAttempts: e.MANA_AI_LLM_MAX_ATTEMPTS,
    llmRetryBaseMs: e.MANA_AI_LLM_RETRY_BASE_MS,
    concurrency: e.MANA_AI_CONCURRENCY,
    claimLeaseMs,
    worstCaseRunMs,
    minRunGapMs: e.MANA_AI_MIN_RUN_GAP_MS,
    runRetryBaseMs: e.MANA_AI_RUN_RETRY_BASE_MS,
    writeBackLockWaitMs: e.MANA_AI_WRITE_BACK_LOCK_WAIT_MS,
    webapp: e.MANA_AI_WEBAPP,
    plannerMode: e.MANA_AI_PLANNER_MODE,
    maxConsecutiveFailures: e.MANA_AI_MAX_CONSECUTIVE_FAILURES,
    parkedRecheckMs: e.MANA_AI_PARKED_RECHECK_MS,
    membershipsCacheMs: e.MANA_AI_MEMBERSHIPS_CACHE_MS,
    searchUrl: e.MANA_SEARCH_URL?.replace(/\/+$/, ''),
    researchRegexes: e.MANA_AI_RESEARCH_REGEXES === 'on' || (e.MANA_AI_RESEARCH_REGEXES === 'auto' && e.MANA_AI_WEBAPP === 'head'),
    researchTimeoutMs: e.MANA_AI_RESEARCH_TIMEOUT_MS,
    deepResearch: e.MANA_AI_DEEP_RESEARCH_ENABLED && e.MANA_RESEARCH_URL
      ? {
          url: e.MANA_RESEARCH_URL.replace(/\/+$/, ''), provider: e.MANA_AI_DEEP_RESEARCH_PROVIDER, leadMs: e.MANA_AI_DEEP_RESEARCH_LEAD_MS,
          pollMs: e.MANA_AI_DEEP_RESEARCH_POLL_MS, maxAgeMs: e.MANA_AI_DEEP_RESEARCH_MAX_AGE_MS, dailyCap: e.MANA_AI_DEEP_RESEARCH_DAILY_CAP,
        }
      : null,
    timeZone: tz,
    shutdownGraceMs: e.MANA_AI_SHUTDOWN_GRACE_MS,
    wheelResolutionMs: e.MANA_AI_WHEEL_RESOLUTION_MS,
    listenerCheckMs: e.MANA_AI_LISTENER_CHECK_MS,
    workerId: e.MANA_AI_WORKER_ID ?? `${hostname()}-${process.pid}`,
    logLevel: e.MANA_AI_LOG_LEVEL,
    dbPoolSize: e.MANA_AI_DB_POOL_SIZE,
    otlpEndpoint: e.OTEL_SDK_DISABLED ? null : (e.OTEL_EXPORTER_OTLP_ENDPOINT ?? null),
    otlpTracesEndpoint: e.OTEL_SDK_DISABLED ? null : (e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? null),
    otelServiceName: e.OTEL_SERVICE_NAME,
    otelScheduleDelayMs: e.OTEL_BSP_SCHEDULE_DELAY,
  };
}
