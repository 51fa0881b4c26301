// The tables of encrypted inputs (CONTRACT.md section 7) as metric label
// values. A mission's input names its table freely, so the label is one of
// these or `other`: a user can never create series by inventing tables.

// The webapp's inputs name their tables as its Dexie stores do: `events`,
// `journalEntries`, `kontextDoc` beside the contract's section-7 names.
export const GRANT_TABLES = ['notes', 'tasks', 'todo', 'calendar', 'events', 'journal', 'journalEntries', 'kontext', 'kontextDoc'] as const;

const known = new Set<string>(GRANT_TABLES);

/** The `table` label for an input's table: known tables by name, everything else `other`. */
export function tableLabel(table: string): string {
  return known.has(table) ? table : 'other';
}
