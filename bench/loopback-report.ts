// The loopback section's tables and acceptance ratios (see loopback.ts for the runs).
import os from 'node:os';
import path from 'node:path';
import { f0, f2, f3, fileSystemOf, machine, summarize, type SectionResult, type Summary } from './common.js';
import { pastDeadline, type Sample } from './measure.js';

export type CaseId = 'big' | 'tree' | 'many';
export type ToolId = 'safe-scp' | 'scp' | 'scp-gcm' | 'rsync' | 'scp-per-file' | 'scp-one-call' | 'cp';

export interface Settings {
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

export interface Data {
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

export const CASES: ReadonlyArray<{ id: CaseId; title: string; tools: ToolId[] }> = [
  { id: 'big', title: 'big file upload', tools: ['safe-scp', 'scp', 'scp-gcm', 'rsync', 'cp'] },
  { id: 'tree', title: 'tree upload (-r)', tools: ['safe-scp', 'scp', 'rsync', 'cp'] },
  { id: 'many', title: 'separate files', tools: ['safe-scp', 'scp-per-file', 'scp-one-call'] },
];

export const TOOL_LABEL: Record<ToolId, string> = {
  'safe-scp': 'safe-scp',
  scp: '`scp` (default cipher)',
  'scp-gcm': '`scp -c aes128-gcm@openssh.com`',
  rsync: '`rsync -a -e ssh`',
  'scp-per-file': '`scp` once per file',
  'scp-one-call': '`scp` (all files, one call)',
  cp: 'local `cp` (no SSH: the file-system floor)',
};

// ---------------------------------------------------------------------------------------------

export interface LoopbackRuns {
  s: Settings;
  data: Data;
  cases: ReadonlyArray<{ id: CaseId; title: string; tools: ToolId[] }>;
  samples: ReadonlyMap<string, Sample[]>;
  bytesOf: Record<CaseId, number>;
  startup: { node: Summary; safeScp: Summary; overheadMs: number } | undefined;
  safeCipher: string;
  scpCipher: string;
  binding: boolean;
  loadBefore: number;
}

export async function loopbackReport(input: LoopbackRuns): Promise<SectionResult> {
  const { s, data, cases, samples, bytesOf, startup, safeCipher, scpCipher, binding, loadBefore } = input;
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
    // Issue 15: loopback is a second opinion after the WAN section; no slower than default scp, without ssh2's private state.
    { criterion: 'big: safe-scp throughput / default `scp`', target: '>= 1.0', value: ratio(get('big', 'scp'), safeBig), ok: (v: number) => v >= 1.0 },
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
  const load = { before: Number(loadBefore.toFixed(2)), after: Number((os.loadavg()[0] ?? 0).toFixed(2)) };
  const lines: string[] = [];
  lines.push(
    `Machine: ${info['cpu']}, ${info['cores']} cores, ${info['memoryGiB']} GiB, ${info['os']}; Node ${info['node']}; ${info['openssh']}; ${info['rsync']}; first touch of a memory page ${info['pageTouchUs']} us.`,
    `Loopback, private sshd with sftp-server; ${s.rounds} round(s), tools alternating, medians. MB = 10^6 bytes. ` +
      (pastDeadline() ? '**Cut short by BENCH_DEADLINE_S: some runs did not happen.** ' : '') +
      `Big file ${s.bigBytes / 2 ** 20} MiB; tree ${data.treeFiles} x ${s.smallSize / 1024} KiB files in ${data.treeDirs} directories; ${data.singles.length} separate ${s.smallSize / 1024} KiB files.`,
    `Ciphers: safe-scp ${safeCipher || '?'}, default scp ${scpCipher || '?'}. ssh2 native crypto binding: ${binding ? 'present' : 'missing'}. ` +
      'CPU = user+sys of the client process tree; machine CPU = all busy CPU during the run (client + sshd); ' +
      'steal = CPU time the hypervisor gave to other guests during the run (the run was slowed by it). ' +
      (process.env['NODE_EXTRA_CA_CERTS'] ? 'NODE_EXTRA_CA_CERTS is set here: node, and so safe-scp, loads it at every start. ' : '') +
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
}
