// SQL lives in src/db/ (../shared/STYLE.md: one operation per file in
// db/sql/, as graphile-worker keeps its statements): no module outside it
// sends a statement of its own, by pg's query() or Kysely's sql tag. The
// rest of the daemon calls named functions, so every statement the runner
// sends can be read, reviewed and parameterised in one place.
// Reads the sources only; no database.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { it } from 'node:test';
import { REPO_ROOT } from './harness/repo-root.js';

const SRC = join(REPO_ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

/** Lines that send a statement: `.query(`, `.query<T>(`, or Kysely's `sql\`` / `sql<T>\``. */
function statementLines(text: string): number[] {
  const out: number[] = [];
  text.split('\n').forEach((line, i) => {
    if (/\.query\s*(<[^>]*>)?\s*\(/.test(line) || /\bsql\s*(<[^>]*>)?\s*`/.test(line)) out.push(i + 1);
  });
  return out;
}

it('finds a statement however it is sent (the check itself)', () => {
  assert.deepEqual(statementLines("a\nawait client.query('SELECT 1')\nb"), [2]);
  assert.deepEqual(statementLines('const { rows } = await pool.query<{ n: number }>(`SELECT 1`);'), [1]);
  assert.deepEqual(statementLines('await sql`SELECT 1`.execute(trx);\nawait sql<{ s: string }>`SELECT 2`.execute(trx);'), [1, 2]);
  assert.deepEqual(statementLines("log.info('query done'); // a query( in prose is not one"), []);
});

it('no module outside src/db/ sends SQL of its own', () => {
  const found: string[] = [];
  for (const file of sources(SRC)) {
    const rel = relative(SRC, file);
    if (rel.startsWith(`db${sep}`)) continue;
    for (const line of statementLines(readFileSync(file, 'utf8'))) found.push(`src/${rel}:${line}`);
  }
  assert.deepEqual(found, [], 'move these statements to a function in src/db/sql/');
});
