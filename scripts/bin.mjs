#!/usr/bin/env node
// The safe-scp bin: runs the CLI bundled into one file beside it (safe-scp.cjs, made by scripts/bundle.mjs).
import module, { createRequire } from 'node:module';

// Node 22.1+ keeps the code it compiled in its own on-disk cache and reuses it on the next run (checked against
// the source and Node's version); on older Node this is absent and every run compiles as usual.
module.enableCompileCache?.();
createRequire(import.meta.url)('./safe-scp.cjs');
