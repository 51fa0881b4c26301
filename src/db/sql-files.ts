// Reads sql/: the numbered migrations (tables, columns, indexes, data), the
// definitions (one current text per function, grant, view and trigger) and
// the manifest of the first layout's migrations that the baseline replaces.
// Pure file reading and ordering; never touches a database.
//
// Definitions are applied in kind order (functions, grants, views,
// triggers), by name within a kind, except that a file naming others in a
// `-- requires: views/x.sql, functions/y.sql` line comes after them.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// sql/ at the root of the repository or the image: two levels up from
// src/db/ and dist/db/, one from the bundled dist/main.js (package.json's build).
const here = dirname(fileURLToPath(import.meta.url));
const sqlDirs = [resolve(here, '..', '..', 'sql'), resolve(here, '..', 'sql')];
// by its real path: a linked sql/ (as the tests' transpiled copy has, scripts/lib/test-build.ts) is copied and compared as a directory
const found = sqlDirs.find((d) => existsSync(join(d, 'migrations')));
export const SQL_DIR = found ? realpathSync(found) : sqlDirs[0]!;

/** The definition folders, in the order their kinds are applied. */
export const DEFINITION_KINDS = ['functions', 'grants', 'views', 'triggers'] as const;

export class MigrationError extends Error {
  override name = 'MigrationError';
}

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface Definition {
  /** path under sql/, e.g. `functions/claim.sql` */
  name: string;
  /** the file's text, placeholders not yet filled in */
  text: string;
  requires: string[];
}

export interface Legacy {
  /** the version the baseline migration has */
  baseline: number;
  files: { version: number; name: string; checksum: string }[];
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export function loadMigrations(dir = SQL_DIR): Migration[] {
  const mdir = join(dir, 'migrations');
  const files = readdirSync(mdir).filter((f) => /^\d{3,}_[\w-]+\.sql$/.test(f)).sort();
  const seen = new Set<number>();
  return files.map((file) => {
    const version = Number.parseInt(file.split('_')[0]!, 10);
    if (seen.has(version)) throw new MigrationError(`two files in ${mdir} share migration number ${version}`);
    seen.add(version);
    const sql = readFileSync(join(mdir, file), 'utf8');
    return { version, name: file, sql, checksum: sha256(sql) };
  });
}

export function loadLegacy(dir = SQL_DIR): Legacy | null {
  const file = join(dir, 'migrations', 'legacy.json');
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as Legacy;
}

export function loadDefinitions(dir = SQL_DIR): Definition[] {
  const defs: Definition[] = [];
  for (const kind of DEFINITION_KINDS) {
    const kdir = join(dir, kind);
    if (!existsSync(kdir)) continue;
    for (const file of readdirSync(kdir).filter((f) => f.endsWith('.sql')).sort()) {
      const text = readFileSync(join(kdir, file), 'utf8');
      const requires = [...text.matchAll(/^--\s*requires:\s*(.+)$/gm)].flatMap((m) =>
        m[1]!.split(',').map((s) => s.trim()).filter(Boolean),
      );
      defs.push({ name: `${kind}/${file}`, text, requires });
    }
  }
  return orderDefinitions(defs);
}

/** Stable topological order: kind order and name, each file after what it requires. */
export function orderDefinitions(defs: Definition[]): Definition[] {
  const byName = new Map(defs.map((d) => [d.name, d]));
  for (const d of defs) {
    for (const r of d.requires) if (!byName.has(r)) throw new MigrationError(`sql/${d.name} requires ${r}, which does not exist`);
  }
  const out: Definition[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (d: Definition, path: string[]): void => {
    const s = state.get(d.name);
    if (s === 'done') return;
    if (s === 'visiting') throw new MigrationError(`sql definitions require each other in a circle: ${[...path, d.name].join(' -> ')}`);
    state.set(d.name, 'visiting');
    for (const r of d.requires) visit(byName.get(r)!, [...path, d.name]);
    state.set(d.name, 'done');
    out.push(d);
  };
  for (const d of defs) visit(d, []);
  return out;
}

/** Files to apply when `changed` did: those, and every file that requires one of them, in order. */
export function withDependents(ordered: Definition[], changed: Set<string>): Definition[] {
  const hit = new Set(changed);
  for (const d of ordered) if (d.requires.some((r) => hit.has(r))) hit.add(d.name);
  return ordered.filter((d) => hit.has(d.name));
}

/** Fills `${name}` placeholders; an unknown one is an error, never left in the SQL. */
export function fillPlaceholders(def: Definition, values: Record<string, string>): string {
  return def.text.replace(/\$\{(\w+)\}/g, (_, key: string) => {
    const v = values[key];
    if (v === undefined) throw new MigrationError(`sql/${def.name} uses the placeholder \${${key}}, which migrate does not know`);
    return v;
  });
}

/** An object a definition file creates, as the catalog check needs it. */
export type DefinedObject =
  | { kind: 'function' | 'view'; name: string }
  | { kind: 'trigger'; name: string; on: string };

/**
 * The functions, views and triggers a filled-in definition creates: what
 * migrate and the daemon's start check look for in the catalog, so an
 * object a migration dropped (CASCADE) is pending although its file's
 * checksum is recorded (issue 27, item 7).
 */
export function definedObjects(sql: string): DefinedObject[] {
  const out: DefinedObject[] = [];
  const code = sql.replace(/--[^\n]*/g, '');
  for (const m of code.matchAll(/CREATE\s+(?:OR\s+REPLACE\s+)?(FUNCTION|VIEW)\s+mana_ai\.(\w+)/gi)) {
    out.push({ kind: m[1]!.toLowerCase() as 'function' | 'view', name: m[2]! });
  }
  for (const m of code.matchAll(/CREATE\s+(?:OR\s+REPLACE\s+)?TRIGGER\s+(\w+)\s+(?:AFTER|BEFORE|INSTEAD\s+OF)\s+[\w\s]+?\s+ON\s+([\w."]+)/gi)) {
    out.push({ kind: 'trigger', name: m[1]!, on: m[2]! });
  }
  return out;
}
