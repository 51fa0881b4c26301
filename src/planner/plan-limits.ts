// One set of limits for every plan, whichever planner mode made it (issue
// 27, item 5): before, text mode refused plans of more than 20 steps while
// native tool calls had no bound at all (a model answering 2,000 valid calls
// a round got 10,000 steps into one iteration, and the conversation re-sent
// each round reached 1.7 MB). Pure data; the parser, the tool-call loop and
// the resolvers read it.

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
} as const;

/** `text` cut to `max` characters, marked with an ellipsis when cut. */
export const cutText = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max)}…` : text);
