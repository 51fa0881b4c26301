// The project's tool catalogs against the facts of the webapp's executors
// (../shared/contract/tools-*.json, copied to test/fixtures/contract), field by field: a drift fails CI, not
// a user. And the step validator against the executor's rules (TOOLS.md),
// including the five cases the seed's server list had drifted on.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readContractFile } from './harness/contract.js';
import { catalogFor, type WebappGeneration } from '../src/planner/catalog/index.js';
import { checkPlan, describeProblems, leftOutNote, offerOf, repairRequest } from '../src/planner/check-plan.js';
import { validateStep } from '../src/planner/validate-step.js';
import { functionSpecs } from '../src/planner/tool-specs.js';
import { buildMessages } from '../src/planner/prompt.js';

interface FactParam { name: string; type: string; required: boolean; enum?: string[] }
interface FactTool { name: string; module: string; params: FactParam[] }
const facts = (g: WebappGeneration): FactTool[] =>
  (JSON.parse(readContractFile(g === 'head' ? 'tools-head.json' : 'tools-v04.json')) as { tools: FactTool[] }).tools;

describe('tool catalogs', () => {
  for (const g of ['v0.4', 'head'] as const) {
    it(`${g}: exactly the executor's tools, modules, parameters, types, required flags and enums, in order`, () => {
      const ours = catalogFor(g).map((t) => ({
        name: t.name, module: t.module,
        params: t.params.map((p) => ({ name: p.name, type: p.type, required: p.required, ...(p.enum ? { enum: [...p.enum] } : {}) })),
      }));
      const theirs = facts(g).map((t) => ({
        name: t.name, module: t.module,
        params: t.params.map((p) => ({ name: p.name, type: p.type, required: p.required, ...(p.enum ? { enum: p.enum } : {}) })),
      }));
      assert.deepEqual(ours, theirs);
      for (const t of catalogFor(g)) assert.ok(t.description.length >= 10, `${t.name} has a description of its own`);
      // issue 27: every parameter has a short German description, in the prompt and in the tool specs
      for (const t of catalogFor(g)) for (const p of t.params) assert.ok(p.description && p.description.length >= 3 && p.description.length <= 220, `${t.name}.${p.name} has a description`);
    });
  }

  it('v0.4 knows none of the seed server\'s drifted names', () => {
    const names = new Set(catalogFor('v0.4').map((t) => t.name));
    for (const n of ['visit_place', 'undo_drink']) assert.ok(!names.has(n), n);
    for (const n of ['record_visit', 'undo_last_drink']) assert.ok(names.has(n), n);
  });
});

