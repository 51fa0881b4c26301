// The header of a v2 Mission Grant (CONTRACT.md section 14): steps 2 to 4
// of the unwrap, pure. The header is a string whose exact bytes the key
// table's tag authenticates, so nothing here is trusted until step 10; the
// checks only make sure a header that could never be valid is `malformed`
// (or `expired`) before any key is touched. Never logs.

/** The tables whose records have record keys (section 14). */
export const RECORD_KEY_TABLES: readonly string[] = ['notes', 'tasks', 'events', 'journalEntries', 'kontextDoc'];

export interface GrantHeader {
  grantId: string;
  userId: string;
  missionId: string;
  issuedAt: string;
  issuedMs: number;
  expiresAt: string;
  expiresMs: number;
  runnerKid: string;
  /** `<table>:<recordId>`, 1..256, unique, sorted by UTF-16 code units. */
  scope: readonly string[];
}

const MAX_SCOPE = 256;
const MAX_SCOPE_KEY_BYTES = 512;
const DAY_MS = 86_400_000;
const SKEW_MS = 5 * 60_000;
const MAX_LIFETIME_MS = 30 * DAY_MS + SKEW_MS;

const KEYS = ['typ', 'v', 'grantId', 'userId', 'missionId', 'issuedAt', 'expiresAt', 'runnerKid', 'scope'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const KID = /^[0-9a-f]{16}$/;
const te = new TextEncoder();

/** A time in the header's one form, `YYYY-MM-DDTHH:mm:ss.sssZ`, that is a real instant (not 2026-02-30). */
function headerTime(s: unknown): number | null {
  if (typeof s !== 'string' || !ISO_MS.test(s)) return null;
  const ms = Date.parse(s);
  return Number.isFinite(ms) && new Date(ms).toISOString() === s ? ms : null;
}

/** Step 2: the grant is an object with `v: 2` and a string `header` that parses as an object. */
export function headerObject(raw: unknown): { header: string; fields: Record<string, unknown> } | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const g = raw as Record<string, unknown>;
  if (g['v'] !== 2 || typeof g['header'] !== 'string') return null;
  try {
    const fields = JSON.parse(g['header']) as unknown;
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) return null;
    return { header: g['header'], fields: fields as Record<string, unknown> };
  } catch {
    return null;
  }
}

/** Step 3: `expiresAt` unparseable or not after now. */
export function isExpired(fields: Record<string, unknown>, nowMs: number): boolean {
  const ms = headerTime(fields['expiresAt']) ?? (typeof fields['expiresAt'] === 'string' ? Date.parse(fields['expiresAt']) : NaN);
  return !Number.isFinite(ms) || ms <= nowMs;
}

const isScopeKey = (k: unknown): k is string => {
  if (typeof k !== 'string') return false;
  const colon = k.indexOf(':');
  if (colon <= 0 || colon === k.length - 1) return false;
  const bytes = te.encode(k).length;
  return RECORD_KEY_TABLES.includes(k.slice(0, colon)) && bytes <= MAX_SCOPE_KEY_BYTES;
};

/** Step 4: exactly the listed keys, the times, the lifetime and the scope; null = `malformed`. */
export function checkHeader(fields: Record<string, unknown>, nowMs: number): GrantHeader | null {
  const keys = Object.keys(fields);
  if (keys.length !== KEYS.length || !KEYS.every((k) => keys.includes(k))) return null;
  const f = fields;
  if (f['typ'] !== 'mana-ai-mission-grant' || f['v'] !== 2) return null;
  if (typeof f['grantId'] !== 'string' || !UUID.test(f['grantId'])) return null;
  if (typeof f['userId'] !== 'string' || f['userId'] === '' || typeof f['missionId'] !== 'string' || f['missionId'] === '') return null;
  const issuedMs = headerTime(f['issuedAt']);
  const expiresMs = headerTime(f['expiresAt']);
  if (issuedMs === null || expiresMs === null) return null;
  if (issuedMs > nowMs + SKEW_MS || expiresMs <= issuedMs || expiresMs - issuedMs > MAX_LIFETIME_MS) return null;
  if (typeof f['runnerKid'] !== 'string' || !KID.test(f['runnerKid'])) return null;
  const scope = f['scope'];
  if (!Array.isArray(scope) || scope.length < 1 || scope.length > MAX_SCOPE) return null;
  for (let i = 0; i < scope.length; i++) {
    if (!isScopeKey(scope[i])) return null;
    // strictly ascending by UTF-16 code units: sorted and unique at once
    if (i > 0 && !((scope[i - 1] as string) < (scope[i] as string))) return null;
  }
  return {
    grantId: f['grantId'], userId: f['userId'], missionId: f['missionId'],
    issuedAt: f['issuedAt'] as string, issuedMs, expiresAt: f['expiresAt'] as string, expiresMs,
    runnerKid: f['runnerKid'], scope: scope as string[],
  };
}

