// One validator for every plan step, whatever produced it (a text-JSON
// answer, a native tool call): the webapp executor's own rules
// (../shared/contract/TOOLS.md, "How the executor validates a call"), and
// stricter where the executor is lax, so that no step is written that the
// configured generation's executor would refuse or not know. Pure.
//
//   executor                                  here
//   unknown tool -> refused                   refused ('unknown-tool'); a tool the agent's policy denies too ('denied-tool')
//   required: not undefined/null              same ('missing-required')
//   number: Number(v), NaN refused            same, and the coerced number is what is written ('not-a-number')
//   boolean: 'true' -> true, else false       true/false/'true'/'false' only ('not-a-boolean')
//   enum: String(v) in the list               same, for every enum of the catalog ('not-in-enum')
//   string/array/object: not checked          a string must be a string, an array an array, an object an object ('wrong-type')
//   -                                         a date must be YYYY-MM-DD and exist, a date-time must parse ('bad-format')
//   unknown params kept                       dropped, and counted ('unknown-param')
//   -                                         a value nested deeper than 8, or larger than 2,000 values or 20,000 characters ('too-large')

import type { CatalogParam, CatalogTool } from './catalog/index.js';

export type StepProblemReason = 'unknown-tool' | 'denied-tool' | 'missing-required' | 'not-a-number' | 'not-a-boolean' | 'not-in-enum' | 'wrong-type' | 'bad-format' | 'too-large' | 'url-not-a-source';

export interface StepProblem {
  reason: StepProblemReason;
  /** the parameter concerned, if any */
  param?: string;
  /** German, for the repair prompt and the iteration's note */
  message: string;
}

export type StepCheck =
  | { ok: true; params: Record<string, unknown>; droppedParams: string[] }
  | { ok: false; problems: StepProblem[]; droppedParams: string[] };

export const STEP_REJECT_REASONS: readonly (StepProblemReason | 'unknown-param' | 'duplicate' | 'too-many')[] = [
  'unknown-tool', 'denied-tool', 'missing-required', 'not-a-number', 'not-a-boolean', 'not-in-enum', 'wrong-type', 'bad-format', 'too-large', 'url-not-a-source', 'unknown-param', 'duplicate', 'too-many',
];

/**
 * Bounds on one parameter's value: nesting, values and text. A model's
 * answer can nest an array 100,000 deep; anything recursive over it
 * (stepKey, JSON.stringify, the write-back) would overflow the stack. The
 * check below walks iteratively and stops at the first bound, so no
 * answer can make the step check throw (issue 27, item 6).
 */
export const PARAM_BOUNDS = { depth: 8, values: 2_000, chars: 20_000 } as const;

/** True when `value` stays within PARAM_BOUNDS; never recursive, never throws. */
export function withinBounds(value: unknown): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  let values = 0;
  let chars = 0;
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (++values > PARAM_BOUNDS.values) return false;
    if (typeof v === 'string') {
      chars += v.length;
      if (chars > PARAM_BOUNDS.chars) return false;
    } else if (v !== null && typeof v === 'object') {
      if (depth >= PARAM_BOUNDS.depth) return false;
      const children = Array.isArray(v) ? v : Object.entries(v as Record<string, unknown>).flat();
      if (children.length > PARAM_BOUNDS.values) return false;
      for (const c of children) stack.push([c, depth + 1]);
    }
  }
  return true;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/;

function validDate(s: string): boolean {
  const m = DATE.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d;
}

function validDateTime(s: string): boolean {
  return DATE_TIME.test(s) && validDate(s.slice(0, 10)) && Number.isFinite(Date.parse(s));
}

const FORMAT_TEXT = { date: 'ein Datum YYYY-MM-DD', 'date-time': 'ein Zeitpunkt nach ISO 8601 (YYYY-MM-DDTHH:MM:SSZ)', 'date-or-date-time': 'ein Datum YYYY-MM-DD oder ein Zeitpunkt nach ISO 8601' } as const;

