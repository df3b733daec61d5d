#!/usr/bin/env -S node --max-semi-space-size=64
// Entry point: run the TypeScript CLI through tsx's loader (Node 20 cannot strip types).
// --max-semi-space-size=64: a larger young generation. The I/O paths churn through 64 KiB
// socket chunks, and GC scavenges halved write throughput without it (docs/benchmarks.md).
// Run as `node --max-semi-space-size=64 bin/ferry.mjs …` when not executed directly.
import { register } from 'tsx/esm/api';
process.env.UV_THREADPOOL_SIZE ??= '16';
register();
await import('../src/cli/main.ts');
