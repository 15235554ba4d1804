// The loopback section of `npm run bench`: safe-scp against OpenSSH scp, scp -c aes128-gcm, rsync and one scp per
// file, straight at the private sshd (see main.ts for the options).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Sshd } from '../harness/sshd.js';
import {
  benchDir,
  CLI,
  countFiles,
  f0,
  f2,
  f3,
  firstLine,
  intEnv,
  listEnv,
  log,
  makeTree,
  randomFile,
  summarize,
  type SectionResult,
  type Summary,
} from './common.js';
import { pastDeadline, run, sampleOf, wasInterrupted, type Sample } from './measure.js';
import { CASES, loopbackReport, type CaseId, type Data, type Settings, type ToolId } from './loopback-report.js';
import { makeToolEnv, remote, rsync, safeScp, scp, shellQuote, warmUp, type Invocation, type ToolEnv } from './tools.js';

function settings(): Settings {
  const quick = process.env['BENCH_QUICK'] === '1';
  return {
    rounds: intEnv('BENCH_ROUNDS', quick ? 1 : 3, 1, 50),
    quick,
    bigBytes: intEnv('BENCH_BIG_MIB', quick ? 64 : 512, 1, 8192) * 1024 * 1024,
    treeTop: quick ? 2 : 10,
    treeSub: 19,
    filesPerDir: 10,
    smallSize: 4096,
    singles: intEnv('BENCH_SINGLES', quick ? 20 : 200, 1, 5000),
    cases: listEnv('BENCH_CASES') ?? new Set(['big', 'tree', 'many', 'startup']),
    tools: listEnv('BENCH_TOOLS'),
    startupRuns: intEnv('BENCH_STARTUP_RUNS', quick ? 5 : 10, 1, 100),
    runTimeoutMs: intEnv('BENCH_RUN_TIMEOUT_S', 600, 10, 7200) * 1000,
  };
}

// ---------------------------------------------------------------------------------------------
// Data

