// `npm run bench`: safe-scp against OpenSSH scp, scp -c aes128-gcm, rsync and one scp per file, on a private loopback sshd.
//
// Options (environment):
//   BENCH_ROUNDS=3          rounds; every tool runs once per round, in rotating order; medians are reported
//   BENCH_QUICK=1           small data (64 MiB file, 200-file tree, 20 separate files), 1 round unless BENCH_ROUNDS
//   BENCH_BIG_MIB=512       size of the big file
//   BENCH_SINGLES=200       number of separate files
//   BENCH_CASES=big,tree,many,startup   which workloads to run
//   BENCH_TOOLS=...         only these tools (safe-scp, scp, scp-gcm, rsync, scp-per-file, scp-one-call, cp)
//   BENCH_STARTUP_RUNS=10   runs of `safe-scp --version` and of `node -e ''`
//   BENCH_RUN_TIMEOUT_S=600 bound for one run (the process group is killed after it)
//   BENCH_OUT=bench-results.json
//   BENCH_DIR=...           where data and targets go; default /dev/shm when it is a tmpfs with room, else $TMPDIR
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSshd, type Sshd } from '../harness/sshd.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'safe-scp.mjs');
const GNU_TIME = '/usr/bin/time';
const MB = 1e6;

type CaseId = 'big' | 'tree' | 'many';
type ToolId = 'safe-scp' | 'scp' | 'scp-gcm' | 'rsync' | 'scp-per-file' | 'scp-one-call' | 'cp';

interface Settings {
  rounds: number;
  quick: boolean;
  bigBytes: number;
  treeTop: number;
  treeSub: number;
  filesPerDir: number;
  smallSize: number;
  singles: number;
  cases: Set<string>;
  tools: Set<string> | undefined;
  startupRuns: number;
  runTimeoutMs: number;
  out: string;
}

function intEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}=${raw}: expected an integer in ${min}..${max}`);
  return n;
}

function settings(): Settings {
  const quick = process.env['BENCH_QUICK'] === '1';
  const list = (name: string): Set<string> | undefined => {
    const raw = process.env[name];
    return raw ? new Set(raw.split(',').map((s) => s.trim()).filter(Boolean)) : undefined;
  };
  return {
    rounds: intEnv('BENCH_ROUNDS', quick ? 1 : 3, 1, 50),
    quick,
    bigBytes: intEnv('BENCH_BIG_MIB', quick ? 64 : 512, 1, 8192) * 1024 * 1024,
    treeTop: quick ? 2 : 10,
    treeSub: 19,
    filesPerDir: 10,
    smallSize: 4096,
    singles: intEnv('BENCH_SINGLES', quick ? 20 : 200, 1, 5000),
    cases: list('BENCH_CASES') ?? new Set(['big', 'tree', 'many', 'startup']),
    tools: list('BENCH_TOOLS'),
    startupRuns: intEnv('BENCH_STARTUP_RUNS', quick ? 5 : 10, 1, 100),
    runTimeoutMs: intEnv('BENCH_RUN_TIMEOUT_S', 600, 10, 7200) * 1000,
    out: path.resolve(process.env['BENCH_OUT'] ?? 'bench-results.json'),
  };
}

// ---------------------------------------------------------------------------------------------
// Measuring one process: wall time, peak RSS and CPU of the process and its waited-for children.

interface Sample {
  wallS: number;
  /** Peak resident set size of the largest process in the run (ru_maxrss), MB. */
  peakRssMB: number;
  /** user + sys of the process and its children (rusage). */
  cpuS: number;
  /** Busy CPU of the whole machine (client and sshd side) during the run, from /proc/stat. */
  machineCpuS: number;
  /** CPU time the hypervisor gave to other guests during the run (/proc/stat steal): the run was slowed by that. */
  stealS: number;
}

interface RunOutput extends Sample {
  code: number | null;
  output: string;
}

/** Busy and stolen ticks (USER_HZ = 100 on Linux) of all CPUs. */
function machineTicks(): { busy: number; steal: number } {
  try {
    const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    // user nice system idle iowait irq softirq steal
    return { busy: (fields[0] ?? 0) + (fields[1] ?? 0) + (fields[2] ?? 0) + (fields[5] ?? 0) + (fields[6] ?? 0) + (fields[7] ?? 0), steal: fields[7] ?? 0 };
  } catch {
    return { busy: 0, steal: 0 };
  }
}

/** cutime + cstime of this process: the CPU of children already waited for (fallback without GNU time). */
function childTicks(): number {
  const text = fs.readFileSync('/proc/self/stat', 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(fields[13]) + Number(fields[14]);
}

function vmHwmKb(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const hasGnuTime = fs.existsSync(GNU_TIME);
let current: { pid: number } | undefined;
let interrupted = false;

function run(file: string, args: readonly string[], options: { env: NodeJS.ProcessEnv; timeoutMs: number; cwd?: string }): Promise<RunOutput> {
  const timeFile = path.join(os.tmpdir(), `safe-scp-bench-time-${process.pid}`);
  const argv = hasGnuTime ? ['-f', '%M %U %S', '-o', timeFile, file, ...args] : [...args];
  const command = hasGnuTime ? GNU_TIME : file;
  const ticksBefore = hasGnuTime ? 0 : childTicks();
  const before = machineTicks();
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    // Own process group, so a timeout can end the whole run (scp and the ssh it started) by its id.
    const child = spawn(command, argv, { env: options.env, cwd: options.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const pid = child.pid;
    if (pid === undefined) {
      reject(new Error(`cannot start ${file}`));
      return;
    }
    current = { pid };
    let output = '';
    const keep = (d: Buffer): void => {
      output = (output + d.toString()).slice(-16384);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let hwm = 0;
    const poll = hasGnuTime ? undefined : setInterval(() => (hwm = Math.max(hwm, vmHwmKb(pid))), 10);
    const timer = setTimeout(() => {
      output += `\n[bench: killed after ${options.timeoutMs} ms]`;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      current = undefined;
      reject(err);
    });
    child.on('close', (code) => {
      const wallS = Number(process.hrtime.bigint() - started) / 1e9;
      const after = machineTicks();
      const machineCpuS = (after.busy - before.busy) / 100;
      const stealS = (after.steal - before.steal) / 100;
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      current = undefined;
      let peakRssMB = (hwm * 1024) / MB;
      let cpuS = (childTicks() - ticksBefore) / 100;
      if (hasGnuTime) {
        const lines = fs.readFileSync(timeFile, 'utf8').trim().split('\n');
        fs.rmSync(timeFile, { force: true });
        const [rss, user, sys] = (lines.at(-1) ?? '').trim().split(/\s+/).map(Number);
        // GNU time reports exit status on an extra line; the command's own exit code is what matters.
        const failed = lines.find((l) => /exited with non-zero status (\d+)/.test(l));
        if (failed) code = Number(/(\d+)\s*$/.exec(failed)?.[1] ?? code);
        peakRssMB = ((rss ?? 0) * 1024) / MB;
        cpuS = (user ?? 0) + (sys ?? 0);
      }
      resolve({ code, output, wallS, peakRssMB, cpuS, machineCpuS, stealS });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Data

interface Data {
  work: string;
  big: string;
  tree: string;
  treeFiles: number;
  treeDirs: number;
  singles: string[];
  targets: string;
  /** Whether the targets directory got ext4's Orlov flag (chattr +T), see makeData. */
  freshGroups: boolean;
}

function randomFile(file: string, size: number): void {
  const fd = fs.openSync(file, 'w', 0o644);
  try {
    const block = Buffer.allocUnsafe(Math.min(size, 1024 * 1024));
    for (let written = 0; written < size; ) {
      const n = Math.min(block.length, size - written);
      crypto.randomFillSync(block, 0, n);
      fs.writeSync(fd, block, 0, n);
      written += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

function makeData(work: string, s: Settings): Data {
  const big = path.join(work, 'data', 'big.bin');
  fs.mkdirSync(path.dirname(big), { recursive: true });
  if (s.cases.has('big')) randomFile(big, s.bigBytes);
  // Like the integration tests: 10 top-level directories with 19 below each, 10 files in every one.
  const tree = path.join(work, 'data', 'tree');
  let treeFiles = 0;
  let treeDirs = 0;
  const fill = (dir: string): void => {
    fs.mkdirSync(dir, { recursive: true });
    treeDirs++;
    for (let f = 0; f < s.filesPerDir; f++) {
      fs.writeFileSync(path.join(dir, `file-${f}.bin`), crypto.randomBytes(s.smallSize), { mode: 0o644 });
      treeFiles++;
    }
  };
  if (s.cases.has('tree')) {
    for (let top = 0; top < s.treeTop; top++) {
      const topDir = path.join(tree, `dir-${top}`);
      fill(topDir);
      for (let sub = 0; sub < s.treeSub; sub++) fill(path.join(topDir, `sub-${sub}`));
    }
  }
  const singlesDir = path.join(work, 'data', 'separate');
  fs.mkdirSync(singlesDir);
  const singles: string[] = [];
  if (s.cases.has('many')) {
    for (let i = 0; i < s.singles; i++) {
      const file = path.join(singlesDir, `file-${String(i).padStart(4, '0')}.bin`);
      fs.writeFileSync(file, crypto.randomBytes(s.smallSize), { mode: 0o644 });
      singles.push(file);
    }
  }
  const targets = path.join(work, 'targets');
  fs.mkdirSync(targets);
  // On ext4, creating a file costs up to 0.5 ms of kernel CPU (instead of ~15 us) in a block group where many
  // inodes were deleted in the last ~30 s (ext4 skips recently deleted inodes one by one); a shared /tmp full of
  // other tests' churn is such a group. With the Orlov flag every target directory starts in a fresh group, so
  // the runs measure the tools rather than that. Best effort: other file systems have no such flag.
  const freshGroups = spawnSync('chattr', ['+T', targets], { stdio: 'ignore' }).status === 0;
  return { work, big, tree, treeFiles, treeDirs, singles, targets, freshGroups };
}

/**
 * Where the data and targets go. A tmpfs keeps the disk out of the measurement: with the targets on a disk, the
 * kernel's write-back of the previous run's 512 MiB lands in the next run and times swing by 2x on this VM,
 * for every tool alike. BENCH_DIR chooses; otherwise /dev/shm when it is a tmpfs with room, else $TMPDIR.
 */
function benchDir(s: Settings): string {
  const chosen = process.env['BENCH_DIR'];
  if (chosen) return chosen;
  try {
    const st = fs.statfsSync('/dev/shm');
    const TMPFS_MAGIC = 0x01021994;
    const need = 4 * s.bigBytes + 512 * 2 ** 20;
    if (st.type === TMPFS_MAGIC && st.bavail * st.bsize > need) return '/dev/shm';
  } catch {
    // no /dev/shm
  }
  return os.tmpdir();
}

function fileSystemOf(dir: string): string {
  try {
    return fs.statfsSync(dir).type === 0x01021994 ? 'tmpfs' : 'disk';
  } catch {
    return '?';
  }
}

function countFiles(root: string): number {
  let n = 0;
  for (const entry of fs.readdirSync(root, { recursive: true, withFileTypes: true })) if (entry.isFile()) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Tools

interface Env {
  sshd: Sshd;
  data: Data;
  knownHosts: string;
  sshOptions: string[];
  safeEnv: NodeJS.ProcessEnv;
  plainEnv: NodeJS.ProcessEnv;
  stateDir: string;
}

interface Invocation {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

const shellQuote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function remote(env: Env, p: string): string {
  return `${env.sshd.user}@${env.sshd.host}:${p}`;
}

function safeScp(env: Env, args: string[]): Invocation {
  return { file: CLI, args: ['-P', String(env.sshd.port), '--host-interval', '0', '--state-dir', env.stateDir, ...args], env: env.safeEnv };
}

function scp(env: Env, extra: string[], args: string[]): Invocation {
  return { file: 'scp', args: [...env.sshOptions, '-P', String(env.sshd.port), ...extra, ...args], env: env.plainEnv };
}

/** How each tool copies each workload into `dest` (a fresh, existing directory). */
function invocation(env: Env, c: CaseId, tool: ToolId, dest: string): Invocation {
  const { data } = env;
  const rsh = ['ssh', ...env.sshOptions, '-p', String(env.sshd.port)].map(shellQuote).join(' ');
  switch (c) {
    case 'big': {
      const to = remote(env, path.join(dest, 'big.bin'));
      if (tool === 'safe-scp') return safeScp(env, [data.big, to]);
      if (tool === 'scp') return scp(env, [], [data.big, to]);
      if (tool === 'scp-gcm') return scp(env, ['-c', 'aes128-gcm@openssh.com'], [data.big, to]);
      if (tool === 'rsync') return { file: 'rsync', args: ['-a', '-e', rsh, data.big, to], env: env.plainEnv };
      if (tool === 'cp') return { file: 'cp', args: [data.big, path.join(dest, 'big.bin')], env: env.plainEnv };
      break;
    }
    case 'tree': {
      const to = remote(env, path.join(dest, 'tree'));
      if (tool === 'safe-scp') return safeScp(env, ['-r', data.tree, to]);
      if (tool === 'scp') return scp(env, ['-r'], [data.tree, to]);
      if (tool === 'scp-gcm') return scp(env, ['-r', '-c', 'aes128-gcm@openssh.com'], [data.tree, to]);
      if (tool === 'rsync') return { file: 'rsync', args: ['-a', '-e', rsh, data.tree, remote(env, `${dest}/`)], env: env.plainEnv };
      if (tool === 'cp') return { file: 'cp', args: ['-r', data.tree, path.join(dest, 'tree')], env: env.plainEnv };
      break;
    }
    case 'many': {
      const to = remote(env, `${dest}/`);
      if (tool === 'safe-scp') return safeScp(env, [...data.singles, to]);
      if (tool === 'scp-one-call') return scp(env, [], [...data.singles, to]);
      if (tool === 'scp-per-file') {
        // The naive deploy script: one scp (one new SSH connection) per file.
        const scpCmd = ['scp', ...env.sshOptions, '-P', String(env.sshd.port)].map(shellQuote).join(' ');
        const script = `to=$1; shift; for f in "$@"; do ${scpCmd} "$f" "$to" || exit 1; done`;
        return { file: '/bin/sh', args: ['-c', script, 'sh', to, ...data.singles], env: env.plainEnv };
      }
      break;
    }
  }
  throw new Error(`no invocation for ${tool} on ${c}`);
}

function verify(env: Env, c: CaseId, dest: string): string | undefined {
  try {
    if (c === 'big') {
      const size = fs.statSync(path.join(dest, 'big.bin')).size;
      return size === fs.statSync(env.data.big).size ? undefined : `big.bin has ${size} bytes`;
    }
    if (c === 'tree') {
      const n = countFiles(path.join(dest, 'tree'));
      return n === env.data.treeFiles ? undefined : `tree has ${n} of ${env.data.treeFiles} files`;
    }
    const n = countFiles(dest);
    return n === env.data.singles.length ? undefined : `${n} of ${env.data.singles.length} files arrived`;
  } catch (err: unknown) {
    return err instanceof Error ? err.message : String(err);
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics and output

interface Summary {
  runs: number;
  medianS: number;
  minS: number;
  maxS: number;
  mbPerS: number;
  peakRssMB: number;
  cpuS: number;
  machineCpuS: number;
  stealS: number;
  samples: Sample[];
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function summarize(samples: Sample[], bytes: number): Summary {
  const wall = samples.map((s) => s.wallS);
  const medianS = median(wall);
  return {
    runs: samples.length,
    medianS,
    minS: Math.min(...wall),
    maxS: Math.max(...wall),
    mbPerS: bytes / MB / medianS,
    peakRssMB: Math.max(...samples.map((s) => s.peakRssMB)),
    cpuS: median(samples.map((s) => s.cpuS)),
    machineCpuS: median(samples.map((s) => s.machineCpuS)),
    stealS: median(samples.map((s) => s.stealS)),
    samples,
  };
}

const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');
const f3 = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : '-');
const f0 = (n: number): string => (Number.isFinite(n) ? n.toFixed(0) : '-');

function firstLine(file: string, args: string[]): string {
  try {
    const out = execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return out.split('\n')[0]?.trim() ?? '';
  } catch (err: unknown) {
    const e = err as { stderr?: string };
    return (e.stderr ?? '').split('\n')[0]?.trim() ?? '';
  }
}

function machine(): Record<string, string | number> {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const osRelease = fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : '';
  // `ssh -V` prints its version on stderr.
  const ssh = firstLine('sh', ['-c', 'ssh -V 2>&1']);
  return {
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    aesNi: /\baes\b/.test(cpuinfo) ? 'yes' : 'no',
    os: /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(osRelease)?.[1] ?? `${os.type()} ${os.release()}`,
    kernel: os.release(),
    node: process.version,
    openssh: ssh,
    rsync: firstLine('rsync', ['--version']).replace(/\s+protocol.*$/, '').replace(/\s+/g, ' '),
  };
}

/** Whether the bin, run by this Node, takes its V8 code cache (scripts/bin.mjs): a rejected one costs every run ~70 ms. */
async function codeCacheState(env: NodeJS.ProcessEnv): Promise<'accepted' | 'rejected' | 'missing' | 'unknown'> {
  const res = await run(CLI, ['--version'], { env: { ...env, SAFESCP_CODE_CACHE_CHECK: '1' }, timeoutMs: 30_000 });
  const state = /code cache: (accepted|rejected|missing)/.exec(res.output)?.[1];
  return state === 'accepted' || state === 'rejected' || state === 'missing' ? state : 'unknown';
}

// ---------------------------------------------------------------------------------------------

const CASES: ReadonlyArray<{ id: CaseId; title: string; tools: ToolId[] }> = [
  { id: 'big', title: 'big file upload', tools: ['safe-scp', 'scp', 'scp-gcm', 'rsync', 'cp'] },
  { id: 'tree', title: 'tree upload (-r)', tools: ['safe-scp', 'scp', 'rsync', 'cp'] },
  { id: 'many', title: 'separate files', tools: ['safe-scp', 'scp-per-file', 'scp-one-call'] },
];

const TOOL_LABEL: Record<ToolId, string> = {
  'safe-scp': 'safe-scp',
  scp: '`scp` (default cipher)',
  'scp-gcm': '`scp -c aes128-gcm@openssh.com`',
  rsync: '`rsync -a -e ssh`',
  'scp-per-file': '`scp` once per file',
  'scp-one-call': '`scp` (all files, one call)',
  cp: 'local `cp` (no SSH: the file-system floor)',
};

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function main(): Promise<number> {
  const s = settings();
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (npm run bench does)`);
  const work = fs.mkdtempSync(path.join(benchDir(s), 'safe-scp-bench-'));
  let sshd: Sshd | undefined;
  const onSignal = (): void => {
    interrupted = true;
    if (current) {
      try {
        process.kill(-current.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    log(`bench: making data in ${work} ...`);
    const data = makeData(work, s);
    sshd = await startSshd({ logLevel: 'INFO' });
    const home = path.join(work, 'home');
    fs.mkdirSync(home, { mode: 0o700 });
    const knownHosts = path.join(work, 'known_hosts');
    fs.writeFileSync(knownHosts, sshd.knownHostsLines());
    const clean: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('SAFE_SCP_') && !k.startsWith('SSH_') && k !== 'GITLAB_CI' && k !== 'NODE_OPTIONS') clean[k] = v;
    }
    clean['HOME'] = home;
    // safe-scp runs as a user's shell runs it: the bin as a program, which starts the `node` on PATH (this one).
    clean['PATH'] = [path.dirname(process.execPath), process.env['PATH'] ?? ''].join(path.delimiter);
    const env: Env = {
      sshd,
      data,
      knownHosts,
      sshOptions: [
        '-F', '/dev/null',
        '-o', 'BatchMode=yes',
        '-o', `UserKnownHostsFile=${knownHosts}`,
        '-o', 'GlobalKnownHostsFile=/dev/null',
        '-o', 'StrictHostKeyChecking=yes',
        '-o', 'IdentitiesOnly=yes',
        '-i', sshd.userKeyPath,
      ],
      safeEnv: { ...clean, SSH_PRIVATE_KEY: fs.readFileSync(sshd.userKeyPath, 'utf8'), SSH_KNOWN_HOSTS: sshd.knownHostsLines() },
      plainEnv: clean,
      stateDir: path.join(work, 'state'),
    };
    const loadBefore = os.loadavg()[0] ?? 0;
    if (loadBefore > os.cpus().length / 2) log(`bench: WARNING: load average ${loadBefore.toFixed(2)} on ${os.cpus().length} cores; other work will distort the numbers`);
    let binding = false;
    const scpCipher = firstLine('sh', ['-c', `ssh -F /dev/null -G ${sshd.host} | sed -n 's/^ciphers //p'`]).split(',')[0] ?? '';

    // Warm-up and sanity check: one small upload with each tool; safe-scp's report names its cipher.
    let safeCipher = '';
    {
      const dest = fs.mkdtempSync(path.join(data.targets, 'warmup-'));
      const small = path.join(work, 'data', 'warmup.bin');
      randomFile(small, 65536);
      const report = path.join(work, 'warmup-report.json');
      const warm: Invocation[] = [
        safeScp(env, ['--report', report, small, remote(env, `${dest}/a.bin`)]),
        scp(env, [], [small, remote(env, `${dest}/b.bin`)]),
        { file: 'rsync', args: ['-a', '-e', ['ssh', ...env.sshOptions, '-p', String(sshd.port)].map(shellQuote).join(' '), small, remote(env, `${dest}/c.bin`)], env: env.plainEnv },
      ];
      for (const inv of warm) {
        const r = await run(inv.file, inv.args, { env: inv.env, timeoutMs: 60_000 });
        if (r.code !== 0) throw new Error(`warm-up ${path.basename(inv.file)} failed (exit ${r.code}):\n${r.output}`);
      }
      const parsed = JSON.parse(fs.readFileSync(report, 'utf8')) as { attempts?: Array<{ evidence?: { algorithms?: { cipher?: string; crypto?: string } } }> };
      const algorithms = parsed.attempts?.at(-1)?.evidence?.algorithms;
      safeCipher = algorithms?.cipher ?? '';
      // As the safe-scp bin loaded it (the bundle finds the binding through node_modules).
      binding = algorithms?.crypto === 'native';
      log(`bench: sshd on ${sshd.host}:${sshd.port}; ssh2 native crypto binding: ${binding ? 'present' : 'MISSING (expect ~40% less throughput)'}`);
      // The first big file written after the data is made lands in memory the VM has not touched yet: on tmpfs
      // here that cost the first measured run ~1.3 s more than the rest, always round 1's first tool. One
      // copy, deleted, takes that cost before anything is measured.
      if (s.cases.has('big')) fs.copyFileSync(data.big, path.join(dest, 'big.bin'));
      fs.rmSync(dest, { recursive: true, force: true });
    }

    const bytesOf: Record<CaseId, number> = {
      big: s.bigBytes,
      tree: data.treeFiles * s.smallSize,
      many: data.singles.length * s.smallSize,
    };
    const samples = new Map<string, Sample[]>();
    const cases = CASES.filter((c) => s.cases.has(c.id)).map((c) => ({ ...c, tools: c.tools.filter((t) => !s.tools || s.tools.has(t)) }));
    let seq = 0;
    for (let round = 0; round < s.rounds; round++) {
      for (const c of cases) {
        // Rotate the order every round so no tool always runs first (or right after a big delete).
        const order = c.tools.map((_, i) => c.tools[(i + round) % c.tools.length] as ToolId);
        for (const tool of order) {
          if (interrupted) throw new Error('interrupted');
          const dest = path.join(data.targets, `${c.id}-${tool}-${round}-${seq++}`);
          fs.mkdirSync(dest);
          const inv = invocation(env, c.id, tool, dest);
          const r = await run(inv.file, inv.args, { env: inv.env, timeoutMs: s.runTimeoutMs });
          const problem = r.code !== 0 ? `exit ${r.code}` : verify(env, c.id, dest);
          // Thousands of small files stay until the end: deleting them would slow the next run's creates (makeData).
          if (c.id === 'big' || problem) fs.rmSync(dest, { recursive: true, force: true });
          if (problem) throw new Error(`${tool} on ${c.id} failed (${problem}):\n${r.output}`);
          const key = `${c.id}/${tool}`;
          samples.set(key, [...(samples.get(key) ?? []), { wallS: r.wallS, peakRssMB: r.peakRssMB, cpuS: r.cpuS, machineCpuS: r.machineCpuS, stealS: r.stealS }]);
          log(`bench: round ${round + 1}/${s.rounds} ${c.id.padEnd(4)} ${tool.padEnd(12)} ${f3(r.wallS)} s  rss ${f0(r.peakRssMB)} MB  cpu ${f2(r.cpuS)} s  steal ${f2(r.stealS)} s`);
        }
      }
    }

    // Start-up: `safe-scp --version` against bare node, alternating.
    let startup: { node: Summary; safeScp: Summary; overheadMs: number } | undefined;
    if (s.cases.has('startup')) {
      const nodeRuns: Sample[] = [];
      const safeRuns: Sample[] = [];
      await run(process.execPath, ['-e', ''], { env: env.plainEnv, timeoutMs: 30_000 });
      await run(CLI, ['--version'], { env: env.safeEnv, timeoutMs: 30_000 });
      for (let i = 0; i < s.startupRuns; i++) {
        if (interrupted) throw new Error('interrupted');
        const a = await run(process.execPath, ['-e', ''], { env: env.plainEnv, timeoutMs: 30_000 });
        const b = await run(CLI, ['--version'], { env: env.safeEnv, timeoutMs: 30_000 });
        if (b.code !== 0 || !/^safe-scp \d/.test(b.output)) throw new Error(`safe-scp --version failed: ${b.output}`);
        nodeRuns.push(a);
        safeRuns.push(b);
      }
      const node = summarize(nodeRuns, 0);
      const safe = summarize(safeRuns, 0);
      startup = { node, safeScp: safe, overheadMs: (safe.medianS - node.medianS) * 1000 };
    }

    // Results
    const results: Record<string, Record<string, Summary>> = {};
    for (const c of cases) {
      results[c.id] = {};
      for (const tool of c.tools) {
        const list = samples.get(`${c.id}/${tool}`);
        if (list) (results[c.id] as Record<string, Summary>)[tool] = summarize(list, bytesOf[c.id]);
      }
    }
    const get = (c: CaseId, t: ToolId): Summary | undefined => results[c]?.[t];
    const ratio = (a: Summary | undefined, b: Summary | undefined): number => (a && b ? a.medianS / b.medianS : NaN);
    const safeBig = get('big', 'safe-scp');
    const acceptance = [
      { criterion: 'big: safe-scp throughput / default `scp`', target: '>= 1.5', value: ratio(get('big', 'scp'), safeBig), ok: (v: number) => v >= 1.5 },
      { criterion: 'big: safe-scp throughput / `scp -c aes128-gcm`', target: '>= 1.0', value: ratio(get('big', 'scp-gcm'), safeBig), ok: (v: number) => v >= 1.0 },
      { criterion: 'tree: safe-scp time / `scp -r` time', target: '<= 0.5', value: ratio(get('tree', 'safe-scp'), get('tree', 'scp')), ok: (v: number) => v <= 0.5 },
      { criterion: 'tree: safe-scp time / `rsync` time', target: '< 1.0', value: ratio(get('tree', 'safe-scp'), get('tree', 'rsync')), ok: (v: number) => v < 1.0 },
      {
        criterion: `${data.singles.length} separate files: scp-per-file time / safe-scp time`,
        target: '>= 20',
        value: ratio(get('many', 'scp-per-file'), get('many', 'safe-scp')),
        ok: (v: number) => v >= 20,
      },
      { criterion: 'big: safe-scp peak RSS (MB)', target: '< 200', value: safeBig?.peakRssMB ?? NaN, ok: (v: number) => v < 200 },
      { criterion: '`safe-scp --version` minus `node -e \'\'` (ms)', target: '<= 150', value: startup?.overheadMs ?? NaN, ok: (v: number) => v <= 150 },
    ].map((a) => ({ criterion: a.criterion, target: a.target, value: a.value, pass: Number.isFinite(a.value) ? a.ok(a.value) : null }));

    const info = machine();
    const codeCache = await codeCacheState(env.safeEnv);
    const load = { before: Number(loadBefore.toFixed(2)), after: Number((os.loadavg()[0] ?? 0).toFixed(2)) };
    const lines: string[] = [];
    lines.push(
      `Machine: ${info['cpu']}, ${info['cores']} cores, ${info['memoryGiB']} GiB, ${info['os']}; Node ${info['node']}; ${info['openssh']}; ${info['rsync']}.`,
      `Loopback, private sshd with sftp-server; ${s.rounds} round(s), tools alternating, medians. MB = 10^6 bytes. ` +
        `Big file ${s.bigBytes / 2 ** 20} MiB; tree ${data.treeFiles} x ${s.smallSize / 1024} KiB files in ${data.treeDirs} directories; ${data.singles.length} separate ${s.smallSize / 1024} KiB files.`,
      `Ciphers: safe-scp ${safeCipher || '?'}, default scp ${scpCipher || '?'}. ssh2 native crypto binding: ${binding ? 'present' : 'missing'}. ` +
        'CPU = user+sys of the client process tree; machine CPU = all busy CPU during the run (client + sshd); ' +
        'steal = CPU time the hypervisor gave to other guests during the run (the run was slowed by it). ' +
        `Code cache of the bin: ${codeCache}. ` +
        (process.env['NODE_EXTRA_CA_CERTS'] ? 'NODE_EXTRA_CA_CERTS is set here: bare node loads it at every start, the safe-scp bin drops it (no TLS). ' : '') +
        `Data and targets on ${fileSystemOf(data.work)} (${path.dirname(data.work)}). ` +
        (data.freshGroups ? 'Target directories start in fresh ext4 block groups (chattr +T). ' : '') +
        `Load average (1 min) before/after: ${load.before}/${load.after}.`,
      '',
      '| workload | tool | median s | min s | max s | MB/s | time / safe-scp | peak RSS MB | CPU s | machine CPU s | steal s |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const c of cases) {
      const base = get(c.id, 'safe-scp');
      for (const tool of c.tools) {
        const r = get(c.id, tool);
        if (!r) continue;
        const vs = !base ? '-' : `${f2(r.medianS / base.medianS)}x`;
        lines.push(
          `| ${c.title} | ${TOOL_LABEL[tool]} | ${f3(r.medianS)} | ${f3(r.minS)} | ${f3(r.maxS)} | ${f0(r.mbPerS)} | ${vs} | ${f0(r.peakRssMB)} | ${f2(r.cpuS)} | ${f2(r.machineCpuS)} | ${f2(r.stealS)} |`,
        );
      }
    }
    if (startup) {
      lines.push(
        `| start-up | \`node -e ''\` | ${f3(startup.node.medianS)} | ${f3(startup.node.minS)} | ${f3(startup.node.maxS)} | - | - | ${f0(startup.node.peakRssMB)} | ${f2(startup.node.cpuS)} | - | - |`,
        `| start-up | \`safe-scp --version\` | ${f3(startup.safeScp.medianS)} | ${f3(startup.safeScp.minS)} | ${f3(startup.safeScp.maxS)} | - | ${startup.overheadMs >= 0 ? '+' : ''}${f0(startup.overheadMs)} ms | ${f0(startup.safeScp.peakRssMB)} | ${f2(startup.safeScp.cpuS)} | - | - |`,
      );
    }
    lines.push('', '| acceptance | target | measured | |', '|---|---|---:|---|');
    for (const a of acceptance) lines.push(`| ${a.criterion} | ${a.target} | ${f2(a.value)} | ${a.pass === null ? 'not run' : a.pass ? 'pass' : '**FAIL**'} |`);
    const markdown = lines.join('\n');

    const json = {
      date: new Date().toISOString(),
      machine: info,
      sshCryptoBinding: binding,
      codeCache,
      nodeExtraCaCerts: Boolean(process.env['NODE_EXTRA_CA_CERTS']),
      targetsInFreshBlockGroups: data.freshGroups,
      fileSystem: fileSystemOf(data.work),
      loadAverage: load,
      ciphers: { safeScp: safeCipher, scpDefault: scpCipher },
      settings: { ...s, cases: [...s.cases], tools: s.tools ? [...s.tools] : undefined, out: path.basename(s.out) },
      data: { bigBytes: s.bigBytes, treeFiles: data.treeFiles, treeDirs: data.treeDirs, smallFileBytes: s.smallSize, separateFiles: data.singles.length },
      results,
      startup: startup ?? null,
      acceptance,
      markdown,
    };
    fs.writeFileSync(s.out, `${JSON.stringify(json, null, 2)}\n`);
    process.stdout.write(`${markdown}\n\nresults written to ${path.basename(s.out)}\n`);
    return acceptance.some((a) => a.pass === false) ? 1 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await sshd?.stop();
    fs.rmSync(work, { recursive: true, force: true, maxRetries: 3 });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
