// Issue 14 acceptance: a real sshd whose target directory is a 20 MiB tmpfs. A 50 MiB upload over an existing file
// fails as remote-disk-full (OpenSSH's sftp-server says only "Failure"; statvfs tells), exit 1, not retried, in the
// text and in --report; the old file keeps its bytes and no temporary file is left. Mounting needs root: the test
// is skipped only on a developer machine without root, never under CI=true.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import type { Report } from '../../src/log/report.js';
import { runCli, sshdEnv, tempDir, type CliResult } from './helpers/cli.js';

const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
const suite = isRoot || process.env['CI'] === 'true' ? describe : describe.skip;

let sshd: Sshd;
let work: string;
/** The tmpfs mount point: the remote target directory. */
let full: string;
/** A tmpfs with room but no free inodes. */
let noInodes: string;
const mounts: string[] = [];
let env: NodeJS.ProcessEnv;
let oldHash: string;
let reports = 0;

const sha256 = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** A file of `size` random bytes, written in 1 MiB pieces. */
function randomFile(file: string, size: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < size; done += MiB) fs.writeSync(fd, crypto.randomBytes(Math.min(MiB, size - done)));
  } finally {
    fs.closeSync(fd);
  }
}

async function upload(args: string[], target = full): Promise<{ result: CliResult; report: Report }> {
  const reportFile = path.join(work, `report-${++reports}.json`);
  const result = await runCli(['--report', reportFile, ...args, `${sshd.user}@127.0.0.1:${target}`], env, 120_000);
  const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as Report;
  return { result, report };
}

function expectDiskFull(result: CliResult, report: Report): void {
  // First, so a failure shows what the user saw.
  expect(result.stderr).toContain('[remote-disk-full]');
  expect({ code: result.code, cause: report.cause }).toEqual({ code: 1, cause: 'remote-disk-full' });
  expect(result.stderr).toMatch(/on the server is full \(\d+ bytes free, \d+ bytes to write\)/);
  // The advice points at that filesystem, not at permissions.
  expect(result.stderr).toContain('findmnt -T');
  // Retries were allowed: not retrying is the classification's decision.
  expect(report.attempts).toHaveLength(1);
  expect(result.stderr).not.toMatch(/retrying in/);
  // Nothing but the old file: the temporary file was removed.
  expect(fs.readdirSync(full)).toContain('app.bin');
  expect(fs.readdirSync(full).filter((n) => n.includes('.safe-scp-'))).toEqual([]);
  expect(sha256(path.join(full, 'app.bin'))).toBe(oldHash);
}

suite('a full filesystem on the server (20 MiB tmpfs)', () => {
  beforeAll(async () => {
    work = tempDir('disk-full');
    full = path.join(work, 'full');
    fs.mkdirSync(full);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', full]);
    mounts.push(full);
    noInodes = path.join(work, 'no-inodes');
    fs.mkdirSync(noInodes);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=20m,nr_inodes=16', 'tmpfs', noInodes]);
    mounts.push(noInodes);
    randomFile(path.join(full, 'app.bin'), MiB);
    oldHash = sha256(path.join(full, 'app.bin'));
    sshd = await startSshd();
    env = sshdEnv(sshd.userKeyPath, sshd.knownHostsLines(), work, { SAFE_SCP_RETRIES: '2', SAFE_SCP_PORT: String(sshd.port) });
  }, 60_000);

  afterAll(async () => {
    await sshd?.stop();
    for (const dir of mounts) execFileSync('umount', [dir]);
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('a 50 MiB file over an existing one: remote-disk-full with free space and size, old file intact, no temp left', async () => {
    const source = path.join(work, 'src', 'app.bin');
    randomFile(source, 50 * MiB);
    const { result, report } = await upload([source]);
    expectDiskFull(result, report);
    expect(report.details).toMatchObject({ directory: full, fileBytes: 50 * MiB });
    expect(report.details?.['freeBytes']).toBeLessThan(MiB);
    expect(report.checks.join(' ')).toContain('df -h TARGET_DIR');
    // The space the failed upload took is free again.
    expect(fs.statfsSync(full).bavail * fs.statfsSync(full).bsize).toBeGreaterThan(18 * MiB);
  });

  test('a tree (-r) larger than the free space: remote-disk-full, old file intact, no temp left', async () => {
    const tree = path.join(work, 'tree');
    for (const name of ['a.bin', 'b.bin', 'sub/c.bin']) randomFile(path.join(tree, name), 10 * MiB);
    const { result, report } = await upload(['-r', tree]);
    expectDiskFull(result, report);
    const landed = path.join(full, 'tree');
    const temps: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(dir, e.name));
        else if (e.name.includes('.safe-scp-')) temps.push(e.name);
      }
    };
    if (fs.existsSync(landed)) walk(landed);
    expect(temps).toEqual([]);
  });

  test('no free inodes: a small file cannot even be created; remote-disk-full says so, the old file is intact', async () => {
    const old = path.join(noInodes, 'app.bin');
    fs.writeFileSync(old, 'old release\n');
    // Use up every inode left (tmpfs answers ENOSPC; sftp-server turns it into a bare "Failure").
    for (let i = 0; i < 32; i++) {
      try {
        fs.writeFileSync(path.join(noInodes, `filler-${i}`), '');
      } catch {
        break;
      }
    }
    const source = path.join(work, 'small', 'app.bin');
    fs.mkdirSync(path.dirname(source), { recursive: true });
    fs.writeFileSync(source, 'new release\n');
    const { result, report } = await upload([source], noInodes);
    expect(result.stderr).toContain('[remote-disk-full]');
    expect(result.stderr).toContain('no free inodes');
    expect({ code: result.code, cause: report.cause, freeFiles: report.details?.['freeFiles'] }).toEqual({ code: 1, cause: 'remote-disk-full', freeFiles: 0 });
    expect(report.attempts).toHaveLength(1);
    expect(fs.readFileSync(old, 'utf8')).toBe('old release\n');
    expect(fs.readdirSync(noInodes).filter((n) => n.includes('.safe-scp-'))).toEqual([]);
  });
});
