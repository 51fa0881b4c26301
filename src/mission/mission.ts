// Reads a Mission record (CONTRACT.md section 4) as the planner needs it.
// Lenient where a default is harmless (a missing title is ''), strict where
// guessing would be wrong (state, cadence): those make the record
// unreadable, and the reactor skips it with a log line and a metric.

import * as v from 'valibot';
import { parseCadence, type Cadence } from './cadence.js';
import { isCiphertext } from '../grants/ciphertext.js';

export interface MissionInput {
  module: string;
  table: string;
  id: string;
}

export interface Mission {
  id: string;
  title: string;
  objective: string;
  conceptMarkdown: string;
  inputs: MissionInput[];
  cadence: Cadence;
  state: 'active' | 'paused' | 'done' | 'archived';
  iterations: unknown[];
  grant: unknown;
  /** inputs past the first MAX_INPUTS, not read (logged by the planner) */
  inputsLeftOut: number;
}

/** Inputs of one mission that are read: a v2 grant's scope limit (CONTRACT.md section 14); PLAN_LIMITS.inputsPerMission. */
export const MAX_INPUTS = 256;

const InputSchema = v.object({ module: v.pipe(v.string(), v.minLength(1)), table: v.pipe(v.string(), v.minLength(1)), id: v.pipe(v.string(), v.minLength(1)) });
const StateSchema = v.picklist(['active', 'paused', 'done', 'archived']);

export type ReadMission = { ok: true; mission: Mission } | { ok: false; reason: string };

const str = (x: unknown) => (typeof x === 'string' ? x : '');

/** The webapp's encrypted-at-rest form (CONTRACT.md sections 7 and 12). */

/** Mission texts HEAD marks as encrypted: an `enc:<n>:` value (any version) here is left out and a neutral placeholder stands in (issue 21). */
export const ENCRYPTABLE_MISSION_FIELDS = ['title', 'objective', 'conceptMarkdown'] as const;
const PLACEHOLDER: Record<(typeof ENCRYPTABLE_MISSION_FIELDS)[number], string> = {
  title: '(Titel verschlüsselt)',
  objective: '(Ziel verschlüsselt; plane anhand der verknüpften Daten und der letzten Durchläufe)',
  conceptMarkdown: '',
};

/** A mission text for the prompt, a log or an actor: never a ciphertext. */
export function plainText(record: Record<string, unknown>, field: (typeof ENCRYPTABLE_MISSION_FIELDS)[number]): string {
  const v = record[field];
  return isCiphertext(v) ? PLACEHOLDER[field] : str(v);
}

/** Which mission texts arrived encrypted (counted by field; their values are never read). */
export function encryptedFields(record: Record<string, unknown>): (typeof ENCRYPTABLE_MISSION_FIELDS)[number][] {
  return ENCRYPTABLE_MISSION_FIELDS.filter((f) => isCiphertext(record[f]));
}

export function readMission(record: Record<string, unknown>): ReadMission {
  const state = v.safeParse(StateSchema, record['state']);
  if (!state.success) return { ok: false, reason: 'state-unreadable' };
  const cadence = parseCadence(record['cadence']);
  if (!cadence) return { ok: false, reason: 'cadence-unreadable' };
  const rawInputs = Array.isArray(record['inputs']) ? record['inputs'] : [];
  const inputs: MissionInput[] = [];
  for (const i of rawInputs.slice(0, MAX_INPUTS)) {
    const r = v.safeParse(InputSchema, i);
    if (r.success) inputs.push(r.output);
  }
  return {
    ok: true,
    mission: {
      id: str(record['id']),
      title: plainText(record, 'title'),
      objective: plainText(record, 'objective'),
      conceptMarkdown: plainText(record, 'conceptMarkdown'),
      inputs,
      cadence,
      state: state.output,
      iterations: Array.isArray(record['iterations']) ? record['iterations'] : [],
      grant: record['grant'],
      inputsLeftOut: Math.max(0, rawInputs.length - MAX_INPUTS),
    },
  };
}
