import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextRunAfter, parseCadence } from '../src/mission/cadence.js';

const berlin = (ms: number | null) =>
  ms === null ? null : new Intl.DateTimeFormat('sv-SE', { timeZone: 'Europe/Berlin', dateStyle: 'short', timeStyle: 'short' }).format(new Date(ms));
const TZ = 'Europe/Berlin';

describe('cadence', () => {
  it('interval is wall-clock minutes from now, never below one minute', () => {
    const from = Date.parse('2026-03-29T00:30:00.000Z');
    assert.equal(nextRunAfter({ kind: 'interval', everyMinutes: 30 }, from, TZ), from + 30 * 60_000);
    assert.equal(nextRunAfter({ kind: 'interval', everyMinutes: 0.001 }, from, TZ), from + 60_000);
  });

  it('daily crosses the spring-forward change at 09:00 local, strictly after', () => {
    const c = parseCadence({ kind: 'daily', atHour: 9, atMinute: 0 })!;
    assert.equal(berlin(nextRunAfter(c, Date.parse('2026-03-28T08:00:00.000Z'), TZ)), '2026-03-29 09:00');
    assert.equal(nextRunAfter(c, Date.parse('2026-03-28T08:00:00.000Z'), TZ), Date.parse('2026-03-29T07:00:00.000Z'));
    // exactly at the time: the next day
    assert.equal(berlin(nextRunAfter(c, Date.parse('2026-03-29T07:00:00.000Z'), TZ)), '2026-03-30 09:00');
  });

  it('daily at a time the spring-forward skips runs once, at 03:00; the autumn repeat runs once', () => {
    const c = parseCadence({ kind: 'daily', atHour: 2, atMinute: 30 })!;
    const spring = nextRunAfter(c, Date.parse('2026-03-28T12:00:00.000Z'), TZ)!;
    assert.equal(berlin(spring), '2026-03-29 03:00');
    const autumn1 = nextRunAfter(c, Date.parse('2026-10-24T12:00:00.000Z'), TZ)!;
    const autumn2 = nextRunAfter(c, autumn1, TZ)!;
    assert.equal(berlin(autumn1), '2026-10-25 02:30');
    assert.equal(berlin(autumn2), '2026-10-26 02:30', 'no second run in the repeated hour');
  });

  it('weekly: next dayOfWeek at atHour:00 across the autumn change', () => {
    const c = parseCadence({ kind: 'weekly', dayOfWeek: 0, atHour: 18 })!; // Sundays 18:00
    const next = nextRunAfter(c, Date.parse('2026-10-24T12:00:00.000Z'), TZ)!;
    assert.equal(berlin(next), '2026-10-25 18:00');
    assert.equal(next, Date.parse('2026-10-25T17:00:00.000Z'), 'CET after the change');
    assert.equal(berlin(nextRunAfter(c, next, TZ)), '2026-11-01 18:00');
  });

  it('cron: 5 fields in the time zone, across DST; never-matching gives null; other shapes are unreadable', () => {
    const c = parseCadence({ kind: 'cron', expression: '15 8 * * 1-5' })!;
    assert.equal(berlin(nextRunAfter(c, Date.parse('2026-03-27T08:00:00.000Z'), TZ)), '2026-03-30 08:15');
    assert.equal(nextRunAfter(c, Date.parse('2026-03-27T08:00:00.000Z'), TZ), Date.parse('2026-03-30T06:15:00.000Z'));
    assert.equal(nextRunAfter(parseCadence({ kind: 'cron', expression: '0 0 30 2 *' })!, Date.now(), TZ), null);
    assert.equal(parseCadence({ kind: 'cron', expression: '* * * * * *' }), null);
    assert.equal(parseCadence({ kind: 'cron', expression: 'never' }), null);
  });

  it('manual has no next run; unreadable values are rejected', () => {
    assert.equal(nextRunAfter({ kind: 'manual' }, Date.now(), TZ), null);
    for (const bad of ['daily', null, {}, { kind: 'interval', everyMinutes: Number.NaN }, { kind: 'interval', everyMinutes: -5 }, { kind: 'interval', everyMinutes: '5' },
      { kind: 'daily', atHour: 24, atMinute: 0 }, { kind: 'weekly', dayOfWeek: 7, atHour: 9 }, { kind: 'daily', atHour: 9.5, atMinute: 0 }, { kind: 'yearly' }]) {
      assert.equal(parseCadence(bad), null, JSON.stringify(bad));
    }
  });
});
