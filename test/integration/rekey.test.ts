// A server that re-keys often (sshd's RekeyLimit) never breaks a transfer: every copy succeeds in its first attempt,
// the bytes arrive intact and sshd never sees a corrupted packet (issue 14). One sshd per RekeyLimit and cipher.
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startSshd, type Sshd } from '../../harness/sshd.js';
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

/** Waits for all of `runs`, then throws the first failure: no run outlives its test. */
async function settleAll(runs: Array<Promise<unknown>>): Promise<void> {
  const failure = (await Promise.allSettled(runs)).find((r) => r.status === 'rejected');
  if (failure) throw failure.reason;
}

/** One server that re-keys at `limit` and speaks only `cipher`, with a CLI run that must succeed in one attempt. */
class Case {
  private runs = 0;

  private constructor(readonly cipher: string, readonly sshd: Sshd, readonly dir: string, readonly env: NodeJS.ProcessEnv) {}

  static async start(limit: string, cipher: string): Promise<Case> {
    // internal-sftp: the re-keys are sshd's whatever serves SFTP, and six copies side by side, each with up to 4
    // channels, would otherwise start 24 login shells at once (a shell that takes half a CPU-second, as root's does
    // on some machines, then held an SFTP channel's opening past the 15 s connect timeout).
    const sshd = await startSshd({ internalSftp: true, extraConfig: [`RekeyLimit ${limit}`, `Ciphers ${cipher}`] });
    const dir = fs.mkdtempSync(path.join(work, 'case-'));
    return new Case(cipher, sshd, dir, sshdEnv(sshd.userKeyPath, sshd.knownHostsLines(), dir, { SAFE_SCP_PORT: String(sshd.port) }));
  }

  remote(p: string): string {
    return `${this.sshd.user}@127.0.0.1:${p}`;
  }

  /** Runs the CLI with --report: exit 0, nothing on stderr, one attempt, the forced cipher. */
  async copyOnce(args: string[]): Promise<CliResult> {
    const reportFile = path.join(this.dir, `report-${++this.runs}.json`);
    const result = await runCli(['--report', reportFile, ...args], this.env);
    const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as Report;
    const seen = { cipher: report.attempts[0]?.evidence.algorithms, args, code: result.code, stderr: result.stderr, attempts: report.attempts.map((a) => a.cause) };
    expect(seen).toEqual({ cipher: expect.objectContaining({ cipher: this.cipher }), args, code: 0, stderr: '', attempts: [null] });
    return result;
  }

  /**
   * The file and the tree go up side by side (two connections), then come back side by side. The file goes over 4
   * SFTP channels each way (its 8 MiB ranges spread over them: every channel sees the re-keys), the tree over one.
   */
  async roundTrip(): Promise<void> {
    const srvBig = path.join(this.dir, 'srv-big.bin');
    const srvTree = path.join(this.dir, 'srv-tree');
    await settleAll([this.copyOnce(['--channels', '4', bigFile, this.remote(srvBig)]), this.copyOnce(['-r', tree, this.remote(srvTree)])]);
    expect(sha(srvBig)).toBe(bigHash);
    execFileSync('diff', ['-r', tree, srvTree]);

    const downBig = path.join(this.dir, 'down-big.bin');
    const downTree = path.join(this.dir, 'down');
    fs.mkdirSync(downTree);
    await settleAll([this.copyOnce(['--channels', '4', this.remote(srvBig), downBig]), this.copyOnce(['-r', this.remote(srvTree), downTree])]);
    expect(sha(downBig)).toBe(bigHash);
    expect(treeHashes(path.join(downTree, 'srv-tree'))).toEqual(treeHashes(tree));
  }

  /** sshd's log once it has logged the end of every connection it accepted. */
  async settledLog(): Promise<string> {
    const ends = (): number => this.sshd.log().match(/^(Disconnected from|ssh_dispatch_run_fatal)/gm)?.length ?? 0;
    for (let i = 0; i < 50 && ends() < this.sshd.authenticatedConnections(); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(ends()).toBeGreaterThanOrEqual(this.sshd.authenticatedConnections());
    return this.sshd.log();
  }
}

describe.each(REKEY_LIMITS)('RekeyLimit %s', (limit) => {
  let cases: Case[] = [];

  beforeAll(async () => {
    cases = await Promise.all(CIPHERS.map((cipher) => Case.start(limit, cipher)));
  });

  afterAll(async () => {
    await Promise.all(cases.map((c) => c.sshd.stop()));
  });

  // The three ciphers run side by side: at 256K most of a download's time is spent waiting for the re-keys.
  test(`a 64 MiB file and a 2000-file tree go up and come back intact with ${CIPHERS.join(', ')}, each in one attempt, and sshd sees no corrupted packet`, async () => {
    await settleAll(cases.map((c) => c.roundTrip()));
    for (const c of cases) expect({ cipher: c.cipher, log: await c.settledLog() }).toEqual({ cipher: c.cipher, log: expect.not.stringMatching(/Connection corrupted|Bad packet length/) });
  });
});
