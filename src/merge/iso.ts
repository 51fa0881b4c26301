// Strict ISO-8601 parsing shared by the merge rule, the reactor and tests.
// It accepts exactly what mana_ai.parse_iso (sql/functions/snapshot-trigger.sql) accepts, so the
// daemon and the trigger agree on which `nextRunAt` values are dates.
// It must never throw: odd input gives null.

const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,3})?(Z|([+-])(\d{2}):(\d{2}))$/;

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isLeap(y: number): boolean {
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
}

/** Epoch milliseconds of a strict ISO-8601 timestamp, or null. */
export function parseIsoStrict(text: unknown): number | null {
  if (typeof text !== 'string' || text.length > 40) return null;
  const m = ISO_RE.exec(text);
  if (!m) return null;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const hh = Number(m[4]);
  const mi = Number(m[5]);
  const ss = Number(m[6]);
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || hh > 23 || mi > 59 || ss > 59) return null;
  const maxDay = mo === 2 && isLeap(y) ? 29 : MONTH_DAYS[mo - 1]!;
  if (d > maxDay) return null;
  let offsetMin = 0;
  if (m[8] !== 'Z') {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const frac = m[7] ? Math.round(Number(`0${m[7]}`) * 1000) : 0;
  // Date.UTC maps years 0..99 to 1900..1999; setUTCFullYear does not.
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(hh, mi, ss, frac);
  return date.getTime() - offsetMin * 60_000;
}

/** The contract's timestamp format: UTC, milliseconds, `Z`. */
export function toIso(ms: number): string {
  return new Date(ms).toISOString();
}
