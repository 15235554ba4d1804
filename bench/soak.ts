// `npm run soak`: many CLI runs through a proxy that resets a share of connections at random (seeded),
// against a private OpenSSH sshd on loopback. Exits 0 only if every run copied its file intact.
//
// Environment (all optional): SOAK_RUNS (200), SOAK_RATE (0.3), SOAK_SEED (random, printed),
// SOAK_PARALLEL (4 processes at once), SOAK_RETRIES (10), SOAK_DEADLINE (600s, whole soak).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startSshd, type Sshd } from '../harness/sshd.js';
import { CLI } from './common.js';

function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  return n;
}

const RUNS = envInt('SOAK_RUNS', 200, 1, 10_000);
const PARALLEL = envInt('SOAK_PARALLEL', 4, 1, 32);
const RETRIES = envInt('SOAK_RETRIES', 10, 0, 100);
const SEED = envInt('SOAK_SEED', randomInt(1, 2 ** 31 - 1), 0, 2 ** 32 - 1);
const DEADLINE_MS = envInt('SOAK_DEADLINE', 600, 10, 24 * 3600) * 1000;
const RATE = Number(process.env['SOAK_RATE'] ?? '0.3');
/** One run may not take longer than this (the CLI's own --timeout is a bit shorter). */
const RUN_TIMEOUT_MS = 90_000;

