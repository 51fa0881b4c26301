// The tools the server may propose (CONTRACT.md section 6). The names are
// shared with the webapp's policy; assertToolsMatchPolicy stops the start
// when the two lists drift, and test/tools.test.ts pins this table to the
// contract's.

export interface ToolParam {
  name: string;
  type: 'string';
  required: boolean;
  description: string;
  enum?: readonly string[];
}

export interface ToolSpec {
  name: string;
  module: string;
  description: string;
  params: readonly ToolParam[];
}

export const TOOLS: readonly ToolSpec[] = [
  {
    name: 'create_task', module: 'todo', description: 'Neue Aufgabe anlegen',
    params: [
      { name: 'title', type: 'string', required: true, description: 'Titel der Aufgabe' },
      { name: 'dueDate', type: 'string', required: false, description: 'Fälligkeitsdatum YYYY-MM-DD' },
      { name: 'priority', type: 'string', required: false, description: 'Priorität', enum: ['low', 'medium', 'high'] },
      { name: 'description', type: 'string', required: false, description: 'Beschreibung' },
    ],
  },
  { name: 'complete_task', module: 'todo', description: 'Aufgabe als erledigt markieren', params: [{ name: 'taskId', type: 'string', required: true, description: 'ID der Aufgabe' }] },
  {
    name: 'complete_tasks_by_title', module: 'todo', description: 'Alle Aufgaben erledigen, deren Titel den Text enthält',
    params: [{ name: 'titleSubstring', type: 'string', required: true, description: 'Teil des Titels' }],
  },
  {
    name: 'create_event', module: 'calendar', description: 'Termin anlegen',
    params: [
      { name: 'title', type: 'string', required: true, description: 'Titel des Termins' },
      { name: 'startIso', type: 'string', required: true, description: 'Beginn als ISO-8601' },
      { name: 'endIso', type: 'string', required: false, description: 'Ende als ISO-8601' },
    ],
  },
  {
    name: 'create_place', module: 'places', description: 'Ort anlegen',
    params: [
      { name: 'name', type: 'string', required: true, description: 'Name des Orts' },
      { name: 'category', type: 'string', required: false, description: 'Kategorie' },
    ],
  },
  { name: 'visit_place', module: 'places', description: 'Besuch eines Orts festhalten', params: [{ name: 'placeId', type: 'string', required: true, description: 'ID des Orts' }] },
  { name: 'undo_drink', module: 'drink', description: 'Letztes Getränk zurücknehmen', params: [] },
];

/** The tool names the webapp's policy accepts from the server runner. */
export const WEBAPP_POLICY_TOOL_NAMES: readonly string[] = [
  'create_task', 'complete_task', 'complete_tasks_by_title', 'create_event', 'create_place', 'visit_place', 'undo_drink',
];

export class ToolPolicyMismatchError extends Error {
  override name = 'ToolPolicyMismatchError';
}

export function assertToolsMatchPolicy(tools: readonly ToolSpec[] = TOOLS, policy: readonly string[] = WEBAPP_POLICY_TOOL_NAMES): void {
  const ours = new Set(tools.map((t) => t.name));
  const theirs = new Set(policy);
  const onlyOurs = [...ours].filter((n) => !theirs.has(n));
  const onlyTheirs = [...theirs].filter((n) => !ours.has(n));
  if (onlyOurs.length || onlyTheirs.length || ours.size !== tools.length) {
    throw new ToolPolicyMismatchError(
      `planner tools and the webapp policy differ (only in planner: ${onlyOurs.join(', ') || '-'}; only in policy: ${onlyTheirs.join(', ') || '-'}); ` +
        'the webapp would reject these proposals. Update src/planner/tools.ts together with the webapp policy.',
    );
  }
}

export const TOOL_NAMES: ReadonlySet<string> = new Set(TOOLS.map((t) => t.name));
