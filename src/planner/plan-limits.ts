// One set of limits for every plan, whichever planner mode made it (issue
// 27, item 5): before, text mode refused plans of more than 20 steps while
// native tool calls had no bound at all (a model answering 2,000 valid calls
// a round got 10,000 steps into one iteration, and the conversation re-sent
// each round reached 1.7 MB). Pure data; the parser, the tool-call loop and
// the resolvers read it.

import { MAX_INPUTS } from '../mission/mission.js';

/** Native tool calls: at most this many rounds (a request and its calls), as upstream. */
export const MAX_TOOL_ROUNDS = 5;

/**
 * LLM requests one run may make, each with its own attempts: text mode
 * asks once and once more to repair a plan; tool mode asks once per round
 * (a model that cannot call tools falls back to text mode in its first
 * round: at most 3). The worst case of one run counts them all
 * (src/config.ts), so a claim's lease outlasts the slowest legitimate run.
 */
export const asksPerRun = (mode: 'text' | 'tools'): number => (mode === 'tools' ? MAX_TOOL_ROUNDS : 2);

export const PLAN_LIMITS = {
  /** steps in one plan (text mode refuses a longer plan; tool mode refuses further calls) */
  stepsPerPlan: 20,
  /** tool calls answered in one round; the rest are refused and the rounds stop */
  callsPerRound: 20,
  /** tool calls answered in one run, valid or not; then the rounds stop */
  callsPerRun: 60,
  /** characters of one request's messages; a round that would send more is not sent */
  requestChars: 200_000,
  /** characters of one resolved input's text in the prompt (journal, tasks, calendar, … notes and kontext cut shorter) */
  inputChars: 2_000,
  /** inputs of a mission that are read (CONTRACT.md section 14: a grant's scope limit); the rest are left out and logged */
  inputsPerMission: MAX_INPUTS,
  /** characters of all inputs' texts together: with many inputs each is cut to an equal share (inputCharsFor) */
  inputsChars: 120_000,
} as const;

/**
 * The stated length of each input's text for a mission with `inputs`
 * inputs: 2,000 characters up to 60 inputs, then an equal share of
 * 120,000 (468 characters each at 256), so the first request stays well
 * under `requestChars` whatever the inputs hold.
 */
export const inputCharsFor = (inputs: number): number =>
  Math.min(PLAN_LIMITS.inputChars, Math.floor(PLAN_LIMITS.inputsChars / Math.max(1, inputs)));

/** `text` cut to `max` characters, marked with an ellipsis when cut. */
export const cutText = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max)}…` : text);
