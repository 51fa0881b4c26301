// The decrypt audit over HTTP: the user's own rows for the webapp's
// "Mission -> data access" tab (user JWT), and any user's rows for
// operators (service key). Both read inside a transaction scoped to the
// user whose rows they return; neither can write.

import type { Db } from '../db/pool.js';
import { AUDIT_LIMIT_DEFAULT, readDecryptAudit } from '../db/sql/read-decrypt-audit.js';
import { HttpError, type Route } from './server.js';
import type { VerifyUserToken } from './user-token.js';

export interface AuditRouteDeps {
  db: Db;
  /** null when MANA_AUTH_URL is not set: the user route answers 503. */
  verifyUserToken: VerifyUserToken | null;
}

function readQuery(url: URL): { missionId: string | undefined; limit: number } {
  const missionId = url.searchParams.get('missionId') || undefined;
  const rawLimit = url.searchParams.get('limit');
  let limit = AUDIT_LIMIT_DEFAULT;
  if (rawLimit !== null && rawLimit !== '') {
    const n = Number(rawLimit);
    if (!Number.isInteger(n) || n < 1) throw new HttpError(400, 'invalid-limit', 'limit must be a positive integer (at most 1000 rows are returned)');
    limit = n;
  }
  return { missionId, limit };
}

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
