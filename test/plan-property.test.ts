// Property (issue 19): over random plans for both webapp generations,
// valid, missing, mistyped, unknown tools and parameters, wrong enums,
// duplicates, every step the runner writes passes the webapp executor's
// check, written here from ../shared/contract/TOOLS.md (not the project's
// validator), and every valid step of the answer is written, once, in order.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { readContractFile } from './harness/contract.js';
import { catalogFor, type WebappGeneration } from '../src/planner/catalog/index.js';
import { checkPlan, offerOf } from '../src/planner/check-plan.js';
import { parsePlan } from '../src/planner/parse-plan.js';

interface FactParam { name: string; type: 'string' | 'number' | 'boolean' | 'array' | 'object'; required: boolean; enum?: string[]; note?: string }
interface FactTool { name: string; params: FactParam[] }
const facts = (g: WebappGeneration): FactTool[] =>
  (JSON.parse(readContractFile(g === 'head' ? 'tools-head.json' : 'tools-v04.json')) as { tools: FactTool[] }).tools;

/** TOOLS.md, "How the executor validates a call": null when it accepts, else its message. */
function executorRefuses(tools: FactTool[], name: string, params: Record<string, unknown>): string | null {
  const tool = tools.find((t) => t.name === name);
  if (!tool) return `Unknown tool: ${name}`;
  for (const p of tool.params) if (p.required && (params[p.name] === undefined || params[p.name] === null)) return `Missing required parameter: ${p.name}`;
  for (const p of tool.params) {
    const v = params[p.name];
    if (v === undefined || v === null) continue;
    if (p.type === 'number' && typeof v !== 'number' && Number.isNaN(Number(v))) return `Parameter ${p.name} must be a number`;
    if (p.enum && !p.enum.includes(String(v))) return `Parameter ${p.name} must be one of: ${p.enum.join(', ')}`;
  }
  return null;
}

const dateArb = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T00:00:00Z'), noInvalidDate: true });

function validValue(p: FactParam): fc.Arbitrary<unknown> {
  if (p.enum) return fc.constantFrom(...p.enum);
  switch (p.type) {
    case 'number': return fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.double({ min: -90, max: 90, noNaN: true, noDefaultInfinity: true }));
    case 'boolean': return fc.boolean();
    case 'array': return fc.constant([{ title: 'x', quantity: 1, unitPrice: 2 }]);
    case 'object': return fc.constant({ text: 'x' });
    default:
      if (p.note && /^ISO 8601 date-time|^ISO date-time/.test(p.note)) return dateArb.map((d) => d.toISOString());
      if (p.note && /YYYY-MM-DD/.test(p.note)) return dateArb.map((d) => d.toISOString().slice(0, 10));
      return fc.string({ minLength: 0, maxLength: 12 });
  }
}

type Gen = { step: { toolName: string; params: Record<string, unknown> }; valid: boolean; expect?: Record<string, unknown> };

function stepArb(tools: FactTool[]): fc.Arbitrary<Gen> {
  const validStep = fc.constantFrom(...tools).chain((t) =>
    fc.tuple(...t.params.map((p) => fc.tuple(fc.constant(p), p.required ? fc.constant(true) : fc.boolean(), validValue(p)))).map((entries) => {
      const params: Record<string, unknown> = {};
      for (const [p, present, value] of entries) if (present) params[p.name] = value;
      return { tool: t, params };
    }),
  );
  return fc.oneof(
    { weight: 4, arbitrary: validStep.map(({ tool, params }): Gen => ({ step: { toolName: tool.name, params }, valid: true, expect: params })) },
    // an unknown parameter on a valid step: dropped, the step written
    { weight: 1, arbitrary: validStep.map(({ tool, params }): Gen => ({ step: { toolName: tool.name, params: { ...params, notAParam: 1 } }, valid: true, expect: params })) },
    { weight: 1, arbitrary: fc.constantFrom('delete_everything', 'visit_place', 'undo_drink', 'create-task').map((n): Gen => ({ step: { toolName: n, params: {} }, valid: tools.some((t) => t.name === n) && tools.find((t) => t.name === n)!.params.every((p) => !p.required), expect: {} })) },
    {
      weight: 2,
      arbitrary: validStep.filter(({ tool }) => tool.params.some((p) => p.required)).chain(({ tool, params }) =>
        fc.constantFrom(...tool.params.filter((p) => p.required)).chain((p) =>
          fc.constantFrom<Gen>(
            { step: { toolName: tool.name, params: { ...params, [p.name]: undefined } }, valid: false },
            { step: { toolName: tool.name, params: { ...params, [p.name]: null } }, valid: false },
            { step: { toolName: tool.name, params: { ...params, [p.name]: p.type === 'string' ? 42 : p.type === 'number' ? 'viele' : p.type === 'boolean' ? 'ja' : 'x' } }, valid: false },
            ...(p.enum ? [{ step: { toolName: tool.name, params: { ...params, [p.name]: `${p.enum[0]}-nicht` } }, valid: false }] : []),
          ),
        ),
      ),
    },
  );
}

for (const g of ['v0.4', 'head'] as const) {
  it(`${g}: every written step passes the executor's check; every valid step is written once, in order`, () => {
    const tools = facts(g);
    const offer = offerOf(catalogFor(g), []);
    fc.assert(
      fc.property(fc.array(stepArb(tools), { maxLength: 8 }).chain((steps) =>
        // duplicates: some valid steps again
        fc.subarray(steps.filter((s) => s.valid)).map((dups) => [...steps, ...dups])), (gens) => {
        const answer = '```json\n' + JSON.stringify({ summary: 'Plan', steps: gens.map((x) => ({ summary: 'Schritt', ...x.step, rationale: 'weil' })) }) + '\n```';
        const parsed = parsePlan(answer);
        assert.ok(parsed.ok, 'structure is always fine here');
        const written = checkPlan(parsed.plan, offer).valid;
        for (const s of written) assert.equal(executorRefuses(tools, s.toolName, s.params), null, `${s.toolName} ${JSON.stringify(s.params)}`);
        // what must be written: each valid step's known params (JSON-normalised), first occurrences
        const expected: string[] = [];
        for (const x of gens) {
          if (!x.valid) continue;
          const key = JSON.stringify([x.step.toolName, JSON.parse(JSON.stringify(x.expect))]);
          if (!expected.includes(key)) expected.push(key);
        }
        const got = written.map((s) => JSON.stringify([s.toolName, s.params]));
        assert.deepEqual(got.map((k) => JSON.parse(k)), expected.map((k) => JSON.parse(k)));
      }),
      { numRuns: 300, seed: 19 },
    );
  });
}
