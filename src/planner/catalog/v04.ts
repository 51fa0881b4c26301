// The tools the seed's webapp (v0.4) executes: names, modules, parameters,
// types, required flags and enums exactly as its executors declare them
// (../shared/contract/tools-v04.json is the fact; test/catalog.test.ts
// compares this table with it field by field). Five of the seven are the
// same entries as today's catalog (the fix 56171ff13 aligned that catalog
// with the seed's executors, TOOLS.md); the other two are today's tools
// under the names the seed's webapp registered. Data only.

import { HEAD_TOOLS } from './head.js';
import type { CatalogTool } from './types.js';

const head = (name: string): CatalogTool => {
  const t = HEAD_TOOLS.find((x) => x.name === name);
  if (!t) throw new Error(`${name} is not in the HEAD catalog`);
  return t;
};

export const V04_TOOLS: readonly CatalogTool[] = [
  head('create_task'),
  head('complete_task'),
  head('complete_tasks_by_title'),
  head('create_event'),
  head('create_place'),
  { ...head('visit_place'), name: 'record_visit' },
  { ...head('undo_drink'), name: 'undo_last_drink' },
];
