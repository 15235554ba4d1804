#!/bin/sh
":" //; unset NODE_EXTRA_CA_CERTS; exec node "$0" "$@"
// Run as a program, the line above is shell: safe-scp opens no TLS connection, so it drops NODE_EXTRA_CA_CERTS
// before starting node, which otherwise parses that bundle at every start, before any JavaScript runs (about
// 100 ms for a distribution's full CA list on a 2-core runner). Run by node (`node safe-scp.mjs`), the line is an
// unused string and a comment.
// The safe-scp bin: runs the bundle beside it (safe-scp.cjs) with the V8 code cache made at build time
// (safe-scp.cjs.cache, scripts/code-cache.mjs), so the functions a run needs start as ready bytecode instead of
// being parsed and compiled on first call: about 70 ms of each run on a 2-core runner (README, Performance).
// V8 checks the cache against the source and its own version and flags; a stale or missing cache only means
// the ordinary compile.
import fs from 'node:fs';
import { Module, createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';

// V8 optimises a function after it has run a while (its "interrupt budget"); each TurboFan compile then costs
// milliseconds of a second core. A copy's hot code is mostly native (encryption, file and socket I/O), so on a
// 2-core runner shared with sshd those compiles cost more than the optimised code saves: measured by
// `npm run bench`, the default budget spent ~0.25 CPU-s on them in a 2000-file tree and ~0.2 s in a 512 MiB
// upload. A budget 37x the default leaves start-up code and short runs in the baseline tiers and still
// optimises what stays hot in long runs. Set before the bundle is compiled: the code cache records V8's flags.
v8.setFlagsFromString('--interrupt-budget=5000000');

const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'safe-scp.cjs');
const cacheFile = `${file}.cache`;
const source = fs.readFileSync(file, 'utf8').replace(/^#!.*/, '');
let cachedData;
try {
  cachedData = fs.readFileSync(cacheFile);
} catch {
  // built without a cache
}
const script = new vm.Script(Module.wrap(source), { filename: file, ...(cachedData ? { cachedData } : {}) });
// Bench only (src/bench/main.ts): whether this Node took the cache (V8 checks its version, flags and the source).
if (process.env.SAFESCP_CODE_CACHE_CHECK) process.stderr.write(`code cache: ${!cachedData ? 'missing' : script.cachedDataRejected ? 'rejected' : 'accepted'}\n`);
const module = { exports: {}, filename: file, id: file };
script.runInThisContext()(module.exports, createRequire(file), module, file, path.dirname(file));

// Build step only (scripts/code-cache.mjs): keep what this run compiled as the cache for later runs.
const out = process.env.SAFESCP_CODE_CACHE_OUT;
if (out) process.on('exit', () => fs.writeFileSync(out, script.createCachedData()));
