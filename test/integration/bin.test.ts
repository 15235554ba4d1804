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

// An unreadable NODE_EXTRA_CA_CERTS makes node warn at start, before any JavaScript: the warning shows whether
// the node that ran safe-scp loaded it.
const env = (): NodeJS.ProcessEnv => ({
  PATH: [path.dirname(process.execPath), process.env['PATH'] ?? ''].join(path.delimiter),
  NODE_EXTRA_CA_CERTS: path.join(work, 'no-such-ca.pem'),
});

test('run as a program through a symlink (node_modules/.bin), the bin starts node without NODE_EXTRA_CA_CERTS', () => {
  const link = path.join(work, 'safe-scp');
  fs.symlinkSync(CLI, link);
  const res = spawnSync(link, ['--version'], { env: env(), encoding: 'utf8', timeout: 30_000 });
  expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 0, stderr: '' });
  expect(res.stdout).toMatch(/^safe-scp \d+\.\d+\.\d+/);
});

test('given to node as a script, the same file runs as JavaScript (node has loaded the certificates by then)', () => {
  const res = spawnSync(process.execPath, [CLI, '--version'], { env: env(), encoding: 'utf8', timeout: 30_000 });
  expect(res.status).toBe(0);
  expect(res.stdout).toMatch(/^safe-scp \d+\.\d+\.\d+/);
  expect(res.stderr).toMatch(/Ignoring extra certs/);
});

test('the bin takes the code cache the build made with the same V8 flags (a rejected cache costs every run ~70 ms)', () => {
  const res = spawnSync(CLI, ['--version'], { env: { ...env(), SAFESCP_CODE_CACHE_CHECK: '1' }, encoding: 'utf8', timeout: 30_000 });
  expect(res.status).toBe(0);
  expect(res.stderr).toBe('code cache: accepted\n');
});
