// mana-llm over undici: one keep-alive pool, connect/header/body timeouts,
// retries with exponential backoff and full jitter for transport errors,
// timeouts, 429 (honouring Retry-After) and 5xx; every request aborts on
// shutdown. Never logs the service key, the prompt or the answer.

import type { Pool } from 'undici';
import { undici } from '../lazy-undici.js';
import type { ChatMessage } from './prompt.js';
import { coerceError } from '../coerce-error.js';

export interface LlmClientOptions {
  baseUrl: string;
  serviceKey: string | undefined;
  model: string;
  temperature: number;
  timeoutMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  onRetry?: (reason: string, attempt: number, delayMs: number) => void;
  onRequest?: (seconds: number, outcome: string) => void;
}

/** Longest wait between two attempts, whatever Retry-After says. */
export const MAX_RETRY_DELAY_MS = 60_000;

/** Longest one planning request can take: every attempt to its deadline, every wait at its cap. */
export function worstCaseRequestMs(o: { maxAttempts: number; timeoutMs: number }): number {
  return o.maxAttempts * o.timeoutMs + (o.maxAttempts - 1) * MAX_RETRY_DELAY_MS;
}

/** A native tool call of the answer (CONTRACT.md section 11). */
export interface LlmToolCall {
  id: string;
  name: string;
  /** the JSON string the model sent, unparsed */
  arguments: string;
}

/**
 * One answer: its text (empty when a tool-calling answer had none), the
 * tool calls when tools were offered, the assistant message as it came (to
 * continue the conversation), and `usage.total_tokens` when reported.
 */
export interface LlmAnswer {
  content: string;
  totalTokens: number | null;
  toolCalls: LlmToolCall[];
  message: Record<string, unknown> | null;
}

/** `prompt_tokens + completion_tokens` as upstream sums them over tool rounds; else total_tokens. */
function tokensOf(body: unknown): number | null {
  const u = typeof body === 'object' && body !== null ? (body as { usage?: Record<string, unknown> }).usage : undefined;
  const p = u?.['prompt_tokens'];
  const c = u?.['completion_tokens'];
  if (typeof p === 'number' && typeof c === 'number' && Number.isSafeInteger(p + c) && p >= 0 && c >= 0 && p + c <= 2_147_483_647) return p + c;
  return reportedTotalTokens(body);
}

/** The request options of native tool calls (CONTRACT.md section 11). */
export interface ToolCallOptions {
  tools: unknown[];
}

/** usage.total_tokens when it is a whole, non-negative number that fits the usage table; else null. */
export function reportedTotalTokens(body: unknown): number | null {
  const usage = typeof body === 'object' && body !== null ? (body as { usage?: unknown }).usage : undefined;
  const total = typeof usage === 'object' && usage !== null ? (usage as { total_tokens?: unknown }).total_tokens : undefined;
  return typeof total === 'number' && Number.isSafeInteger(total) && total >= 0 && total <= 2_147_483_647 ? total : null;
}

export class LlmError extends Error {
  override name = 'LlmError';
  constructor(readonly reason: 'unreachable' | 'timeout' | 'rate-limited' | 'server-error' | 'bad-response' | 'client-error' | 'capability' | 'aborted', message: string) {
    super(message);
  }
}

/**
 * One attempt's signal: aborted with the caller's or the shutdown's, or at
 * the attempt's deadline. A controller, a timer and two listeners: cheaper
 * than AbortSignal.timeout + AbortSignal.any on every request (issue 30).
 */
