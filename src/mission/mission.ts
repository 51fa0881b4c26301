// Reads a Mission record (CONTRACT.md section 4) as the planner needs it.
// Lenient where a default is harmless (a missing title is ''), strict where
// guessing would be wrong (state, cadence): those make the record
// unreadable, and the reactor skips it with a log line and a metric.

import * as v from 'valibot';
import { parseCadence, type Cadence } from './cadence.js';

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
}

const InputSchema = v.object({ module: v.pipe(v.string(), v.minLength(1)), table: v.pipe(v.string(), v.minLength(1)), id: v.pipe(v.string(), v.minLength(1)) });
const StateSchema = v.picklist(['active', 'paused', 'done', 'archived']);

export type ReadMission = { ok: true; mission: Mission } | { ok: false; reason: string };

const str = (x: unknown) => (typeof x === 'string' ? x : '');

export function readMission(record: Record<string, unknown>): ReadMission {
  const state = v.safeParse(StateSchema, record['state']);
  if (!state.success) return { ok: false, reason: 'state-unreadable' };
  const cadence = parseCadence(record['cadence']);
  if (!cadence) return { ok: false, reason: 'cadence-unreadable' };
  const rawInputs = Array.isArray(record['inputs']) ? record['inputs'] : [];
  const inputs: MissionInput[] = [];
  for (const i of rawInputs.slice(0, 50)) {
    const r = v.safeParse(InputSchema, i);
    if (r.success) inputs.push(r.output);
  }
  return {
    ok: true,
    mission: {
      id: str(record['id']),
      title: str(record['title']),
      objective: str(record['objective']),
      conceptMarkdown: str(record['conceptMarkdown']),
      inputs,
      cadence,
      state: state.output,
      iterations: Array.isArray(record['iterations']) ? record['iterations'] : [],
      grant: record['grant'],
    },
  };
}
