// A server that re-keys often (sshd's RekeyLimit) never breaks a transfer: every copy succeeds in its first attempt,
// the bytes arrive intact and sshd never sees a corrupted packet (issue 14). One sshd per RekeyLimit and cipher.
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startSshd, type Sshd } from '../../src/harness/sshd.js';
import type { Report } from '../../src/log/report.js';
import { makeTree, runCli, sshdEnv, tempDir, type CliResult } from './helpers/cli.js';

const REKEY_LIMITS = ['256K 5s', '1M'] as const;
const CIPHERS = ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes256-ctr'] as const;

let work: string;
let bigFile: string;
let bigHash: string;
let tree: string;

const sha = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** SHA-256 of every file under `root`, by relative path. */
function treeHashes(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(root, { recursive: true }).map(String).sort()) {
    const full = path.join(root, name);
    if (fs.statSync(full).isFile()) out[name] = sha(full);
  }
  return out;
}

beforeAll(() => {
  work = tempDir('rekey');
  bigFile = path.join(work, 'big.bin');
  const fd = fs.openSync(bigFile, 'w');
  for (let i = 0; i < 64; i++) fs.writeSync(fd, crypto.randomBytes(1024 * 1024));
  fs.closeSync(fd);
  bigHash = sha(bigFile);
  tree = path.join(work, 'tree');
  expect(makeTree(tree, 2048)).toEqual({ dirs: 200, files: 2000 });
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe.each(REKEY_LIMITS.flatMap((limit) => CIPHERS.map((cipher) => [limit, cipher] as const)))('RekeyLimit %s, cipher %s', (limit, cipher) => {
  let sshd: Sshd;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let runs = 0;

  beforeAll(async () => {
    sshd = await startSshd({ extraConfig: [`RekeyLimit ${limit}`, `Ciphers ${cipher}`] });
    dir = fs.mkdtempSync(path.join(work, 'case-'));
    env = sshdEnv(sshd.userKeyPath, sshd.knownHostsLines(), dir, { SAFE_SCP_PORT: String(sshd.port) });
  });

  afterAll(async () => {
    await sshd?.stop();
  });

  const remote = (p: string): string => `${sshd.user}@127.0.0.1:${p}`;

  /** Runs the CLI with --report; the copy must succeed in exactly one attempt, with the forced cipher. */
  async function copyOnce(args: string[]): Promise<CliResult> {
    const reportFile = path.join(dir, `report-${++runs}.json`);
    const since = sshd.logLineCount();
    const result = await runCli(['--report', reportFile, ...args], env);
    // sshd's last word on the connection, so its log is complete before it is read.
    await sshd.waitForLog(/Disconnected from|ssh_dispatch_run_fatal/, 5000, since);
    const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as Report;
    expect({ code: result.code, stderr: result.stderr, attempts: report.attempts.map((a) => a.cause) }).toEqual({ code: 0, stderr: '', attempts: [null] });
    expect(report.attempts[0]?.evidence).toMatchObject({ algorithms: { cipher } });
    return result;
  }

  test('a 64 MiB file and a 2000-file tree go up and come back intact, each in one attempt, and sshd sees no corrupted packet', async () => {
    const up = path.join(dir, 'srv-big.bin');
    await copyOnce([bigFile, remote(up)]);
    expect(sha(up)).toBe(bigHash);
    const down = path.join(dir, 'down-big.bin');
    await copyOnce([remote(up), down]);
    expect(sha(down)).toBe(bigHash);

    const srvTree = path.join(dir, 'srv-tree');
    await copyOnce(['-r', tree, remote(srvTree)]);
    execFileSync('diff', ['-r', tree, srvTree]);
    const downTree = path.join(dir, 'down');
    fs.mkdirSync(downTree);
    await copyOnce(['-r', remote(srvTree), downTree]);
    expect(treeHashes(path.join(downTree, 'srv-tree'))).toEqual(treeHashes(tree));

    // The server never saw a packet it could not read.
    expect(sshd.log()).not.toMatch(/Connection corrupted|Bad packet length/);
  });
});
