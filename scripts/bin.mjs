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
import vm from 'node:vm';

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
const module = { exports: {}, filename: file, id: file };
script.runInThisContext()(module.exports, createRequire(file), module, file, path.dirname(file));

// Build step only (scripts/code-cache.mjs): keep what this run compiled as the cache for later runs.
const out = process.env.SAFESCP_CODE_CACHE_OUT;
if (out) process.on('exit', () => fs.writeFileSync(out, script.createCachedData()));
