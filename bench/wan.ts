// The WAN section of `npm run bench`: the private sshd behind the harness's latency proxy (RTT and bandwidth per
// link), safe-scp against OpenSSH scp and rsync on a 64 MiB file, a 256 MiB file, a 2000-file tree and the same
// tree again unchanged. Every copy is checked byte for byte (sha256) and the target wiped after it.
import fs from 'node:fs';
import path from 'node:path';
import { startLatencyProxy } from '../harness/latency-proxy.js';
import type { Sshd } from '../harness/sshd.js';
import { benchDir, digests, f2, f3, intEnv, listEnv, log, makeTree, randomFile, sameDigests, type SectionResult } from './common.js';
import { pastDeadline, run, sampleOf, wasInterrupted, type Sample } from './measure.js';
import { makeToolEnv, remote, rsync, safeScp, safeScpKnows, scp, warmUp, type Invocation, type ToolEnv } from './tools.js';
import { linkLabel, wanReport, type WanRow } from './wan-report.js';
import { floorText, serverFloor } from './server-floor.js';

export { WAN_TOOLS, WORKLOADS, type Link, type WanSettings, type WanTool, type Workload } from './wan-types.js';
import { WAN_TOOLS, WORKLOADS, type Link, type WanSettings, type WanTool, type Workload } from './wan-types.js';

/** scp -r over latency is slow (one round trip per file): ~98 s at 10 ms, ~490 s at 50 ms. Above this RTT it is skipped. */
const SCP_TREE_MAX_RTT_MS = 10;

function parseLink(text: string): Link {
  const m = /^(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)$/.exec(text);
  if (!m) throw new Error(`BENCH_LINKS: "${text}" is not RTT_MS/MBIT (e.g. 10/200)`);
  const rttMs = Number(m[1]);
  const mbit = Number(m[2]);
  return { rttMs, mbit, id: text, label: linkLabel(rttMs, mbit) };
}

function pick<T extends string>(name: string, all: readonly T[]): T[] {
  const chosen = listEnv(name);
  if (!chosen) return [...all];
  const unknown = [...chosen].filter((c) => !(all as readonly string[]).includes(c));
  if (unknown.length > 0) throw new Error(`${name}: unknown ${unknown.join(', ')} (expected some of ${all.join(', ')})`);
  return all.filter((a) => chosen.has(a));
}

export function wanSettings(): WanSettings {
  return {
    rounds: intEnv('BENCH_ROUNDS', 5, 1, 50),
    links: [...(listEnv('BENCH_LINKS') ?? ['10/200', '50/1000'])].map(parseLink),
    workloads: pick('BENCH_WORKLOADS', WORKLOADS),
    tools: pick('BENCH_WAN_TOOLS', WAN_TOOLS),
    runTimeoutMs: intEnv('BENCH_RUN_TIMEOUT_S', 600, 10, 7200) * 1000,
  };
}

interface WanData {
  files: Record<'file64' | 'file256', { path: string; bytes: number; digests: Map<string, string> }>;
  tree: WanTree;
  tree16k: WanTree;
  targets: string;
}

interface WanTree {
  path: string;
  files: number;
  dirs: number;
  bytes: number;
  digests: Map<string, string>;
}

function makeWanData(work: string, s: WanSettings): WanData {
  const dir = path.join(work, 'data');
  fs.mkdirSync(dir, { recursive: true });
  const file = (name: 'file64' | 'file256', mib: number): WanData['files']['file64'] => {
    const p = path.join(dir, `${name}.bin`);
    const wanted = s.workloads.includes(name) || (name === 'file64' && s.workloads.includes('file64-down'));
    if (wanted) randomFile(p, mib * 2 ** 20);
    return { path: p, bytes: mib * 2 ** 20, digests: wanted ? digests(p) : new Map() };
  };
  const tree = (name: string, wanted: boolean, shape: { top: number; sub: number; perDir: number; size: number }): WanTree => {
    const p = path.join(dir, name);
    const made = wanted ? makeTree(p, shape) : { files: 0, dirs: 0 };
    return { path: p, ...made, bytes: made.files * shape.size, digests: wanted ? digests(p) : new Map() };
  };
  const targets = path.join(work, 'targets');
  fs.mkdirSync(targets);
  return {
    files: { file64: file('file64', 64), file256: file('file256', 256) },
    tree: tree('tree', s.workloads.includes('tree') || s.workloads.includes('tree-again') || s.workloads.includes('tree-down'), { top: 10, sub: 19, perDir: 10, size: 4096 }),
    tree16k: tree('tree16k', s.workloads.includes('tree16k'), { top: 10, sub: 9, perDir: 10, size: 16384 }),
    targets,
  };
}

