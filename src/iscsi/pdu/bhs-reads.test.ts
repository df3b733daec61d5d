// Guard: BHS fields are read through the PDU codecs (src/iscsi/pdu/) only, never by offset
// elsewhere (issue 16: each structure is decoded in one place). Writing raw bytes to craft a
// malformed PDU (the fuzz tests) is allowed; reading a field by its offset is not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const OWNER = join('src', 'iscsi', 'pdu');

/** `u32(bhs, 40)`, `u16(p.bhs, 2)`, `bhs[1] & 0x01`: a field read by offset. */
const READS = [/\bu(?:16|32)\(\s*[\w.]*\bbhs\s*,/i, /\b[\w.]*\bbhs\[\d+\](?!\s*(?:[|&^]?=)(?!=))/i];

/** `const b = pdu.bhs;` names the BHS `b`: reads through that alias count too. */
const ALIAS = /\bconst (\w+) = [\w.]*\bbhs;/g;

export function bhsReads(text: string): string[] {
  const aliases = [...text.matchAll(ALIAS)].map((m) => m[1]);
  const reads = [
    ...READS,
    ...aliases.flatMap((a) => [
      new RegExp(`\\bu(?:16|32)\\(\\s*${a}\\s*,`),
      new RegExp(`\\b${a}\\[\\d+\\](?!\\s*(?:[|&^]?=)(?!=))`),
    ]),
  ];
  return text.split('\n').filter((line) => reads.some((re) => re.test(line)) && !line.trimStart().startsWith('//'));
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : tsFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

test('the guard sees a field read by offset, and not a byte written to craft a PDU', () => {
  assert.deepEqual(
    bhsReads(
      'const ttt = u32(bhs, 20);\nconst s = p.bhs[1] & 0x01;\nbhs[5] = 0xff;\nbhs[0] |= 0x40;\nif (bhs[0] === 1) x();',
    ),
    ['const ttt = u32(bhs, 20);', 'const s = p.bhs[1] & 0x01;', 'if (bhs[0] === 1) x();'],
  );
  assert.deepEqual(bhsReads('const b = pdu.bhs;\nconst sn = u32(b, 24);\nif (b[1] & 1) y();\nb[2] = 0;'), [
    'const sn = u32(b, 24);',
    'if (b[1] & 1) y();',
  ]);
});

test('no file outside src/iscsi/pdu/ reads a BHS field by offset', () => {
  const found: string[] = [];
  for (const dir of ['src', 'test', 'bench']) {
    for (const f of tsFiles(join(ROOT, dir))) {
      const rel = relative(ROOT, f);
      if (rel.startsWith(OWNER)) continue;
      for (const line of bhsReads(readFileSync(f, 'utf8'))) found.push(`${rel}: ${line.trim()}`);
    }
  }
  assert.deepEqual(found, [], 'read these fields through the codec in src/iscsi/pdu/');
});
