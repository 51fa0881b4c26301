// Which v2 grant serves a run (CONTRACT.md section 14, "Revocation and
// stale devices"), pure: the folded `grant` of the mission, unless the
// runner has seen a newer live grant for it. Then the folded one came from
// a device that had not pulled the newest (or restores a revoked one): it
// is refused (`revoked`) and the newest live grant keeps serving. The
// state comes from the trigger (sql/functions/grant-state.sql); this only
// reads it.

import { headerObject } from './header.js';

export interface SeenGrant {
  grantId: string;
  issuedMs: number;
  /** the grant object as the trigger first saw it */
  body: unknown;
  revoked: boolean;
}

export interface GrantChoice {
  /** the grant to unwrap */
  serve: unknown;
  /** the folded grant was refused as revoked or stale (counted as `revoked`) */
  refused: boolean;
  revoked: ReadonlySet<string>;
}

export function chooseGrant(folded: unknown, seen: readonly SeenGrant[]): GrantChoice {
  const revoked = new Set(seen.filter((g) => g.revoked).map((g) => g.grantId));
  let live: SeenGrant | undefined;
  for (const g of seen) if (!g.revoked && (!live || g.issuedMs > live.issuedMs)) live = g;
  const id = headerObject(folded)?.fields['grantId'];
  if (live && id !== live.grantId) return { serve: live.body, refused: true, revoked };
  return { serve: folded, refused: false, revoked };
}
