// The bin (dist/safe-scp.mjs, scripts/bin.mjs) as a program, the way npm links it, and as a script given to node.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, tempDir } from './helpers/cli.js';

let work: string;

beforeAll(() => {
  work = tempDir('bin');
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

const env = (): NodeJS.ProcessEnv => ({ PATH: [path.dirname(process.execPath), process.env['PATH'] ?? ''].join(path.delimiter) });

test('a plain node script: its first line is #!/usr/bin/env node', () => {
  expect(fs.readFileSync(CLI, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
});

test('run as a program through a symlink (node_modules/.bin)', () => {
  const link = path.join(work, 'safe-scp');
  fs.symlinkSync(CLI, link);
  const res = spawnSync(link, ['--version'], { env: env(), encoding: 'utf8', timeout: 30_000 });
  expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 0, stderr: '' });
  expect(res.stdout).toMatch(/^safe-scp \d+\.\d+\.\d+/);
});

test('given to node as a script, and with --help (yargs from the bundle)', () => {
  const res = spawnSync(process.execPath, [CLI, '--help'], { env: env(), encoding: 'utf8', timeout: 30_000 });
  expect(res.status).toBe(0);
  expect(res.stdout).toMatch(/safe-scp \[options\] SOURCE\.\.\. TARGET/);
});
