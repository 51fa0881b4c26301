// Whether a run researches, and what it asks (issue 31; CONTRACT.md
// section 15). Pure. The mission's own `research` field (this project's:
// {mode: 'none' | 'news' | 'deep', query?, language?: 'de' | 'en'}) wins;
// without it, upstream's two regexes on the plaintext objective and
// concept decide, under MANA_AI_WEBAPP=head or when enabled for v0.4.
// The query is never an `enc:` value and never decrypted input content:
// the field's query, else the plaintext objective, cut to QUERY_CHARS.

import { isCiphertext } from '../grants/ciphertext.js';

export type ResearchKind = 'news' | 'deep';
export type ResearchRequest =
  | { kind: ResearchKind; query: string; language: 'de' | 'en'; from: 'field' | 'regex' }
  | { kind: 'none'; reason: 'not-asked' | 'encrypted-objective' | 'empty-query' | 'deep-disabled' };

/** upstream's shallow regex (section 15) */
export const NEWS_REGEX = /\b(recherchier|research|news|finde|suche|aktuelle|neueste|today|history|historisch|on this day)/i;
/** upstream's deep regex, only with MANA_AI_DEEP_RESEARCH_ENABLED=true */
export const DEEP_REGEX = /\b(deep research|tiefe recherche|umfassende recherche|hintergrundrecherche|deep dive)\b/i;
/** the stated length of a query */
export const QUERY_CHARS = 200;

const plain = (v: unknown): string | null => (typeof v === 'string' && !isCiphertext(v) ? v : null);

export function researchRequest(
  record: Record<string, unknown>,
  opts: { regexes: boolean; deepEnabled: boolean },
): ResearchRequest {
  const field = record['research'];
  const objective = record['objective'];
  let kind: ResearchKind | null = null;
  let query: string | null = null;
  let language: 'de' | 'en' = 'de';
  let from: 'field' | 'regex' = 'field';
  if (field && typeof field === 'object' && !Array.isArray(field)) {
    const f = field as Record<string, unknown>;
    if (f['mode'] === 'none') return { kind: 'none', reason: 'not-asked' };
    if (f['mode'] === 'news' || f['mode'] === 'deep') kind = f['mode'];
    if (typeof f['query'] === 'string' && f['query'].trim() !== '') query = plain(f['query']);
    if (f['language'] === 'en') language = 'en';
  }
  if (kind === null) {
    if (!opts.regexes) return { kind: 'none', reason: 'not-asked' };
    // upstream runs the regexes over objective and concept; an `enc:` text is never read
    const text = [plain(objective), plain(record['conceptMarkdown'])].filter((t): t is string => t !== null).join('\n');
    if (opts.deepEnabled && DEEP_REGEX.test(text)) kind = 'deep';
    else if (NEWS_REGEX.test(text)) kind = 'news';
    else return { kind: 'none', reason: 'not-asked' };
    from = 'regex';
  }
  if (kind === 'deep' && !opts.deepEnabled) return { kind: 'none', reason: 'deep-disabled' };
  if (query === null) {
    if (isCiphertext(objective)) return { kind: 'none', reason: 'encrypted-objective' };
    query = plain(objective);
  }
  const q = (query ?? '').replace(/\s+/g, ' ').trim().slice(0, QUERY_CHARS);
  if (q === '') return { kind: 'none', reason: 'empty-query' };
  return { kind, query: q, language, from };
}
