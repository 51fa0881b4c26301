// The decrypt audit over HTTP: the user's own rows for the webapp's
// "Mission -> data access" tab (user JWT), and any user's rows for
// operators (service key). Both read inside a transaction scoped to the
// user whose rows they return; neither can write.

import type { Db } from '../db/pool.js';
import { AUDIT_LIMIT_DEFAULT, AUDIT_LIMIT_MAX, readDecryptAudit } from '../db/sql/read-decrypt-audit.js';
import { readListQuery } from './list-query.js';
import { HttpError, type Route } from './server.js';
import type { VerifyUserToken } from './user-token.js';

export interface AuditRouteDeps {
  db: Db;
  /** null when MANA_AUTH_URL is not set: the user route answers 503. */
  verifyUserToken: VerifyUserToken | null;
}

const readQuery = (url: URL) => readListQuery(url, { defaultLimit: AUDIT_LIMIT_DEFAULT, maxLimit: AUDIT_LIMIT_MAX });

export function auditRoutes(d: AuditRouteDeps): Route[] {
  return [
    {
      method: 'GET', pattern: '/api/v1/me/ai-audit', auth: 'none',
      handle: async ({ req, url }) => {
        if (!d.verifyUserToken) throw new HttpError(503, 'not-configured', 'MANA_AUTH_URL is not set; the audit API cannot verify user tokens');
        const userId = await d.verifyUserToken(req.headers['authorization']);
        const q = readQuery(url);
        return { status: 200, body: { rows: await readDecryptAudit(d.db, { userId, ...q }) } };
      },
    },
    {
      method: 'GET', pattern: '/internal/audit', auth: 'service-key',
      handle: async ({ url }) => {
        const userId = url.searchParams.get('userId');
        if (!userId) throw new HttpError(400, 'missing-user-id', 'userId is required: /internal/audit?userId=<id>[&missionId=<id>][&limit=<n>]');
        const q = readQuery(url);
        return { status: 200, body: { userId, rows: await readDecryptAudit(d.db, { userId, ...q }) } };
      },
    },
  ];
}
