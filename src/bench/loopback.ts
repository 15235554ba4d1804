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
  fileSystemOf,
  firstLine,
  intEnv,
  listEnv,
  log,
  machine,
  makeTree,
  randomFile,
  summarize,
  type SectionResult,
  type Summary,
} from './common.js';
import { pastDeadline, run, sampleOf, wasInterrupted, type Sample } from './measure.js';
import { makeToolEnv, remote, rsync, safeScp, scp, shellQuote, warmUp, type Invocation, type ToolEnv } from './tools.js';

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
}

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
        (pastDeadline() ? '**Cut short by BENCH_DEADLINE_S: some runs did not happen.** ' : '') +
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
      settings: { ...s, cases: [...s.cases], tools: s.tools ? [...s.tools] : undefined },
      data: { bigBytes: s.bigBytes, treeFiles: data.treeFiles, treeDirs: data.treeDirs, smallFileBytes: s.smallSize, separateFiles: data.singles.length },
      results,
      startup: startup ?? null,
      acceptance,
      markdown,
    };
    return { markdown, json, failed: acceptance.some((a) => a.pass === false) };
  } finally {
    fs.rmSync(work, { recursive: true, force: true, maxRetries: 3 });
  }
}
