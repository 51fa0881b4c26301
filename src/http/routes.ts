// The daemon's routes. Handlers read; the only one that acts is
// POST /internal/tick, which runs what is due now through the same claim
// as the timer wheel (so it can never double a run).

import type pg from 'pg';
import type { Metrics } from '../metrics/metrics.js';
import type { Reactor } from '../reactor/reactor.js';
import { HttpError, type Route } from './server.js';
import { readUserMissions } from '../db/sql/read-user-missions.js';
import { schemaName } from '../db/sql/sync-schema.js';
import { readHealthFacts } from '../db/sql/health-facts.js';

export interface RouteDeps {
  version: string;
  metrics: Metrics;
  pool: pg.Pool;
  reactor: Reactor | null;
  dbHealthy: () => boolean;
  /** the webapp generation served (MANA_AI_WEBAPP) */
  webapp: 'v0.4' | 'head';
}

export function coreRoutes(d: RouteDeps): Route[] {
  return [
    {
      method: 'GET', pattern: '/health', auth: 'none',
      handle: async () => {
        const facts = d.dbHealthy() ? await readHealthFacts(d.pool).catch(() => null) : null;
        const sync = facts?.sync ?? null;
        const rule = facts?.mergeRule ?? null;
        const listenerConnected = d.reactor ? d.reactor.listenerConnected : null;
        const partitionsConnected = d.reactor ? d.reactor.ownership.connected : null;
        const ok = d.dbHealthy() && listenerConnected !== false && partitionsConnected !== false;
        return {
          status: ok ? 200 : 503,
          body: {
            ok,
            service: 'mana-ai',
            version: d.version,
            tickEnabled: d.reactor !== null,
            database: d.dbHealthy() ? 'up' : 'down',
            listenerConnected,
            missionsScheduled: d.reactor?.wheel.size ?? 0,
            runsInFlight: d.reactor?.runsInFlight ?? 0,
            runsQueued: d.reactor?.runsQueued ?? 0,
            lastNotificationAt: d.reactor?.lastNotificationAt?.toISOString() ?? null,
            partitionsOwned: d.reactor ? d.reactor.ownership.owned.size : null,
            webapp: d.webapp,
            // the rule the trigger folds with; differs from webapp only until `npm run migrate -- --webapp` ran
            mergeRule: rule,
            syncChanges: sync ? { schema: schemaName(sync), table: sync.table, fieldMap: sync.fieldMap, origin: sync.origin, spaceId: sync.spaceId } : null,
          },
        };
      },
    },
    {
      method: 'GET', pattern: '/metrics', auth: 'none',
      handle: async () => ({ status: 200, body: await d.metrics.registry.metrics(), contentType: d.metrics.registry.contentType }),
    },
    {
      method: 'POST', pattern: '/internal/tick', auth: 'service-key',
      handle: async () => {
        if (!d.reactor) throw new HttpError(409, 'tick-disabled', 'TICK_ENABLED=false: this instance serves HTTP only');
        return { status: 200, body: { ok: true, counts: await d.reactor.tick() } };
      },
    },
    {
      method: 'GET', pattern: '/internal/missions/:userId', auth: 'service-key',
      handle: async ({ params }) => {
        const { missions, runs, agents, parked } = await readUserMissions(d.pool, params['userId']!);
        return { status: 200, body: { userId: params['userId'], missions, runs, agents, parked } };
      },
    },
  ];
}