function makeData(work: string, s: Settings): Data {
  const big = path.join(work, 'data', 'big.bin');
  fs.mkdirSync(path.dirname(big), { recursive: true });
  if (s.cases.has('big')) randomFile(big, s.bigBytes);
  // Like the integration tests: 10 top-level directories with 19 below each, 10 files in every one.
  const tree = path.join(work, 'data', 'tree');
  const shape = s.cases.has('tree') ? makeTree(tree, { top: s.treeTop, sub: s.treeSub, perDir: s.filesPerDir, size: s.smallSize }) : { files: 0, dirs: 0 };
  const treeFiles = shape.files;
  const treeDirs = shape.dirs;
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

// ---------------------------------------------------------------------------------------------
// Tools

/** How each tool copies each workload into `dest` (a fresh, existing directory). */
function invocation(env: ToolEnv, data: Data, c: CaseId, tool: ToolId, dest: string): Invocation {
  switch (c) {
    case 'big': {
      const to = remote(env, path.join(dest, 'big.bin'));
      if (tool === 'safe-scp') return safeScp(env, [data.big, to]);
      if (tool === 'scp') return scp(env, [], [data.big, to]);
      if (tool === 'scp-gcm') return scp(env, ['-c', 'aes128-gcm@openssh.com'], [data.big, to]);
      if (tool === 'rsync') return rsync(env, [data.big, to]);
      if (tool === 'cp') return { file: 'cp', args: [data.big, path.join(dest, 'big.bin')], env: env.plainEnv };
      break;
    }
    case 'tree': {
      const to = remote(env, path.join(dest, 'tree'));
      if (tool === 'safe-scp') return safeScp(env, ['-r', data.tree, to]);
      if (tool === 'scp') return scp(env, ['-r'], [data.tree, to]);
      if (tool === 'scp-gcm') return scp(env, ['-r', '-c', 'aes128-gcm@openssh.com'], [data.tree, to]);
      if (tool === 'rsync') return rsync(env, [data.tree, remote(env, `${dest}/`)]);
      if (tool === 'cp') return { file: 'cp', args: ['-r', data.tree, path.join(dest, 'tree')], env: env.plainEnv };
      break;
    }
    case 'many': {
      const to = remote(env, `${dest}/`);
      if (tool === 'safe-scp') return safeScp(env, [...data.singles, to]);
      if (tool === 'scp-one-call') return scp(env, [], [...data.singles, to]);
      if (tool === 'scp-per-file') {
        // The naive deploy script: one scp (one new SSH connection) per file.
        const scpCmd = ['scp', ...env.sshOptions, '-P', String(env.port)].map(shellQuote).join(' ');
        const script = `to=$1; shift; for f in "$@"; do ${scpCmd} "$f" "$to" || exit 1; done`;
        return { file: '/bin/sh', args: ['-c', script, 'sh', to, ...data.singles], env: env.plainEnv };
      }
      break;
    }
  }
  throw new Error(`no invocation for ${tool} on ${c}`);
}

function verify(data: Data, c: CaseId, dest: string): string | undefined {
  try {
    if (c === 'big') {
      const size = fs.statSync(path.join(dest, 'big.bin')).size;
      return size === fs.statSync(data.big).size ? undefined : `big.bin has ${size} bytes`;
    }
    if (c === 'tree') {
      const n = countFiles(path.join(dest, 'tree'));
      return n === data.treeFiles ? undefined : `tree has ${n} of ${data.treeFiles} files`;
    }
    const n = countFiles(dest);
    return n === data.singles.length ? undefined : `${n} of ${data.singles.length} files arrived`;
  } catch (err: unknown) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** The loopback section: tools straight at the private sshd. */
export async function runLoopback(sshd: Sshd): Promise<SectionResult> {
  const s = settings();
  const work = fs.mkdtempSync(path.join(benchDir(4 * s.bigBytes + 512 * 2 ** 20), 'safe-scp-bench-'));
  try {
    log(`bench: making data in ${work} ...`);
    const data = makeData(work, s);
    const env = makeToolEnv(sshd, work, sshd.port);
    const loadBefore = os.loadavg()[0] ?? 0;
    if (loadBefore > os.cpus().length / 2) log(`bench: WARNING: load average ${loadBefore.toFixed(2)} on ${os.cpus().length} cores; other work will distort the numbers`);
    const scpCipher = firstLine('sh', ['-c', `ssh -F /dev/null -G ${sshd.host} | sed -n 's/^ciphers //p'`]).split(',')[0] ?? '';
    const { safeCipher, binding } = await warmUp(env, work, data.targets);
    log(`bench: loopback; ssh2 native crypto binding: ${binding ? 'present' : 'MISSING (expect ~40% less throughput)'}`);
    // The first big file written after the data is made lands in memory the VM has not touched yet: on tmpfs
    // here that cost the first measured run ~1.3 s more than the rest, always round 1's first tool. One
    // copy, deleted, takes that cost before anything is measured.
    if (s.cases.has('big')) {
      fs.copyFileSync(data.big, path.join(data.targets, 'warm.bin'));
      fs.rmSync(path.join(data.targets, 'warm.bin'));
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
          if (wasInterrupted()) throw new Error('interrupted');
          if (pastDeadline()) break;
          const dest = path.join(data.targets, `${c.id}-${tool}-${round}-${seq++}`);
          fs.mkdirSync(dest);
          const inv = invocation(env, data, c.id, tool, dest);
          const r = await run(inv.file, inv.args, { env: inv.env, timeoutMs: s.runTimeoutMs });
          const problem = r.code !== 0 ? `exit ${r.code}` : verify(data, c.id, dest);
          // Thousands of small files stay until the end: deleting them would slow the next run's creates (makeData).
          if (c.id === 'big' || problem) fs.rmSync(dest, { recursive: true, force: true });
          if (problem) throw new Error(`${tool} on ${c.id} failed (${problem}):\n${r.output}`);
          const key = `${c.id}/${tool}`;
          samples.set(key, [...(samples.get(key) ?? []), sampleOf(r)]);
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
        if (wasInterrupted()) throw new Error('interrupted');
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

    return await loopbackReport({ s, data, cases, samples, bytesOf, startup, safeCipher, scpCipher, binding, loadBefore });
  } finally {
    fs.rmSync(work, { recursive: true, force: true, maxRetries: 3 });
  }
}
