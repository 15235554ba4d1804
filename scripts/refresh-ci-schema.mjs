#!/usr/bin/env node
// Refreshes test/component/schema/ci.json, GitLab's CI schema, from GitLab's repository (or from the URL given as
// the first argument). It checks that the download is a JSON schema of .gitlab-ci.yml before replacing the copy;
// afterwards, run the unit tests (test/unit/ci-yaml.test.ts) and commit the file.
/* global fetch, AbortSignal */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DEFAULT_URL = 'https://gitlab.com/gitlab-org/gitlab/-/raw/master/app/assets/javascripts/editor/schema/ci.json';
const url = process.argv[2] ?? DEFAULT_URL;
const target = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'component', 'schema', 'ci.json');

const response = await fetch(url, { signal: AbortSignal.timeout(60_000) });
if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
const text = await response.text();
const schema = JSON.parse(text);
if (typeof schema !== 'object' || schema === null || !schema.definitions?.job_template || !schema.properties?.spec) {
  throw new Error(`${url} does not look like GitLab's CI schema (no definitions.job_template or properties.spec)`);
}

const sha256 = (data) => createHash('sha256').update(data).digest('hex');
const before = sha256(readFileSync(target));
writeFileSync(`${target}.tmp`, text);
renameSync(`${target}.tmp`, target);
const after = sha256(text);
console.log(before === after ? `${target}: unchanged` : `${target}: updated, sha256 ${after} (update the README beside it)`);
