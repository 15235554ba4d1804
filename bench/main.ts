// `npm run bench`: safe-scp against OpenSSH scp and rsync on a private OpenSSH sshd: first over emulated WAN links
// (wan.ts: the latency proxy of the harness between the tools and sshd), then on loopback (loopback.ts).
//
// Options (environment):
//   BENCH_SECTIONS=wan,loopback  which sections run, in that order
//   BENCH_DEADLINE_S=5400   bound for the whole bench: no run starts after it (what ran is reported, marked cut short)
//   BENCH_ROUNDS            rounds; every tool runs once per round, in rotating order; medians are reported
//                           (WAN default 5, loopback default 3)
//   BENCH_RUN_TIMEOUT_S=600 bound for one run (the process group is killed after it)
//   BENCH_OUT=bench-results.json
//   BENCH_DIR=...           where data and targets go; default /dev/shm when it is a tmpfs with room, else $TMPDIR
//   BENCH_LOGIN_HOME=clean  clean: the sshd's sessions get an empty HOME of the bench's own, so a login runs no start-up
//                           files of whoever runs the bench (a deploy account on a server is not the runner's account);
//                           own: the runner's HOME, start-up files and all (every tool pays them once per session)
// WAN section (wan.ts):
//   BENCH_LINKS=10/200,50/1000   links as RTT ms / Mbit/s
//   BENCH_WORKLOADS=file64,file256,tree,tree-again,file64-down,tree-down
//   BENCH_WAN_TOOLS=safe-scp,scp,rsync
// Loopback section (loopback.ts):
//   BENCH_QUICK=1           small data (64 MiB file, 200-file tree, 20 separate files), 1 round unless BENCH_ROUNDS
//   BENCH_BIG_MIB=512       size of the big file
//   BENCH_SINGLES=200       number of separate files
//   BENCH_CASES=big,tree,many,startup   which workloads to run
//   BENCH_TOOLS=...         only these tools (safe-scp, scp, scp-gcm, rsync, scp-per-file, scp-one-call, cp)
//   BENCH_STARTUP_RUNS=10   runs of `safe-scp --version` and of `node -e ''`
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { startSshd, type Sshd } from '../harness/sshd.js';
import { CLI, intEnv, listEnv, log, type SectionResult } from './common.js';
import { runLoopback } from './loopback.js';
import { onInterrupt, setDeadline } from './measure.js';
import { runWan } from './wan.js';

const SECTIONS = ['wan', 'loopback'] as const;

async function main(): Promise<number> {
  const chosen = listEnv('BENCH_SECTIONS') ?? new Set(SECTIONS);
  const unknown = [...chosen].filter((c) => !(SECTIONS as readonly string[]).includes(c));
  if (unknown.length > 0) throw new Error(`BENCH_SECTIONS: unknown ${unknown.join(', ')} (expected ${SECTIONS.join(', ')})`);
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (npm run bench does)`);
  const out = path.resolve(process.env['BENCH_OUT'] ?? 'bench-results.json');
  const deadlineS = intEnv('BENCH_DEADLINE_S', 5400, 60, 86_400);
  setDeadline(deadlineS * 1000);
  const removeHandlers = onInterrupt();
  const loginHome = process.env['BENCH_LOGIN_HOME'] ?? 'clean';
  if (loginHome !== 'clean' && loginHome !== 'own') throw new Error(`BENCH_LOGIN_HOME: "${loginHome}" is not clean or own`);
  const home = loginHome === 'clean' ? fs.mkdtempSync(path.join(os.tmpdir(), 'safe-scp-bench-home-')) : undefined;
  let sshd: Sshd | undefined;
  try {
    sshd = await startSshd({ logLevel: 'INFO', ...(home ? { extraConfig: [`SetEnv HOME=${home}`] } : {}) });
    log(`bench: sshd on ${sshd.host}:${sshd.port}, sessions ${home ? `with an empty HOME (${home})` : "with the runner's own HOME"}`);
    const results: Partial<Record<(typeof SECTIONS)[number], SectionResult>> = {};
    for (const section of SECTIONS) {
      if (!chosen.has(section)) continue;
      results[section] = section === 'wan' ? await runWan(sshd) : await runLoopback(sshd);
    }
    const sections = SECTIONS.flatMap((id) => {
      const r = results[id];
      return r ? [{ id, r }] : [];
    });
    const logins =
      loginHome === 'clean'
        ? "Logins on the bench's sshd get an empty HOME of the bench's own (no start-up files of its runner; BENCH_LOGIN_HOME=own keeps them)."
        : "Logins on the bench's sshd use the runner's own HOME and start-up files (BENCH_LOGIN_HOME=own)."
    const markdown = [logins, ...sections.map(({ id, r }) => `## ${id === 'wan' ? 'WAN (emulated)' : 'Loopback'}\n\n${r.markdown}`)].join('\n\n');
    const json = { date: new Date().toISOString(), loginHome, ...Object.fromEntries(sections.map(({ id, r }) => [id, r.json])), markdown };
    fs.writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
    process.stdout.write(`${markdown}\n\nresults written to ${path.basename(out)}\n`);
    return sections.some(({ r }) => r.failed) ? 1 : 0;
  } finally {
    removeHandlers();
    await sshd?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
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