function attemptSignal(parents: AbortSignal[], timeoutMs: number): { signal: AbortSignal; timedOut(): boolean; dispose(): void } {
  const ac = new AbortController();
  let timedOut = false;
  const onAbort = () => ac.abort();
  for (const p of parents) {
    if (p.aborted) ac.abort();
    else p.addEventListener('abort', onAbort, { once: true });
  }
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, timeoutMs);
  return {
    signal: ac.signal,
    timedOut: () => timedOut,
    dispose: () => {
      clearTimeout(timer);
      for (const p of parents) p.removeEventListener('abort', onAbort);
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new LlmError('aborted', 'shutting down'));
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new LlmError('aborted', 'shutting down'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function retryAfterMs(header: string | string[] | undefined): number | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

/** The codes of undici's HeadersTimeoutError, BodyTimeoutError and ConnectTimeoutError: told apart without undici's classes loaded. */
const UNDICI_TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

export class LlmClient {
  // made with the first request (or prepare()): undici is not imported at start (src/lazy-undici.ts)
  private pool: Pool | null = null;
  private readonly origin: string;
  private readonly path: string;
  private readonly shutdown = new AbortController();
  private closed = false;

  constructor(private readonly opts: LlmClientOptions) {
    const url = new URL(opts.baseUrl);
    this.origin = url.origin;
    this.path = `${url.pathname.replace(/\/+$/, '')}/v1/chat/completions`;
  }

  /** Loads undici and makes the connection pool, if not done yet; the daemon calls it once its schedule is loaded. */
  async prepare(): Promise<Pool> {
    if (this.pool) return this.pool;
    const { Pool: UndiciPool } = await undici();
    // another caller may have made it while this one waited for the import; none is made after close()
    if (this.pool) return this.pool;
    if (this.closed) throw new LlmError('aborted', 'the client is closed');
    this.pool = new UndiciPool(this.origin, {
      connections: 16,
      keepAliveTimeout: 30_000,
      connectTimeout: Math.min(10_000, this.opts.timeoutMs),
      headersTimeout: this.opts.timeoutMs,
      bodyTimeout: this.opts.timeoutMs,
    });
    return this.pool;
  }

  /** The model every request names. */
  get model(): string {
    return this.opts.model;
  }

  /** One answer, after retries; throws LlmError. `headers` are added to every attempt (trace context). */
  async complete(messages: ChatMessage[], signal?: AbortSignal, headers: Record<string, string> = {}, toolOptions?: ToolCallOptions): Promise<LlmAnswer> {
    const parents = signal ? [signal, this.shutdown.signal] : [this.shutdown.signal];
    // made only when an attempt failed: an Error's stack costs on every request otherwise
    let lastError: LlmError | null = null;
    for (let attempt = 1; attempt <= this.opts.maxAttempts; attempt++) {
      let hintMs: number | null = null;
      let failed: LlmError;
      try {
        return await this.once(messages, parents, headers, toolOptions);
      } catch (error) {
        failed = error instanceof LlmError ? error : new LlmError('unreachable', coerceError(error).message);
        if ('retryAfterMs' in (error as object)) hintMs = (error as { retryAfterMs: number | null }).retryAfterMs;
      }
      lastError = failed;
      const retryable = ['unreachable', 'timeout', 'rate-limited', 'server-error'].includes(failed.reason);
      if (!retryable || attempt === this.opts.maxAttempts) break;
      const backoff = Math.random() * this.opts.retryBaseMs * 2 ** (attempt - 1);
      const delay = Math.min(MAX_RETRY_DELAY_MS, hintMs ?? backoff);
      this.opts.onRetry?.(failed.reason, attempt, delay);
      await sleep(delay, parents.length === 1 ? parents[0]! : AbortSignal.any(parents));
    }
    throw lastError ?? new LlmError('unreachable', 'no attempt made');
  }

  private async once(messages: ChatMessage[], parents: AbortSignal[], extraHeaders: Record<string, string>, toolOptions?: ToolCallOptions): Promise<LlmAnswer> {
    const started = performance.now();
    let outcome = 'ok';
    // One deadline for the whole attempt (connect, headers and body), so the
    // worst case of a run is known and the claim's lease can exceed it.
    const attempt = attemptSignal(parents, this.opts.timeoutMs);
    const signal = attempt.signal;
    try {
      const headers: Record<string, string> = { ...extraHeaders, 'content-type': 'application/json' };
      if (this.opts.serviceKey) headers['authorization'] = `Bearer ${this.opts.serviceKey}`;
      const pool = this.pool ?? (await this.prepare());
      const res = await pool.request({
        method: 'POST',
        path: this.path,
        headers,
        body: JSON.stringify({
          model: this.opts.model, temperature: this.opts.temperature, messages,
          ...(toolOptions ? { tools: toolOptions.tools, tool_choice: 'auto' } : {}),
        }),
        signal,
      });
      const text = await res.body.text();
      if (res.statusCode === 429) {
        outcome = 'rate-limited';
        throw Object.assign(new LlmError('rate-limited', 'mana-llm answered 429'), { retryAfterMs: retryAfterMs(res.headers['retry-after']) });
      }
      if (res.statusCode >= 500) {
        outcome = 'server-error';
        throw Object.assign(new LlmError('server-error', `mana-llm answered ${res.statusCode}`), { retryAfterMs: retryAfterMs(res.headers['retry-after']) });
      }
      if (res.statusCode >= 400) {
        // A model that cannot call tools: 400 {detail:{kind:'capability'}};
        // a mana-llm from before tools: 422 to a `tool` message.
        let kind: unknown;
        try {
          kind = (JSON.parse(text) as { detail?: { kind?: unknown } }).detail?.kind;
        } catch {
          kind = undefined;
        }
        const capability = toolOptions !== undefined && ((res.statusCode === 400 && kind === 'capability') || (res.statusCode === 422 && messages.some((m) => m.role === 'tool')));
        outcome = capability ? 'capability' : 'client-error';
        throw new LlmError(capability ? 'capability' : 'client-error', `mana-llm answered ${res.statusCode}${capability ? ' (the model cannot call tools)' : ''}`);
      }
      let message: Record<string, unknown> | null = null;
      let body: unknown;
      try {
        body = JSON.parse(text);
        const m = (body as { choices?: { message?: unknown }[] }).choices?.[0]?.message;
        message = typeof m === 'object' && m !== null ? (m as Record<string, unknown>) : null;
      } catch {
        message = null;
      }
      const content = message?.['content'];
      const rawCalls = toolOptions && Array.isArray(message?.['tool_calls']) ? (message!['tool_calls'] as unknown[]) : [];
      const toolCalls: LlmToolCall[] = [];
      for (const c of rawCalls) {
        const call = (c ?? {}) as { id?: unknown; function?: { name?: unknown; arguments?: unknown } };
        if (typeof call.function?.name !== 'string') continue;
        toolCalls.push({
          id: typeof call.id === 'string' ? call.id : `call-${toolCalls.length}`,
          name: call.function.name,
          arguments: typeof call.function.arguments === 'string' ? call.function.arguments : JSON.stringify(call.function.arguments ?? {}),
        });
      }
      if (typeof content !== 'string' && !(toolCalls.length > 0 && (content === null || content === undefined))) {
        outcome = 'bad-response';
        throw new LlmError('bad-response', 'mana-llm answer has no choices[0].message.content string');
      }
      return { content: typeof content === 'string' ? content : '', totalTokens: toolOptions ? tokensOf(body) : reportedTotalTokens(body), toolCalls, message };
    } catch (error) {
      if (error instanceof LlmError) throw error;
      if (parents.some((p) => p.aborted)) {
        outcome = 'aborted';
        throw new LlmError('aborted', 'request aborted');
      }
      const timeout =
        attempt.timedOut() ||
        UNDICI_TIMEOUTS.has((error as { code?: unknown } | null)?.code as string);
      outcome = timeout ? 'timeout' : 'unreachable';
      throw new LlmError(timeout ? 'timeout' : 'unreachable', `mana-llm ${outcome}: ${coerceError(error).message}`);
    } finally {
      attempt.dispose();
      this.opts.onRequest?.((performance.now() - started) / 1000, outcome);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.shutdown.abort();
    await this.pool?.close().catch(() => {});
  }
}
