// The tools the seed's webapp (v0.4) executes: names, modules, parameters,
// types, required flags and enums exactly as its executors declare them
// (../shared/contract/tools-v04.json is the fact; test/catalog.test.ts
// compares this table with it field by field). Descriptions are ours, in
// German, as the prompt shows them. Data only.

import type { CatalogTool } from './types.js';

export const V04_TOOLS: readonly CatalogTool[] = [
  {
    name: 'create_task', module: 'todo', description: 'Legt eine Aufgabe an, auf Wunsch mit Fälligkeit und Priorität',
    params: [
      { name: 'title', type: 'string', required: true },
      { name: 'dueDate', type: 'string', required: false, format: 'date' },
      { name: 'priority', type: 'string', required: false, enum: ['low', 'medium', 'high'] },
      { name: 'description', type: 'string', required: false },
    ],
  },
  {
    name: 'complete_task', module: 'todo', description: 'Hakt eine Aufgabe ab, die über ihre ID bestimmt ist',
    params: [
      { name: 'taskId', type: 'string', required: true },
    ],
  },
  {
    name: 'complete_tasks_by_title', module: 'todo', description: 'Hakt alle offenen Aufgaben ab, deren Titel den Text enthält',
    params: [
      { name: 'titleMatch', type: 'string', required: true },
    ],
  },
  {
    name: 'create_event', module: 'calendar', description: 'Trägt einen Termin in den Standardkalender ein',
    params: [
      { name: 'title', type: 'string', required: true },
      { name: 'startTime', type: 'string', required: true, format: 'date-time' },
      { name: 'endTime', type: 'string', required: true, format: 'date-time' },
      { name: 'isAllDay', type: 'boolean', required: false },
      { name: 'location', type: 'string', required: false },
      { name: 'description', type: 'string', required: false },
    ],
  },
  {
    name: 'create_place', module: 'places', description: 'Speichert einen neuen Ort mit Koordinaten',
    params: [
      { name: 'name', type: 'string', required: true },
      { name: 'latitude', type: 'number', required: true },
      { name: 'longitude', type: 'number', required: true },
      { name: 'category', type: 'string', required: false, enum: ['home', 'work', 'food', 'shopping', 'sport', 'culture', 'nature', 'transport', 'health', 'education', 'nightlife', 'other'] },
      { name: 'address', type: 'string', required: false },
    ],
  },
  {
    name: 'record_visit', module: 'places', description: 'Hält einen Besuch an einem gespeicherten Ort fest',
    params: [
      { name: 'placeId', type: 'string', required: true },
    ],
  },
  {
    name: 'undo_last_drink', module: 'drink', description: 'Nimmt das zuletzt erfasste Getränk zurück',
    params: [],
  },
];
