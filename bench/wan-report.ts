// The WAN section's tables: medians per link, workload and tool, and the ratios against the acceptance targets.
import os from 'node:os';
import { f2, f3, f0, machine, summarize, type SectionResult, type Summary } from './common.js';
import type { Sample } from './measure.js';
import { floorText, type ServerFloor } from './server-floor.js';
import type { Link, WanSettings, WanTool, Workload } from './wan-types.js';

export interface WanRow {
  link: Link;
  workload: Workload;
  tool: WanTool;
  bytes: number;
  samples: Sample[];
  /** Why the row has no runs (skipped, n/a). */
  note: string | undefined;
}

/** `10 ms / 200 Mbit/s` for RTT 10 ms and 200 Mbit/s. */
export function linkLabel(rttMs: number, mbit: number): string {
  return `${rttMs} ms / ${mbit >= 1000 ? `${mbit / 1000} Gbit/s` : `${mbit} Mbit/s`}`;
}

const WORKLOAD_TITLE: Record<Workload, string> = {
  file64: '64 MiB file',
  file256: '256 MiB file',
  tree: 'tree (-r)',
  'tree-again': 'same tree, unchanged',
  tree16k: 'tree of 16 KiB files (-r)',
  'file64-down': '64 MiB file, download',
  'tree-down': 'tree (-r), download',
};

const TOOL_TITLE: Record<WanTool, string> = { 'safe-scp': 'safe-scp', scp: '`scp`', rsync: '`rsync -a -e ssh`' };


interface Target {
  link: string;
  workload: Workload;
  /** safe-scp's time over the other tool's (`over`), or the other's over safe-scp's (`under`). */
  criterion: string;
  other: WanTool;
  inverse: boolean;
  limit: number;
}

const TARGETS: readonly Target[] = [
  { link: '50/1000', workload: 'file256', criterion: 'safe-scp time / `scp` time', other: 'scp', inverse: false, limit: 0.6 },
  { link: '50/1000', workload: 'file64', criterion: 'safe-scp time / `scp` time', other: 'scp', inverse: false, limit: 0.8 },
  { link: '50/1000', workload: 'tree', criterion: 'safe-scp time / `rsync` time', other: 'rsync', inverse: false, limit: 0.75 },
  { link: '50/1000', workload: 'tree-again', criterion: 'safe-scp --update time / `rsync` time', other: 'rsync', inverse: false, limit: 1.25 },
  { link: '10/200', workload: 'tree', criterion: '`scp -r` time / safe-scp time', other: 'scp', inverse: true, limit: 30 },
  { link: '10/200', workload: 'tree', criterion: 'safe-scp time / `rsync` time', other: 'rsync', inverse: false, limit: 0.75 },
];

