// Unit tests for the throttle state directory: every refusal is cause `config` (exit 2) naming --state-dir,
// and creating it is bounded (Node's recursive mkdir never returns for /proc/x).
import { chmod, chown, lstat, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SafeScpError } from '../../../src/errors.js';
import { MAX_MISSING_LEVELS, StateDirError, ensureStateDir } from '../../../src/throttle/state-dir.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'safe-scp-state-dir-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Asserts `dir` is refused as a configuration error whose message names the option and `problem`. */
async function refused(dir: string, problem: RegExp): Promise<void> {
  const error: unknown = await ensureStateDir(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StateDirError);
  expect(error).toBeInstanceOf(SafeScpError);
  const e = error as SafeScpError;
  expect([e.code, e.exitCode, e.phase, e.retryable]).toEqual(['config', 2, 'config', false]);
  expect(e.message).toContain('--state-dir (SAFE_SCP_STATE_DIR)');
  expect(e.message).toMatch(problem);
}

const posix = process.platform !== 'win32';

describe('ensureStateDir', () => {
  test('creates missing levels with mode 0700', async () => {
    const dir = path.join(work, 'a', 'b', 'c');
    await expect(ensureStateDir(dir)).resolves.toBe(dir);
    const info = await lstat(dir);
    expect(info.isDirectory()).toBe(true);
    if (posix) expect(info.mode & 0o777).toBe(0o700);
  });

  test('refuses a symlink', async () => {
    const real = path.join(work, 'real');
    await mkdir(real, { mode: 0o700 });
    const link = path.join(work, 'link');
    await symlink(real, link);
    await refused(link, /symbolic link/);
  });

  test('refuses a file', async () => {
    const file = path.join(work, 'file');
    await writeFile(file, '');
    await refused(file, /not a directory/);
    await refused(path.join(file, 'below'), /ENOTDIR|not a directory/);
  });

  (posix ? test : test.skip)('refuses a world-writable directory without the sticky bit', async () => {
    const open = path.join(work, 'open');
    await mkdir(open);
    await chmod(open, 0o777);
    await refused(open, /world-writable/);
  });

  (posix ? test : test.skip)('refuses a directory owned by someone else', async () => {
    const uid = process.getuid?.();
    if (uid === 0) {
      const foreign = path.join(work, 'foreign');
      await mkdir(foreign, { mode: 0o700 });
      await chown(foreign, 65_534, 65_534);
      await refused(foreign, /owned by uid 65534/);
    } else {
      await refused('/', /owned by uid 0/);
    }
  });

  (process.platform === 'linux' ? test : test.skip)('/proc/x is refused at once instead of looping', async () => {
    await refused('/proc/x', /cannot create \/proc\/x/);
    await refused('/proc/x/y/z', /cannot create \/proc\/x/);
  });

  test(`refuses more than ${MAX_MISSING_LEVELS} missing levels`, async () => {
    const deep = path.join(work, ...Array.from({ length: MAX_MISSING_LEVELS + 1 }, (_, i) => `d${i}`));
    await refused(deep, /directory levels are missing/);
  });

  (posix && process.getuid?.() !== 0 ? test : test.skip)('refuses a directory it cannot create', async () => {
    const locked = path.join(work, 'locked');
    await mkdir(locked, { mode: 0o500 });
    await refused(path.join(locked, 'state'), /EACCES/);
  });
});
