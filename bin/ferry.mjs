#!/usr/bin/env node
// Entry point: run the TypeScript CLI through tsx's loader (Node 20 cannot strip types).
import { register } from 'tsx/esm/api';
process.env.UV_THREADPOOL_SIZE ??= '16';
register();
await import('../src/cli/main.ts');
