// Deep research through mana-research (CONTRACT.md section 15): submit an
// async job for the mission's owner and read its status. Headers: the
// service key, the owner in X-User-Id, X-App-Id mana-ai. A terminal answer
// may carry megabytes of providerRaw: the body is read up to MAX_BYTES and
// only the answer and its citations are kept, bounded. Failures are short
// reasons, never exceptions; the query and the answer are never logged.

import { undici } from '../lazy-undici.js';
import * as v from 'valibot';
import { cutText as cut } from '../planner/plan-limits.js';
import { isHttpUrl, readBounded, requestFailure } from './bounded-http.js';
import type { Source } from './mana-search.js';

export const DEEP_LIMITS = {
  /** characters of the answer kept */
  answerChars: 6_000,
  /** citations kept */
  citations: 8,
  /** bytes of a status answer read at most (providerRaw can be megabytes) */
  maxBytes: 16_000_000,
} as const;

export interface DeepAnswer {
  answer: string;
  citations: Source[];
}

export type SubmitResult = { ok: true; taskId: string } | { ok: false; reason: string };
export type StatusResult =
  | { ok: true; status: 'queued' | 'running' }
  | { ok: true; status: 'completed'; answer: DeepAnswer }
  | { ok: true; status: 'failed' | 'cancelled'; error: string }
  | { ok: false; reason: string };

export interface ResearchClientOptions {
  baseUrl: string;
  serviceKey: string | undefined;
  timeoutMs: number;
}

const Submitted = v.object({ taskId: v.pipe(v.string(), v.minLength(1)) });
const Citation = v.object({ url: v.string(), title: v.optional(v.string(), ''), snippet: v.optional(v.nullable(v.string())) });
const Status = v.object({
  status: v.picklist(['queued', 'running', 'completed', 'failed', 'cancelled']),
  result: v.optional(v.nullable(v.object({ answer: v.object({ answer: v.string(), citations: v.optional(v.array(v.unknown()), []) }) }))),
  error: v.optional(v.unknown()),
});

async function call(o: ResearchClientOptions, userId: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: unknown } | { error: string }> {
  try {
    const res = await (await undici()).request(`${o.baseUrl.replace(/\/+$/, '')}${path}`, {
      method,
      headers: { 'content-type': 'application/json', 'x-user-id': userId, 'x-app-id': 'mana-ai', ...(o.serviceKey ? { 'x-service-key': o.serviceKey } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
    });
    const read = await readBounded(res, DEEP_LIMITS.maxBytes);
    if (!read.ok) return { error: 'answer too large' };
    try {
      return { status: read.status, json: JSON.parse(read.text) };
    } catch {
      return read.status >= 400 ? { error: `HTTP ${read.status}` } : { error: 'malformed answer' };
    }
  } catch (error) {
    return { error: requestFailure(error).detail };
  }
}

export class ResearchClient {
  constructor(private readonly o: ResearchClientOptions) {}

  async submit(userId: string, query: string, provider: string): Promise<SubmitResult> {
    const r = await call(this.o, userId, 'POST', '/api/v1/internal/research/async', { query: query.slice(0, 4000), provider });
    if ('error' in r) return { ok: false, reason: r.error };
    if (r.status >= 300) return { ok: false, reason: `HTTP ${r.status}` };
    const p = v.safeParse(Submitted, r.json);
    return p.success ? { ok: true, taskId: p.output.taskId } : { ok: false, reason: 'malformed answer' };
  }

  async status(userId: string, taskId: string): Promise<StatusResult> {
    const r = await call(this.o, userId, 'GET', `/api/v1/internal/research/async/${encodeURIComponent(taskId)}`);
    if ('error' in r) return { ok: false, reason: r.error };
    if (r.status >= 300) return { ok: false, reason: `HTTP ${r.status}` };
    const p = v.safeParse(Status, r.json);
    if (!p.success) return { ok: false, reason: 'malformed answer' };
    const s = p.output;
    if (s.status === 'queued' || s.status === 'running') return { ok: true, status: s.status };
    if (s.status === 'failed' || s.status === 'cancelled') return { ok: true, status: s.status, error: typeof s.error === 'string' ? s.error.slice(0, 200) : s.status };
    if (!s.result) return { ok: false, reason: 'completed without a result' };
    const citations: Source[] = [];
    for (const raw of s.result.answer.citations) {
      const c = v.safeParse(Citation, raw);
      if (!c.success || !isHttpUrl(c.output.url) || citations.some((x) => x.url === c.output.url)) continue;
      citations.push({ url: c.output.url, title: cut(c.output.title.trim() || c.output.url, 200), snippet: cut((c.output.snippet ?? '').trim(), 300) });
      if (citations.length >= DEEP_LIMITS.citations) break;
    }
    return { ok: true, status: 'completed', answer: { answer: cut(s.result.answer.answer.trim(), DEEP_LIMITS.answerChars), citations } };
  }
}