/** How `tool` copies `workload` into the existing directory `dest`; undefined when that tool has no such row. */
function invocation(env: ToolEnv, data: WanData, workload: Workload, tool: WanTool, dest: string): Invocation {
  // Downloads: the server's side is this machine's data directory; `dest` is a local directory.
  if (workload === 'file64-down') {
    const from = remote(env, data.files.file64.path);
    return tool === 'safe-scp' ? safeScp(env, [from, `${dest}/`]) : tool === 'scp' ? scp(env, [], [from, `${dest}/`]) : rsync(env, [from, `${dest}/`]);
  }
  if (workload === 'tree-down') {
    const from = remote(env, data.tree.path);
    return tool === 'safe-scp' ? safeScp(env, ['-r', from, dest]) : tool === 'scp' ? scp(env, ['-r'], [from, dest]) : rsync(env, [from, `${dest}/`]);
  }
  if (workload === 'file64' || workload === 'file256') {
    const src = data.files[workload].path;
    const to = remote(env, path.join(dest, path.basename(src)));
    return tool === 'safe-scp' ? safeScp(env, [src, to]) : tool === 'scp' ? scp(env, [], [src, to]) : rsync(env, [src, to]);
  }
  // `-r tree host:dest` with dest an existing directory lands in dest/tree, like rsync's `tree host:dest/`.
  const tree = workload === 'tree16k' ? data.tree16k.path : data.tree.path;
  if (tool === 'rsync') return rsync(env, [tree, remote(env, `${dest}/`)]);
  if (tool === 'scp') return scp(env, ['-r'], [tree, remote(env, dest)]);
  return safeScp(env, [...(workload === 'tree-again' ? ['--update'] : []), '-r', tree, remote(env, dest)]);
}

function verify(data: WanData, workload: Workload, dest: string): string | undefined {
  try {
    if (workload === 'file64' || workload === 'file256' || workload === 'file64-down') {
      const f = data.files[workload === 'file64-down' ? 'file64' : workload];
      return sameDigests(f.digests, digests(path.join(dest, path.basename(f.path))));
    }
    const tree = workload === 'tree16k' ? data.tree16k : data.tree;
    return sameDigests(tree.digests, digests(path.join(dest, path.basename(tree.path))));
  } catch (err: unknown) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Why `tool` sits out `workload` on `link` this round, or undefined when it runs. */
function skipReason(link: Link, workload: Workload, tool: WanTool, round: number, hasUpdate: boolean): string | undefined {
  if (workload === 'tree-again' && tool === 'scp') return 'scp has no way to skip unchanged files';
  if (workload === 'tree-again' && tool === 'safe-scp' && !hasUpdate) return 'n/a (--update missing)';
  if ((workload === 'tree-down' || workload === 'tree16k') && tool === 'scp') return 'one round trip per file, as the 4 KiB tree upload row shows';
  if (workload === 'tree' && tool === 'scp') {
    if (link.rttMs > SCP_TREE_MAX_RTT_MS) return `skipped above ${SCP_TREE_MAX_RTT_MS} ms RTT (one round trip per file: ~490 s at 50 ms)`;
    if (round > 0) return 'once per link (one round trip per file: ~100 s at 10 ms)';
  }
  return undefined;
}

interface Outcome {
  samples: Map<string, Sample[]>;
  skipped: Map<string, string>;
  cut: boolean;
}

const keyOf = (link: Link, workload: Workload, tool: WanTool): string => `${link.id}|${workload}|${tool}`;

async function runLink(s: WanSettings, sshd: Sshd, work: string, data: WanData, link: Link, hasUpdate: boolean, out: Outcome): Promise<void> {
  const proxy = await startLatencyProxy({ targetPort: sshd.port, rttMs: link.rttMs, mbitPerS: link.mbit });
  try {
    const env = makeToolEnv(sshd, work, proxy.port);
    await warmUp(env, work, data.targets);
    let seq = 0;
    for (let round = 0; round < s.rounds; round++) {
      for (const workload of s.workloads) {
        const tools = s.tools.filter((tool) => {
          const why = skipReason(link, workload, tool, round, hasUpdate);
          if (why !== undefined && !out.samples.has(keyOf(link, workload, tool))) out.skipped.set(keyOf(link, workload, tool), why);
          return why === undefined;
        });
        // Rotate the order every round so no tool always runs first.
        const order = tools.map((_, i) => tools[(i + round) % tools.length] as WanTool);
        for (const tool of order) {
          if (wasInterrupted()) throw new Error('interrupted');
          if (pastDeadline()) {
            out.cut = true;
            return;
          }
          const dest = path.join(data.targets, `${link.id.replace('/', '-')}-${workload}-${tool}-${round}-${seq++}`);
          fs.mkdirSync(dest);
          const inv = invocation(env, data, workload, tool, dest);
          if (workload === 'tree-again') {
            // The same command once before, untimed: the target then holds what that tool's last deploy left.
            const seed = await run(inv.file, inv.args, { env: inv.env, timeoutMs: s.runTimeoutMs });
            const problem = seed.code !== 0 ? `exit ${seed.code}` : verify(data, workload, dest);
            if (problem) throw new Error(`${tool} seeding ${workload} over ${link.label} failed (${problem}):\n${seed.output}`);
          }
          const r = await run(inv.file, inv.args, { env: inv.env, timeoutMs: s.runTimeoutMs });
          const problem = r.code !== 0 ? `exit ${r.code}` : verify(data, workload, dest);
          fs.rmSync(dest, { recursive: true, force: true });
          if (problem) throw new Error(`${tool} on ${workload} over ${link.label} failed (${problem}):\n${r.output}`);
          const key = keyOf(link, workload, tool);
          out.samples.set(key, [...(out.samples.get(key) ?? []), sampleOf(r)]);
          out.skipped.delete(key);
          log(
            `bench: wan ${link.id.padEnd(7)} round ${round + 1}/${s.rounds} ${workload.padEnd(10)} ${tool.padEnd(8)} ${f3(r.wallS)} s  ` +
              `client cpu ${f2(r.cpuS)} s  proxy cpu ${f2(r.benchCpuS)} s  steal ${f2(r.stealS)} s`,
          );
        }
      }
    }
  } finally {
    await proxy.close();
  }
}

/**
 * What one session costs this server, straight to sshd (no proxy): the median wall time of three `ssh host true`,
 * the user's login shell and its start-up files included. Every SFTP channel, and every scp and rsync run, starts one.
 */
async function sessionStart(env: ToolEnv): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await run('ssh', [...env.sshOptions, '-p', String(env.port), `${env.sshd.user}@${env.sshd.host}`, 'true'], { env: env.plainEnv, timeoutMs: 30_000 });
    if (r.code === 0) times.push(r.wallS);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? NaN;
}

