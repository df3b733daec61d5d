// Keeps "no SQL outside the catalog": string literals under src/ (but not src/catalog/) must not hold SQL,
// and only the catalog may build queries or open the database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const SRC = join(import.meta.dirname, '..');
const CATALOG = import.meta.dirname;

/** SQL shapes, upper case as SQL is written (so "select a drive from …" in prose does not count). */
const SQL_IN_STRINGS = [
  /\bSELECT\s[\s\S]*?\bFROM\b/,
  /\bINSERT\s+INTO\b/,
  /\bUPDATE\s+["\w]+\s+SET\b/,
  /\bDELETE\s+FROM\b/,
  /\bCREATE\s+(TABLE|INDEX|UNIQUE\s+INDEX|TRIGGER|VIEW)\b/,
  /\bALTER\s+TABLE\b/,
  /\bDROP\s+TABLE\b/,
];

/** Query building and database access outside string literals. */
const SQL_IN_CODE = [
  /\.(selectFrom|insertInto|updateTable|deleteFrom|replaceInto|mergeInto)\(\s*""/, // a table name: kysely
  /from\s+['"]better-sqlite3['"]/,
  /\bsql(\.raw)?\s*`/,
];

function walk(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (p === CATALOG) continue;
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|mts|js|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

/** Split source into string literals (quotes and template text) and the code between; comments dropped. */
function lex(text: string): { strings: string[]; code: string } {
  const strings: string[] = [];
  let code = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '/' && text[i + 1] === '/') {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else if (c === '"' || c === "'" || c === '`') {
      let s = '';
      let j = i + 1;
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\\') j++;
        else if (c !== '`' && text[j] === '\n') break;
        s += text[j] ?? '';
        j++;
      }
      strings.push(s);
      code += c === '`' ? '`' : '""'; // keep a backtick so a sql`…` tag still shows
      i = j + 1;
    } else {
      code += c;
      i++;
    }
  }
  return { strings, code };
}

test('lex tells strings from code and comments', () => {
  const { strings, code } = lex(`const a = 'SELECT x FROM t'; // UPDATE t SET\nconst b = sql\`DELETE FROM t\`;`);
  assert.deepEqual(strings, ['SELECT x FROM t', 'DELETE FROM t']);
  assert.match(code, /sql`/);
  assert.match(lex(`db.selectFrom('jobs')`).code, SQL_IN_CODE[0]);
  assert.doesNotMatch(lex('await this.mergeInto(pred, s)').code, SQL_IN_CODE[0]);
  const sqlish = (s: string) => SQL_IN_STRINGS.some((r) => r.test(s));
  assert.ok(sqlish('SELECT id FROM jobs WHERE state = ?') && sqlish('UPDATE jobs SET state = ?'));
  assert.ok(!sqlish('fixed blocks: MODE SELECT block length') && !sqlish('select a drive from the library'));
  assert.doesNotMatch(code, /UPDATE/);
});

test('no SQL outside src/catalog/', () => {
  const found: string[] = [];
  for (const file of walk(SRC, [])) {
    const { strings, code } = lex(readFileSync(file, 'utf8'));
    const where = relative(join(SRC, '..'), file).split(sep).join('/');
    for (const s of strings) {
      const re = SQL_IN_STRINGS.find((r) => r.test(s));
      if (re) found.push(`${where}: string ${JSON.stringify(s.slice(0, 80))} looks like SQL (${re})`);
    }
    for (const re of SQL_IN_CODE) if (re.test(code)) found.push(`${where}: ${re} (queries belong in src/catalog/)`);
  }
  assert.deepEqual(found, [], 'move these into a module under src/catalog/queries/');
});
