// The sources of each run's research over HTTP (issue 31): the user's own
// rows (user JWT, as the audit API) and any user's for operators (service
// key). Both read inside a transaction scoped to the user whose rows they
// return; neither can write. Answers {rows: [{missionId, dueAt, kind,
// query, sources: [{url, title}], createdAt}]}, newest first.

import type { Db } from '../db/pool.js';
import { withUserScope } from '../db/scoped.js';
import { readResearch } from '../db/sql/research-runs.js';
import { HttpError, type Route } from './server.js';
import type { VerifyUserToken } from './user-token.js';
import { readListQuery } from './list-query.js';

export const RESEARCH_LIMIT_DEFAULT = 50;
export const RESEARCH_LIMIT_MAX = 500;

export interface ResearchRouteDeps {
  db: Db;
  /** null when MANA_AUTH_URL is not set: the user route answers 503. */
  verifyUserToken: VerifyUserToken | null;
}

const readQuery = (url: URL) => readListQuery(url, { defaultLimit: RESEARCH_LIMIT_DEFAULT, maxLimit: RESEARCH_LIMIT_MAX });

const rowsOf = (db: Db, userId: string, q: { missionId: string | undefined; limit: number }) =>
  withUserScope(db, userId, (trx) => readResearch(trx, { userId, limit: q.limit, ...(q.missionId ? { missionId: q.missionId } : {}) }));

export function researchRoutes(d: ResearchRouteDeps): Route[] {
  return [
    {
      method: 'GET', pattern: '/api/v1/me/ai-research', auth: 'none',
      handle: async ({ req, url }) => {
        if (!d.verifyUserToken) throw new HttpError(503, 'not-configured', 'MANA_AUTH_URL is not set; the research API cannot verify user tokens');
        const userId = await d.verifyUserToken(req.headers['authorization']);
        return { status: 200, body: { rows: await rowsOf(d.db, userId, readQuery(url)) } };
      },
    },
    {
      method: 'GET', pattern: '/internal/research', auth: 'service-key',
      handle: async ({ url }) => {
        const userId = url.searchParams.get('userId');
        if (!userId) throw new HttpError(400, 'missing-user-id', 'userId is required: /internal/research?userId=<id>[&missionId=<id>][&limit=<n>]');
        return { status: 200, body: { userId, rows: await rowsOf(d.db, userId, readQuery(url)) } };
      },
    },
  ];
}