export function wanReport(
  s: WanSettings,
  rows: readonly WanRow[],
  info: { treeFiles: number; treeDirs: number; cut: boolean; hasUpdate: boolean; sessionStartS: number; serverFloor: ServerFloor },
): SectionResult {
  const summaries = new Map<string, Summary>();
  const key = (link: string, workload: Workload, tool: WanTool): string => `${link}|${workload}|${tool}`;
  for (const r of rows) if (r.samples.length > 0) summaries.set(key(r.link.id, r.workload, r.tool), summarize(r.samples, r.bytes));

  const m = machine();
  const lines: string[] = [
    `Machine: ${m['cpu']}, ${m['cores']} cores, ${m['memoryGiB']} GiB, ${m['os']}; Node ${m['node']}; ${m['openssh']}; ${m['rsync']}; first touch of a memory page ${m['pageTouchUs']} us. ` +
      `Load average (1 min) at the end: ${(os.loadavg()[0] ?? 0).toFixed(2)}.`,
    `Private sshd behind the harness's latency proxy (userspace, in the bench process: one-way delay RTT/2 and the ` +
      `bandwidth cap in each direction). Up to ${s.rounds} round(s), tools alternating, medians. MB = 10^6 bytes. ` +
      `Tree: 2000 x 4 KiB files in 200 directories; tree of 16 KiB files: 1000 in 100 directories. Every copy checked by sha256, target wiped after it. ` +
      'The unchanged tree: the same command once untimed, then timed (safe-scp `--update -r`, `rsync -a`). ' +
      'Downloads: the same file and tree, from the server into a local directory. ' +
      'Client CPU = user+sys of the client process tree; proxy CPU = the bench process (the proxy) during the run. ' +
      `A session on this sshd (\`ssh host true\` straight to it, no proxy: the login shell and its start-up files) took ${f2(info.sessionStartS)} s; ` +
      'every SFTP channel, and every scp and rsync run, starts one (safe-scp opens a second channel only where the work left outweighs it). ' +
      `sftp-server alone (started directly, safe-scp's SFTP client on its pipes: no ssh, no link) on the tree: ${floorText(info.serverFloor)}.` +
      (info.cut ? ' **Cut short by BENCH_DEADLINE_S: some runs did not happen.**' : ''),
    '',
    '| link | workload | tool | runs | median s | min s | max s | MB/s | time / safe-scp | client CPU s | proxy CPU s | steal s |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const lead = `| ${r.link.label} | ${WORKLOAD_TITLE[r.workload]} | ${TOOL_TITLE[r.tool]} |`;
    const sum = summaries.get(key(r.link.id, r.workload, r.tool));
    if (!sum) {
      lines.push(`${lead} 0 | ${r.note ?? 'not run'} | | | | | | | |`);
      continue;
    }
    const base = summaries.get(key(r.link.id, r.workload, 'safe-scp'));
    const vs = base ? `${f2(sum.medianS / base.medianS)}x` : '-';
    const mbs = r.bytes > 0 ? f0(sum.mbPerS) : '-';
    lines.push(`${lead} ${sum.runs} | ${f3(sum.medianS)} | ${f3(sum.minS)} | ${f3(sum.maxS)} | ${mbs} | ${vs} | ${f2(sum.cpuS)} | ${f2(sum.benchCpuS)} | ${f2(sum.stealS)} |`);
  }

  const acceptance = TARGETS.map((t) => {
    const safe = summaries.get(key(t.link, t.workload, 'safe-scp'));
    const other = summaries.get(key(t.link, t.workload, t.other));
    const value = safe && other ? (t.inverse ? other.medianS / safe.medianS : safe.medianS / other.medianS) : NaN;
    const pass = Number.isFinite(value) ? (t.inverse ? value >= t.limit : value <= t.limit) : null;
    const why = rows.find((r) => r.link.id === t.link && r.workload === t.workload && !summaries.has(key(t.link, t.workload, r.tool)))?.note;
    return { link: t.link, workload: t.workload, criterion: t.criterion, target: `${t.inverse ? '>=' : '<='} ${t.limit}`, value, pass, why };
  });
  lines.push('', '| link | workload | acceptance | target | measured | |', '|---|---|---|---|---:|---|');
  for (const a of acceptance) {
    const [rtt, mbit] = a.link.split('/').map(Number);
    const label = linkLabel(rtt ?? NaN, mbit ?? NaN);
    const verdict = a.pass === null ? `not run${a.why ? ` (${a.why})` : ''}` : a.pass ? 'pass' : '**FAIL**';
    lines.push(`| ${label} | ${WORKLOAD_TITLE[a.workload]} | ${a.criterion} | ${a.target} | ${f2(a.value)} | ${verdict} |`);
  }
  const markdown = lines.join('\n');
  const json = {
    machine: m,
    settings: { ...s, links: s.links.map((l) => l.id) },
    cutShort: info.cut,
    sessionStartS: info.sessionStartS,
    serverFloor: info.serverFloor,
    safeScpHasUpdate: info.hasUpdate,
    tree: { files: info.treeFiles, dirs: info.treeDirs },
    results: rows.map((r) => ({ link: r.link.id, workload: r.workload, tool: r.tool, note: r.note ?? null, summary: summaries.get(key(r.link.id, r.workload, r.tool)) ?? null })),
    acceptance,
    markdown,
  };
  return { markdown, json, failed: acceptance.some((a) => a.pass === false) };
}
