// The offered tools as OpenAI function specs for the native tool-call mode
// (CONTRACT.md section 11), from the same catalog the prompt and the
// validator read. Every spec gains `schritt`: a German sentence saying what
// the step does, which becomes the step's summary and never reaches the
// executor (the validator drops parameters it does not know). Pure.

import type { CatalogParam, CatalogTool } from './catalog/index.js';

export const STEP_SENTENCE_PARAM = 'schritt';

const FORMAT_NOTE = { date: 'Datum YYYY-MM-DD', 'date-time': 'Zeitpunkt nach ISO 8601', 'date-or-date-time': 'Datum YYYY-MM-DD oder Zeitpunkt nach ISO 8601' } as const;

function property(p: CatalogParam): Record<string, unknown> {
  return {
    type: p.type,
    description: [p.description, p.format ? FORMAT_NOTE[p.format] : null].filter(Boolean).join('; ') || p.name,
    ...(p.enum ? { enum: [...p.enum] } : {}),
    ...(p.type === 'array' ? { items: {} } : {}),
  };
}

export function functionSpecs(tools: readonly CatalogTool[]): unknown[] {
  return tools.map((t) => ({
    type: 'function',
    function: {
      name: t.name,
      description: t.description,
      parameters: {
        type: 'object',
        properties: {
          ...Object.fromEntries(t.params.map((p) => [p.name, property(p)])),
          [STEP_SENTENCE_PARAM]: { type: 'string', description: 'ein verständlicher deutscher Satz, was dieser Schritt tut' },
        },
        required: t.params.filter((p) => p.required).map((p) => p.name),
      },
    },
  }));
}
