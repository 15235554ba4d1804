// How the benchmark calls each tool against the private sshd, directly or through a proxy port: safe-scp as a
// user calls it (SSH_PRIVATE_KEY, SSH_KNOWN_HOSTS), OpenSSH scp and rsync with a clean ssh configuration.
import fs from 'node:fs';
import path from 'node:path';
import type { Sshd } from '../harness/sshd.js';
import { CLI, randomFile } from './common.js';
import { run } from './measure.js';

export interface ToolEnv {
  sshd: Sshd;
  /** The port the tools connect to: sshd's own, or a proxy's in front of it. */
  port: number;
  sshOptions: string[];
  safeEnv: NodeJS.ProcessEnv;
  plainEnv: NodeJS.ProcessEnv;
  stateDir: string;
}

export interface Invocation {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

export const shellQuote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * The tools' environment for `port` (sshd's or a proxy's): a private HOME, a known_hosts file naming that port,
 * no SAFE_SCP_/SSH_ variables of the caller, and the `node` running the bench first on PATH.
 */
export function makeToolEnv(sshd: Sshd, work: string, port: number): ToolEnv {
  const dir = path.join(work, `tools-${port}`);
  const home = path.join(dir, 'home');
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  const knownHostsText = sshd.knownHostsLines(sshd.host, port);
  const knownHosts = path.join(dir, 'known_hosts');
  fs.writeFileSync(knownHosts, knownHostsText);
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('SAFE_SCP_') && !k.startsWith('SSH_') && k !== 'GITLAB_CI' && k !== 'NODE_OPTIONS') clean[k] = v;
  }
  clean['HOME'] = home;
  // safe-scp runs as a user's shell runs it: the bin as a program, which starts the `node` on PATH (this one).
  clean['PATH'] = [path.dirname(process.execPath), process.env['PATH'] ?? ''].join(path.delimiter);
  return {
    sshd,
    port,
    sshOptions: [
      '-F', '/dev/null',
      '-o', 'BatchMode=yes',
      '-o', `UserKnownHostsFile=${knownHosts}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'IdentitiesOnly=yes',
      '-i', sshd.userKeyPath,
    ],
    safeEnv: { ...clean, SSH_PRIVATE_KEY: fs.readFileSync(sshd.userKeyPath, 'utf8'), SSH_KNOWN_HOSTS: knownHostsText },
    plainEnv: clean,
    stateDir: path.join(dir, 'state'),
  };
}

export function remote(env: ToolEnv, p: string): string {
  return `${env.sshd.user}@${env.sshd.host}:${p}`;
}

export function safeScp(env: ToolEnv, args: string[]): Invocation {
  return { file: CLI, args: ['-P', String(env.port), '--host-interval', '0', '--state-dir', env.stateDir, ...args], env: env.safeEnv };
}

export function scp(env: ToolEnv, extra: string[], args: string[]): Invocation {
  return { file: 'scp', args: [...env.sshOptions, '-P', String(env.port), ...extra, ...args], env: env.plainEnv };
}

export function rsync(env: ToolEnv, args: string[]): Invocation {
  const rsh = ['ssh', ...env.sshOptions, '-p', String(env.port)].map(shellQuote).join(' ');
  return { file: 'rsync', args: ['-a', '-e', rsh, ...args], env: env.plainEnv };
}

/** Whether the built safe-scp lists `flag` in its --help (e.g. a flag another branch is adding). */
export async function safeScpKnows(env: ToolEnv, flag: string): Promise<boolean> {
  const res = await run(CLI, ['--help'], { env: env.safeEnv, timeoutMs: 30_000 });
  return res.output.includes(flag);
}

/**
 * Warm-up and sanity check: one small upload with each tool into a fresh directory under `targets`; safe-scp's
 * report names its cipher and whether its bin loaded ssh2's native crypto binding.
 */
export async function warmUp(env: ToolEnv, work: string, targets: string): Promise<{ safeCipher: string; binding: boolean }> {
  const dest = fs.mkdtempSync(path.join(targets, 'warmup-'));
  const small = path.join(work, 'warmup.bin');
  randomFile(small, 65536);
  const report = path.join(work, 'warmup-report.json');
  const warm: Invocation[] = [
    safeScp(env, ['--report', report, small, remote(env, `${dest}/a.bin`)]),
    scp(env, [], [small, remote(env, `${dest}/b.bin`)]),
    rsync(env, [small, remote(env, `${dest}/c.bin`)]),
  ];
  for (const inv of warm) {
    const r = await run(inv.file, inv.args, { env: inv.env, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`warm-up ${path.basename(inv.file)} failed (exit ${r.code}):\n${r.output}`);
  }
  fs.rmSync(dest, { recursive: true, force: true });
  const parsed = JSON.parse(fs.readFileSync(report, 'utf8')) as { attempts?: Array<{ evidence?: { algorithms?: { cipher?: string; crypto?: string } } }> };
  const algorithms = parsed.attempts?.at(-1)?.evidence?.algorithms;
  // As the safe-scp bin loaded it (the bundle finds the binding through node_modules).
  return { safeCipher: algorithms?.cipher ?? '', binding: algorithms?.crypto === 'native' };
}
