// News through mana-search (CONTRACT.md section 15: the one search a
// service may call without a user's token): POST {MANA_SEARCH_URL}/api/v1/search.
// The news items are mana-search's hits themselves (no feed fetching).
// Bounded on every side: at most MAX_HITS hits, each title and snippet cut
// to a stated length, http(s) URLs only, the answer read up to MAX_BYTES.
// A failure is a short outcome for the metric and the prompt, never an
// exception; the query and the hits are never logged here.

import { undici } from '../lazy-undici.js';
import * as v from 'valibot';
import { cutText as cut } from '../planner/plan-limits.js';
import { isHttpUrl, readBounded, requestFailure } from './bounded-http.js';

export interface Source {
  url: string;
  title: string;
  snippet: string;
  publishedAt?: string;
}

export type SearchResult = { ok: true; sources: Source[] } | { ok: false; outcome: 'failed' | 'timeout' | 'empty'; detail: string };

export const RESEARCH_LIMITS = {
  /** hits kept per search */
  maxHits: 8,
  /** characters of a hit's title */
  titleChars: 200,
  /** characters of a hit's snippet */
  snippetChars: 300,
  /** bytes of an answer read at most; a larger one is `failed` */
  maxBytes: 1_000_000,
} as const;

const Hit = v.object({
  url: v.string(),
  title: v.optional(v.string(), ''),
  snippet: v.optional(v.string(), ''),
  publishedDate: v.optional(v.nullable(v.string())),
});
const Answer = v.object({ results: v.array(v.unknown()) });

export async function searchNews(baseUrl: string, q: { query: string; language: 'de' | 'en' }, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<SearchResult> {
  let body: string;
  try {
    const res = await (await undici()).request(`${baseUrl.replace(/\/+$/, '')}/api/v1/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: q.query, options: { limit: RESEARCH_LIMITS.maxHits, language: q.language, categories: ['news'] } }),
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const read = await readBounded(res, RESEARCH_LIMITS.maxBytes);
    if (!read.ok) return { ok: false, outcome: 'failed', detail: 'answer too large' };
    if (read.status !== 200) return { ok: false, outcome: 'failed', detail: `HTTP ${read.status}` };
    body = read.text;
  } catch (error) {
    const f = requestFailure(error);
    return { ok: false, outcome: f.timeout ? 'timeout' : 'failed', detail: f.detail };
  }
  let parsed: v.InferOutput<typeof Answer>;
  try {
    const r = v.safeParse(Answer, JSON.parse(body));
    if (!r.success) return { ok: false, outcome: 'failed', detail: 'malformed answer' };
    parsed = r.output;
  } catch {
    return { ok: false, outcome: 'failed', detail: 'malformed answer' };
  }
  const sources: Source[] = [];
  const seen = new Set<string>();
  for (const raw of parsed.results) {
    const h = v.safeParse(Hit, raw);
    if (!h.success || !isHttpUrl(h.output.url) || seen.has(h.output.url)) continue;
    seen.add(h.output.url);
    sources.push({
      url: h.output.url, title: cut(h.output.title.trim() || h.output.url, RESEARCH_LIMITS.titleChars), snippet: cut(h.output.snippet.trim(), RESEARCH_LIMITS.snippetChars),
      ...(h.output.publishedDate ? { publishedAt: h.output.publishedDate } : {}),
    });
    if (sources.length >= RESEARCH_LIMITS.maxHits) break;
  }
  return sources.length ? { ok: true, sources } : { ok: false, outcome: 'empty', detail: 'no hits' };
}
