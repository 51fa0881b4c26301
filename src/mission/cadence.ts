// Next run of a cadence, strictly after a given instant, in a time zone.
// Pure. Daily, weekly and cron go through croner, which knows the time
// zone database and daylight-saving changes (a 02:30 that does not exist on
// the spring-forward day runs at 03:00; an autumn 02:30 runs once).
// Interval is wall-clock minutes from the instant, as the webapp computes it.
// Returns null for "never": manual cadence, a cron that never matches, and
// any next run that is not a finite time or lies past 9999-12-31 (an
// interval of 1e12 minutes; such an instant has no ISO-8601 form a client
// or the trigger could read, and a run whose write-back cannot be written
// must never happen).

import { Cron } from 'croner';
import * as v from 'valibot';

const finiteNumber = v.pipe(v.number(), v.finite());
const intIn = (min: number, max: number) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));

export const CadenceSchema = v.variant('kind', [
  v.object({ kind: v.literal('manual') }),
  v.object({ kind: v.literal('interval'), everyMinutes: v.pipe(finiteNumber, v.gtValue(0)) }),
  v.object({ kind: v.literal('daily'), atHour: intIn(0, 23), atMinute: intIn(0, 59) }),
  v.object({ kind: v.literal('weekly'), dayOfWeek: intIn(0, 6), atHour: intIn(0, 23) }),
  v.object({ kind: v.literal('cron'), expression: v.pipe(v.string(), v.maxLength(200)) }),
]);

export type Cadence = v.InferOutput<typeof CadenceSchema>;

/** A cadence, or null when the value is not one the runner can read. */
export function parseCadence(raw: unknown): Cadence | null {
  const r = v.safeParse(CadenceSchema, raw);
  if (!r.success) return null;
  if (r.output.kind === 'cron' && compileCron(r.output.expression, 'UTC') === null) return null;
  return r.output;
}

/** No mission runs more often than this, whatever its cadence says. */
export const MIN_INTERVAL_MINUTES = 1;

function compileCron(expression: string, timeZone: string): Cron | null {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5) return null; // 5-field cron only: minute hour dom month dow
  try {
    return new Cron(fields.join(' '), { timezone: timeZone, paused: true });
  } catch {
    return null;
  }
}

/** The last instant with a four-digit ISO-8601 year: 9999-12-31T23:59:59.999Z. */
export const LAST_REPRESENTABLE_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export function nextRunAfter(cadence: Cadence, fromMs: number, timeZone: string): number | null {
  const next = nextRunUnchecked(cadence, fromMs, timeZone);
  return next !== null && Number.isFinite(next) && next <= LAST_REPRESENTABLE_MS ? next : null;
}

function nextRunUnchecked(cadence: Cadence, fromMs: number, timeZone: string): number | null {
  switch (cadence.kind) {
    case 'manual':
      return null;
    case 'interval':
      return fromMs + Math.max(cadence.everyMinutes, MIN_INTERVAL_MINUTES) * 60_000;
    case 'daily':
      return cronNext(`${cadence.atMinute} ${cadence.atHour} * * *`, fromMs, timeZone);
    case 'weekly':
      return cronNext(`0 ${cadence.atHour} * * ${cadence.dayOfWeek}`, fromMs, timeZone);
    case 'cron':
      return cronNext(cadence.expression, fromMs, timeZone);
  }
}

function cronNext(expression: string, fromMs: number, timeZone: string): number | null {
  const cron = compileCron(expression, timeZone);
  if (!cron) return null;
  try {
    const next = cron.nextRun(new Date(fromMs));
    return next ? next.getTime() : null;
  } catch {
    return null;
  }
}

/** The next run after `fromMs` for a mission record as it stands (its cadence read afresh); null = none or unreadable. */
export function nextRunOfRecord(record: Record<string, unknown>, fromMs: number, timeZone: string): number | null {
  const cadence = parseCadence(record['cadence']);
  return cadence ? nextRunAfter(cadence, fromMs, timeZone) : null;
}
