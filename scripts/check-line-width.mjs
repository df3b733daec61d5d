#!/usr/bin/env node
// CI: no line of code is wider than Prettier's printWidth (.prettierrc.json), counted in
// characters. Prettier does not break strings, regexes or comments; this catches those.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const width = JSON.parse(readFileSync('.prettierrc.json', 'utf8')).printWidth;
const files = execFileSync('git', ['ls-files', '*.ts', '*.mjs', '*.js'], { encoding: 'utf8' })
  .split('\n')
  .filter(Boolean);
let bad = 0;
for (const f of files) {
  readFileSync(f, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      const n = [...line].length;
      if (n > width) {
        bad++;
        console.error(`${f}:${i + 1}: ${n} characters (at most ${width})`);
      }
    });
}
if (bad) {
  console.error(`${bad} line(s) wider than ${width}: break them (strings with +, long regexes with new RegExp)`);
  process.exit(1);
}