/** The WAN section: every selected link in turn, its own proxy in front of the shared sshd. */
export async function runWan(sshd: Sshd): Promise<SectionResult> {
  const s = wanSettings();
  const work = fs.mkdtempSync(path.join(benchDir(2 * 320 * 2 ** 20 + 256 * 2 ** 20), 'safe-scp-bench-wan-'));
  try {
    log(`bench: wan: making data in ${work} ...`);
    const data = makeWanData(work, s);
    const direct = makeToolEnv(sshd, work, sshd.port);
    const hasUpdate = await safeScpKnows(direct, '--update');
    if (!hasUpdate) log('bench: wan: the built safe-scp has no --update: the unchanged-tree row is n/a');
    const sessionStartS = await sessionStart(direct);
    log(`bench: wan: a session on this sshd (ssh true, no proxy) takes ${sessionStartS.toFixed(2)} s`);
    const floor = s.workloads.includes('tree') ? await serverFloor(data.tree.path, work) : 'the tree workload was not selected';
    log(`bench: wan: sftp-server alone on the tree: ${floorText(floor)}`);
    const out: Outcome = { samples: new Map(), skipped: new Map(), cut: false };
    for (const link of s.links) {
      if (out.cut) break;
      await runLink(s, sshd, work, data, link, hasUpdate, out);
    }
    const bytes: Record<Workload, number> = {
      file64: data.files.file64.bytes,
      file256: data.files.file256.bytes,
      tree: data.tree.bytes,
      'tree-again': 0,
      tree16k: data.tree16k.bytes,
      'file64-down': data.files.file64.bytes,
      'tree-down': data.tree.bytes,
    };
    const rows: WanRow[] = [];
    for (const link of s.links) {
      for (const workload of s.workloads) {
        for (const tool of WAN_TOOLS) {
          const key = keyOf(link, workload, tool);
          const samples = out.samples.get(key);
          const skipped = out.skipped.get(key);
          if (samples || skipped) rows.push({ link, workload, tool, bytes: bytes[workload], samples: samples ?? [], note: skipped });
        }
      }
    }
    return wanReport(s, rows, { treeFiles: data.tree.files, treeDirs: data.tree.dirs, cut: out.cut, hasUpdate, sessionStartS, serverFloor: floor });
  } finally {
    fs.rmSync(work, { recursive: true, force: true, maxRetries: 3 });
  }
}
