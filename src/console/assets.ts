import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The console's static files, read once at start: htmx, its SSE extension and uPlot from their
 * installed npm packages (nothing comes from a CDN), and the console's own stylesheet and script.
 */

export interface Asset {
  type: string;
  body: Buffer;
}

const require = createRequire(import.meta.url);
const own = (name: string) => fileURLToPath(new URL(`./static/${name}`, import.meta.url));

const FILES: Record<string, [path: () => string, type: string]> = {
  'htmx.min.js': [() => require.resolve('htmx.org/dist/htmx.min.js'), 'text/javascript'],
  'sse.min.js': [() => require.resolve('htmx-ext-sse/dist/sse.min.js'), 'text/javascript'],
  'uPlot.iife.min.js': [() => require.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript'],
  'uPlot.min.css': [() => require.resolve('uplot/dist/uPlot.min.css'), 'text/css'],
  'console.css': [() => own('console.css'), 'text/css'],
  'console.js': [() => own('console.js'), 'text/javascript'],
};

export function loadAssets(): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const [name, [path, type]] of Object.entries(FILES))
    out.set(name, { type: `${type}; charset=utf-8`, body: readFileSync(path()) });
  return out;
}