function checkParam(p: CatalogParam, value: unknown): { value: unknown } | StepProblem {
  switch (p.type) {
    case 'number': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
      if (!Number.isFinite(n)) return { reason: 'not-a-number', param: p.name, message: `Parameter ${p.name} muss eine Zahl sein` };
      value = n;
      break;
    }
    case 'boolean':
      if (value === 'true') value = true;
      else if (value === 'false') value = false;
      else if (typeof value !== 'boolean') return { reason: 'not-a-boolean', param: p.name, message: `Parameter ${p.name} muss true oder false sein` };
      break;
    case 'string':
      if (typeof value !== 'string') return { reason: 'wrong-type', param: p.name, message: `Parameter ${p.name} muss ein Text sein` };
      break;
    case 'array':
      if (!Array.isArray(value)) return { reason: 'wrong-type', param: p.name, message: `Parameter ${p.name} muss eine Liste sein` };
      break;
    case 'object':
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return { reason: 'wrong-type', param: p.name, message: `Parameter ${p.name} muss ein Objekt sein` };
      break;
  }
  if (p.enum && !p.enum.includes(String(value))) {
    return { reason: 'not-in-enum', param: p.name, message: `Parameter ${p.name} muss einer dieser Werte sein: ${p.enum.join(', ')}` };
  }
  if (p.format && typeof value === 'string') {
    const ok = p.format === 'date' ? validDate(value) : p.format === 'date-time' ? validDateTime(value) : validDate(value) || validDateTime(value);
    if (!ok) return { reason: 'bad-format', param: p.name, message: `Parameter ${p.name} muss ${FORMAT_TEXT[p.format]} sein` };
  }
  return { value };
}

/**
 * Checks one step against the catalog of the configured generation (only
 * the tools offered to this run: the agent's denied ones are in `denied`).
 * On success `params` is what to write: known parameters only, numbers and
 * booleans coerced as the executor would.
 */
export function validateStep(
  offered: ReadonlyMap<string, CatalogTool>,
  denied: ReadonlySet<string>,
  toolName: string,
  params: Record<string, unknown>,
  /** the run's web sources (issue 31): when set, a `url` parameter must be one of them */
  sourceUrls: ReadonlySet<string> | null = null,
): StepCheck {
  if (denied.has(toolName)) return { ok: false, droppedParams: [], problems: [{ reason: 'denied-tool', message: `Werkzeug ${toolName} ist für diesen Agenten nicht erlaubt` }] };
  const tool = offered.get(toolName);
  if (!tool) return { ok: false, droppedParams: [], problems: [{ reason: 'unknown-tool', message: `Werkzeug ${toolName} gibt es nicht; erlaubt sind nur die aufgeführten` }] };
  const known = new Set(tool.params.map((p) => p.name));
  const droppedParams = Object.keys(params).filter((k) => !known.has(k));
  const out: Record<string, unknown> = {};
  const problems: StepProblem[] = [];
  for (const p of tool.params) {
    const value = Object.hasOwn(params, p.name) ? params[p.name] : undefined;
    if (value === undefined || value === null) {
      if (p.required) problems.push({ reason: 'missing-required', param: p.name, message: `Pflichtparameter ${p.name} fehlt` });
      continue;
    }
    if (!withinBounds(value)) {
      problems.push({ reason: 'too-large', param: p.name, message: `Parameter ${p.name} ist zu groß oder zu tief verschachtelt (höchstens ${PARAM_BOUNDS.depth} Ebenen, ${PARAM_BOUNDS.values} Werte, ${PARAM_BOUNDS.chars} Zeichen)` });
      continue;
    }
    const r = checkParam(p, value);
    if ('reason' in r) problems.push(r);
    else if (sourceUrls && p.name === 'url' && typeof r.value === 'string' && !sourceUrls.has(r.value)) {
      // the model may only link what the run's research found (upstream's "Verwende nur URLs die oben stehen")
      problems.push({ reason: 'url-not-a-source', param: p.name, message: `URL ${r.value.slice(0, 200)} steht nicht unter den Webquellen dieses Durchlaufs; verwende nur URLs, die dort stehen` });
    } else out[p.name] = r.value;
  }
  return problems.length ? { ok: false, problems, droppedParams } : { ok: true, params: out, droppedParams };
}

/** A step's identity for "identical steps are written once": tool and params, keys sorted. */
export function stepKey(toolName: string, params: Record<string, unknown>): string {
  const canon = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canon)
    : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])]))
    : v;
  return `${toolName}\u0000${JSON.stringify(canon(params))}`;
}
