// A record has one scope (issue 27, item 2; CONTRACT.md section 12's last
// paragraph): mana-sync takes a row's space from the client and checks only
// its user id, so any user can write rows that name any space, and any
// member of a space rows whose record id equals another member's personal
// record. The rule, decided once where the record is found and passed to
// the fold, the audit and the prompt fence (STYLE.md "a record's scope is a
// value"):
//   - the owner has rows of it that name no space: it is the owner's
//     personal record, folded from those rows only;
//   - else the rows of each space the owner belongs to, written by members
//     of that space (verified with mana-auth) or by the owner: exactly one
//     such space makes it that space's record, folded from those rows only;
//     more than one is ambiguous and refused; none, nothing to read.
// Pure: the writers' memberships are looked up by the caller.

export interface WriterRow {
  spaceId: string | null;
  userId: string;
}

export type ScopeDecision =
  | { kind: 'personal' }
  | { kind: 'space'; spaceId: string; writers: string[] }
  | { kind: 'ambiguous'; spaces: string[] }
  | { kind: 'none' };

/** The writers whose membership must be confirmed before decideScope: others' rows in the owner's spaces. */
export function writersToVerify(owner: string, rows: readonly WriterRow[], ownerSpaces: readonly string[] | null): string[] {
  if (rows.some((r) => r.spaceId === null && r.userId === owner)) return [];
  const spaces = new Set(ownerSpaces ?? []);
  return [...new Set(rows.filter((r) => r.spaceId !== null && spaces.has(r.spaceId) && r.userId !== owner).map((r) => r.userId))].sort();
}

export function decideScope(
  owner: string,
  rows: readonly WriterRow[],
  ownerSpaces: readonly string[] | null,
  isMember: (userId: string, spaceId: string) => boolean,
): ScopeDecision {
  if (rows.some((r) => r.spaceId === null && r.userId === owner)) return { kind: 'personal' };
  const spaces = new Set(ownerSpaces ?? []);
  const bySpace = new Map<string, Set<string>>();
  for (const r of rows) {
    if (r.spaceId === null || !spaces.has(r.spaceId)) continue;
    if (r.userId !== owner && !isMember(r.userId, r.spaceId)) continue;
    bySpace.set(r.spaceId, (bySpace.get(r.spaceId) ?? new Set()).add(r.userId));
  }
  if (bySpace.size === 0) return { kind: 'none' };
  if (bySpace.size > 1) return { kind: 'ambiguous', spaces: [...bySpace.keys()].sort() };
  const [spaceId, writers] = [...bySpace][0]!;
  return { kind: 'space', spaceId, writers: [...writers].sort() };
}