describe('step validator', () => {
  const v04 = catalogFor('v0.4');
  const offer = offerOf(v04, []);
  const check = (tool: string, params: Record<string, unknown>) => validateStep(offer.offered, offer.denied, tool, params);
  const reasons = (tool: string, params: Record<string, unknown>) => {
    const r = check(tool, params);
    return r.ok ? [] : r.problems.map((p) => `${p.reason}${p.param ? `:${p.param}` : ''}`);
  };

  it('the five seed-drift forms are refused with the problem named; the executor\'s forms pass', () => {
    assert.deepEqual(reasons('complete_tasks_by_title', { titleSubstring: 'Milch' }), ['missing-required:titleMatch']);
    assert.deepEqual(reasons('create_event', { title: 'Zahnarzt', startIso: '2026-05-04T09:00:00Z' }), ['missing-required:startTime', 'missing-required:endTime']);
    assert.deepEqual(reasons('create_place', { name: 'Café' }), ['missing-required:latitude', 'missing-required:longitude']);
    assert.deepEqual(reasons('visit_place', { placeId: 'p1' }), ['unknown-tool']);
    assert.deepEqual(reasons('undo_drink', {}), ['unknown-tool']);
    assert.ok(check('complete_tasks_by_title', { titleMatch: 'Milch' }).ok);
    assert.ok(check('create_event', { title: 'Zahnarzt', startTime: '2026-05-04T09:00:00Z', endTime: '2026-05-04T10:00:00Z' }).ok);
    assert.ok(check('create_place', { name: 'Café', latitude: 52.52, longitude: '13.405' }).ok);
    assert.ok(check('record_visit', { placeId: 'p1' }).ok);
    assert.ok(check('undo_last_drink', {}).ok);
  });

  it('coerces as the executor does, is stricter where it is lax, drops unknown parameters', () => {
    const place = check('create_place', { name: 'Café', latitude: '52.5', longitude: 13, extra: 1 });
    assert.deepEqual(place, { ok: true, params: { name: 'Café', latitude: 52.5, longitude: 13 }, droppedParams: ['extra'] });
    const ev = check('create_event', { title: 'x', startTime: '2026-05-04T09:00:00Z', endTime: '2026-05-04T10:00:00+02:00', isAllDay: 'true' });
    assert.ok(ev.ok && ev.params['isAllDay'] === true);
    assert.deepEqual(reasons('create_event', { title: 'x', startTime: '4. Mai', endTime: '2026-05-04T10:00:00Z', isAllDay: 'ja' }), ['bad-format:startTime', 'not-a-boolean:isAllDay']);
    assert.deepEqual(reasons('create_task', { title: 42 }), ['wrong-type:title']);
    assert.deepEqual(reasons('create_task', { title: 'x', dueDate: '2026-02-30' }), ['bad-format:dueDate']);
    assert.deepEqual(reasons('create_task', { title: 'x', priority: 'urgent' }), ['not-in-enum:priority']);
    assert.deepEqual(reasons('create_task', { title: null }), ['missing-required:title']);
    assert.ok(check('create_task', { title: '' }).ok, 'an empty string counts as present, as for the executor');
    assert.deepEqual(reasons('create_place', { name: 'x', latitude: 'north', longitude: 1 }), ['not-a-number:latitude']);
  });

  it('a plan: valid steps kept once each, invalid ones named for the repair and noted for the user', () => {
    const plan = {
      summary: 'Plan',
      steps: [
        { summary: 'a', toolName: 'create_task', params: { title: 'Einkaufen' }, rationale: 'r' },
        { summary: 'b', toolName: 'create_event', params: { title: 'x', startIso: '2026-05-04T09:00:00Z' }, rationale: 'r' },
        { summary: 'a2', toolName: 'create_task', params: { title: 'Einkaufen' }, rationale: 'r2' },
        { summary: 'c', toolName: 'undo_drink', params: {}, rationale: 'r' },
      ],
    };
    const c = checkPlan(plan, offer);
    assert.deepEqual(c.valid.map((s) => s.toolName), ['create_task']);
    assert.equal(c.duplicates, 1);
    assert.deepEqual(describeProblems(c.invalid), [
      'Schritt 2, create_event: Pflichtparameter startTime fehlt',
      'Schritt 2, create_event: Pflichtparameter endTime fehlt',
      'Schritt 4, undo_drink: Werkzeug undo_drink gibt es nicht; erlaubt sind nur die aufgeführten',
    ]);
    assert.match(repairRequest(c.invalid), /Schritt 2, create_event: Pflichtparameter startTime fehlt/);
    assert.match(leftOutNote(c.invalid), /2 Vorschläge wurden weggelassen.*create_event, undo_drink/);
  });
});

describe('parameter descriptions reach the model', () => {
  it('the prompt and the native tool specs say what a parameter is (taskId: an existing task, never invented)', () => {
    const tools = catalogFor('head');
    const specs = functionSpecs(tools) as { function: { name: string; parameters: { properties: Record<string, { description: string }> } } }[];
    const complete = specs.find((s) => s.function.name === 'complete_task')!;
    assert.match(complete.function.parameters.properties['taskId']!.description, /ID einer bestehenden Aufgabe \(nie erfinden\)/);
    for (const s of specs) for (const [name, p] of Object.entries(s.function.parameters.properties)) assert.ok(p.description.length >= 3 && p.description !== name, `${s.function.name}.${name}`);
    const prompt = buildMessages({ id: 'm', title: 't', objective: 'o', conceptMarkdown: '', inputs: [], cadence: { kind: 'manual' }, state: 'active', iterations: [] } as never, [], tools, new Date())[0]!.content;
    assert.match(prompt, /taskId \(Pflicht\): Text \(ID einer bestehenden Aufgabe \(nie erfinden\)\)/);
  });
});
