// Runs a copy: load keys and pins, plan, then per host connect (throttled, retried) and transfer.
import { SafeScpError, exitSeverity, isSafeScpError } from './errors.js';
import type { ResolvedConfig } from './config.js';
import { classifyLocalError } from './classify.js';
import type { AttemptEvidence } from './log/events.js';
import type { FileResult } from './transfer/progress.js';
import type { CopyResult, HostResult } from './result.js';

export type { CopyDeps } from './run/prepare.js';
import { emitPlan, prepare, type CopyDeps, type Prepared } from './run/prepare.js';
import { copyToHost } from './run/host.js';

/** Copies as configured. Never throws for a failed run: the result carries the exit code and cause. */
export async function copy(config: ResolvedConfig, deps: CopyDeps): Promise<CopyResult> {
  const started = Date.now();
  const attempts: AttemptEvidence[] = [];
  const files: FileResult[] = [];
  const runAbort = new AbortController();
  const onOuterAbort = (): void => runAbort.abort(deps.signal?.reason);
  deps.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const deadline = setTimeout(() => {
    runAbort.abort(new SafeScpError('timeout', `the whole run took longer than --timeout (${config.timeoutMs}ms)`, { phase: 'run' }));
  }, config.timeoutMs);
  deadline.unref();

  const finish = (hosts: HostResult[], error: SafeScpError | undefined): CopyResult => {
    clearTimeout(deadline);
    deps.signal?.removeEventListener('abort', onOuterAbort);
    const exitCode = error ? error.exitCode : 0;
    return { ok: !error, exitCode, cause: error?.code, error, attempts, files, hosts, durationMs: Date.now() - started };
  };

  for (const line of config.sshConfigLines) deps.emit({ kind: 'ssh-config', ...line });
  for (const message of config.sshConfigNotes) deps.emit({ kind: 'debug', message });
  let prepared: Prepared;
  try {
    prepared = await prepare(config, deps);
  } catch (err: unknown) {
    return finish([], isSafeScpError(err) ? err : classifyLocalError(err, 'prepare', config.sources.join(' ')));
  }

  if (config.dryRun) {
    try {
      emitPlan(config, await prepared.localSources(), deps.emit);
    } catch (err: unknown) {
      return finish([], isSafeScpError(err) ? err : classifyLocalError(err, 'prepare', config.sources.join(' ')));
    }
    return finish([], undefined);
  }

  const results: HostResult[] = [];
  const errors: SafeScpError[] = [];
  const queue = [...config.hosts];
  const worker = async (): Promise<void> => {
    for (let target = queue.shift(); target; target = queue.shift()) {
      const outcome = await copyToHost(target, config, prepared, deps, runAbort.signal, attempts);
      results.push(outcome.result);
      files.push(...outcome.files);
      if (outcome.error) errors.push(outcome.error);
    }
  };
  await Promise.all(Array.from({ length: Math.min(config.parallel, config.hosts.length) }, worker));
  prepared.prefetch.clear();
  results.sort((a, b) => config.hosts.findIndex((h) => h.host === a.host && h.port === a.port) - config.hosts.findIndex((h) => h.host === b.host && h.port === b.port));
  const worst = errors.reduce<SafeScpError | undefined>((w, e) => (!w || exitSeverity(e.exitCode) > exitSeverity(w.exitCode) ? e : w), undefined);
  return finish(results, worst);
}

