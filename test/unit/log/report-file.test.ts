// Unit tests for the --report file: checked before connecting, written by temp file + rename, never through a symlink.
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SafeScpError } from '../../../src/errors.js';
import { checkReportPath, writeReportFile } from '../../../src/log/report-file.js';

let work: string;
beforeEach(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'safe-scp-report-file-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

async function configError(run: Promise<unknown>): Promise<SafeScpError> {
  const error: unknown = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SafeScpError);
  const e = error as SafeScpError;
  expect([e.code, e.exitCode, e.phase]).toEqual(['config', 2, 'config']);
  expect(e.message).toContain('--report (SAFE_SCP_REPORT)');
  return e;
}

describe('checkReportPath', () => {
  test('a writable directory passes and is left as it was', async () => {
    await checkReportPath(path.join(work, 'report.json'));
    expect(await readdir(work)).toEqual([]);
  });

  test('a missing directory is a config error', async () => {
    const e = await configError(checkReportPath(path.join(work, 'nope', 'report.json')));
    expect(e.message).toContain('does not exist');
  });

  test('a directory at the name is a config error', async () => {
    await mkdir(path.join(work, 'report.json'));
    expect((await configError(checkReportPath(path.join(work, 'report.json')))).message).toContain('is a directory');
  });

  (process.platform !== 'win32' && process.getuid?.() !== 0 ? test : test.skip)('a directory this user cannot write is a config error', async () => {
    const locked = path.join(work, 'locked');
    await mkdir(locked, { mode: 0o500 });
    await configError(checkReportPath(path.join(locked, 'report.json')));
    await chmod(locked, 0o700);
  });
});

describe('writeReportFile', () => {
  test('writes the text and leaves no temp file', async () => {
    const file = path.join(work, 'report.json');
    await writeFile(file, 'old');
    await writeReportFile(file, '{"ok":true}\n');
    expect(await readFile(file, 'utf8')).toBe('{"ok":true}\n');
    expect(await readdir(work)).toEqual(['report.json']);
  });

  test('a symlink at the name is replaced, not followed', async () => {
    const victim = path.join(work, 'victim');
    await writeFile(victim, 'keep me');
    const file = path.join(work, 'report.json');
    await symlink(victim, file);
    await writeReportFile(file, '{}\n');
    expect((await lstat(file)).isSymbolicLink()).toBe(false);
    expect(await readFile(file, 'utf8')).toBe('{}\n');
    expect(await readFile(victim, 'utf8')).toBe('keep me');
  });

  test('a failed write is a config error and leaves no temp file', async () => {
    await mkdir(path.join(work, 'report.json'));
    await mkdir(path.join(work, 'report.json', 'x'));
    await configError(writeReportFile(path.join(work, 'report.json'), '{}\n'));
    expect((await readdir(work)).sort()).toEqual(['report.json']);
  });
});