interface RunOutcome {
  index: number;
  code: number | null;
  signal: string | null;
  durationMs: number;
  attempts: number;
  causes: string[];
  intact: boolean;
  tempsLeft: number;
  stderr: string;
}

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function main(): Promise<number> {
  if (!(RATE >= 0 && RATE < 1)) throw new Error(`SOAK_RATE must be in [0, 1), got ${process.env['SOAK_RATE']}`);
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const started = Date.now();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'safe-scp-soak-'));
  const children = new Set<ChildProcess>();
  let sshd: Sshd | undefined;
  let proxy: FaultProxy | undefined;
  let timedOut = false;

  console.log(`soak: ${RUNS} runs, ${PARALLEL} at once, proxy resets ${Math.round(RATE * 100)}% of connections before the banner, seed ${SEED} (SOAK_SEED=${SEED} repeats the fault sequence)`);
  console.log(`soak: each run: --retries ${RETRIES} --retry-delay 100ms --retry-max-delay 1s --host-interval 0, shared --state-dir; chance that ${RETRIES + 1} attempts in a row fail by design: ${(RATE ** (RETRIES + 1)).toExponential(1)} per run`);

  // Bounded in time as a whole: past the deadline no new run starts and running ones are killed (by PID).
  const deadline = setTimeout(() => {
    timedOut = true;
    for (const child of children) child.kill('SIGKILL');
  }, DEADLINE_MS);
  deadline.unref();

  try {
    sshd = await startSshd({});
    proxy = await startFaultProxy({ targetPort: sshd.port, plan: { rate: RATE, seed: SEED, fault: { kind: 'reset', at: 'before-banner' } } });
    const dest = path.join(work, 'srv');
    const src = path.join(work, 'src');
    fs.mkdirSync(dest);
    fs.mkdirSync(src);
    const home = path.join(work, 'home');
    fs.mkdirSync(home);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SAFE_SCP_') && !k.startsWith('SSH_') && k !== 'GITLAB_CI') env[k] = v;
    Object.assign(env, {
      HOME: home,
      SSH_PRIVATE_KEY: fs.readFileSync(sshd.userKeyPath, 'utf8'),
      SSH_KNOWN_HOSTS: sshd.knownHostsLines('127.0.0.1', proxy.port),
    });
    const args = (file: string): string[] => [
      CLI, '--json', '-P', String(proxy?.port), '--state-dir', path.join(work, 'state'),
      '--retries', String(RETRIES), '--retry-delay', '100ms', '--retry-max-delay', '1s', '--host-interval', '0',
      '--connect-timeout', '10s', '--timeout', `${RUN_TIMEOUT_MS / 1000 - 10}s`,
      file, `${sshd?.user}@127.0.0.1:${dest}/`,
    ];

    const runOne = (index: number): Promise<RunOutcome> => {
      const name = `file-${String(index).padStart(4, '0')}.txt`;
      const content = randomBytes(1024 + (index % 7) * 100);
      const file = path.join(src, name);
      fs.writeFileSync(file, content);
      const runStart = Date.now();
      const child = spawn(process.execPath, args(file), { env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      const guard = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
      return new Promise((resolve) => {
        child.on('close', (code, signal) => {
          clearTimeout(guard);
          children.delete(child);
          let attempts = 0;
          let causes: string[] = [];
          try {
            const report = JSON.parse(stdout) as { attempts: Array<{ cause: string | null }> };
            attempts = report.attempts.length;
            causes = report.attempts.map((a) => a.cause).filter((c): c is string => c !== null);
          } catch {
            // No JSON (killed, crashed): counted as a failure below.
          }
          const landed = path.join(dest, name);
          const intact = fs.existsSync(landed) && sha(fs.readFileSync(landed)) === sha(content);
          const tempsLeft = fs.readdirSync(dest).filter((n) => n.startsWith(`.${name}.safe-scp-`)).length;
          resolve({ index, code, signal, durationMs: Date.now() - runStart, attempts, causes, intact, tempsLeft, stderr });
        });
      });
    };

    const outcomes: RunOutcome[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < RUNS && !timedOut) {
        const outcome = await runOne(next++);
        outcomes.push(outcome);
        if (outcomes.length % 25 === 0) console.log(`soak: ${outcomes.length}/${RUNS} done, ${((Date.now() - started) / 1000).toFixed(1)}s`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, RUNS) }, worker));

    const ok = outcomes.filter((o) => o.code === 0 && o.intact && o.tempsLeft === 0);
    const failed = outcomes.filter((o) => !ok.includes(o));
    const histogram = new Map<number, number>();
    for (const o of outcomes) histogram.set(o.attempts, (histogram.get(o.attempts) ?? 0) + 1);
    const causes = new Map<string, number>();
    for (const o of outcomes) for (const c of o.causes) causes.set(c, (causes.get(c) ?? 0) + 1);
    const durations = outcomes.map((o) => o.durationMs).sort((a, b) => a - b);
    const totalAttempts = outcomes.reduce((sum, o) => sum + o.attempts, 0);
    const failedAttempts = outcomes.reduce((sum, o) => sum + o.causes.length, 0);
    const elapsed = Date.now() - started;

    console.log('');
    console.log(`soak: ${ok.length}/${RUNS} succeeded, ${failed.length} failed${timedOut ? `, STOPPED at the ${DEADLINE_MS / 1000}s deadline` : ''}`);
    console.log(`soak: attempts per run: ${[...histogram].sort((a, b) => a[0] - b[0]).map(([n, c]) => `${n}: ${c}`).join(', ')}`);
    console.log(`soak: failed attempts by cause: ${[...causes].map(([c, n]) => `${c} ${n}`).join(', ') || 'none'}`);
    console.log(`soak: proxy saw ${proxy.connections} connections, reset ${proxy.faultsTriggered} (${((100 * proxy.faultsTriggered) / Math.max(1, proxy.connections)).toFixed(1)}%); reports count ${totalAttempts} attempts, ${failedAttempts} failed`);
    if (totalAttempts !== proxy.connections || failedAttempts !== proxy.faultsTriggered) {
      console.log('soak: WARNING: the reports and the proxy disagree on the number of (failed) connections');
    }
    console.log(`soak: run time p50 ${percentile(durations, 50)}ms, p95 ${percentile(durations, 95)}ms, max ${durations.at(-1) ?? 0}ms`);
    console.log(`soak: total ${(elapsed / 1000).toFixed(1)}s (seed ${SEED})`);
    for (const f of failed.slice(0, 5)) {
      console.log(`soak: run ${f.index} failed: exit ${f.code ?? f.signal}, intact ${f.intact}, temps left ${f.tempsLeft}\n${f.stderr.trim()}`);
    }
    return ok.length === RUNS && !timedOut ? 0 : 1;
  } finally {
    clearTimeout(deadline);
    for (const child of children) child.kill('SIGKILL');
    await proxy?.close();
    await sshd?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`soak: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
