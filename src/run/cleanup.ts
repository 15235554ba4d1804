// After a failed run: one short connection that removes what the dead attempts left on the server.
import { rm } from 'node:fs/promises';
import { isSafeScpError } from '../errors.js';
import type { HostTarget, ResolvedConfig } from '../config.js';
import type { Session, Tunnel } from '../ssh/connect.js';
import { TransferState } from '../transfer/progress.js';
import type { CopyDeps } from './prepare.js';

/** Bounds of the clean-up connection: it must not hold up a failed or interrupted run for long. */
export const CLEANUP_CONNECT_MS = 10_000;
const CLEANUP_TOTAL_MS = 15_000;

/**
 * Removes the temp files a failed attempt could not remove itself (its connection was gone), over one
 * fresh connection (through the same jump hosts, throttled like any attempt) that is never retried and
 * not counted as an attempt. Bounded in time: it must not hold up a failed or interrupted run for long.
 */
export async function removeLeftoverTemps(
  target: HostTarget,
  config: ResolvedConfig,
  state: TransferState,
  deps: CopyDeps,
  connect: (tunnels: Tunnel[], signal: AbortSignal) => Promise<Session>,
): Promise<void> {
  const where = `${target.host}:${target.port}`;
  if (config.direction === 'download') {
    for (const temp of [...state.temps]) {
      await rm(temp, { force: true }).then(() => state.temps.delete(temp), () => undefined);
    }
    return;
  }
  const tunnels: Tunnel[] = [];
  let session: Session | undefined;
  const bound = AbortSignal.timeout(CLEANUP_TOTAL_MS);
  const cut = (): void => {
    session?.client.destroy();
  };
  bound.addEventListener('abort', cut, { once: true });
  for (const file of state.staged.values()) state.temps.add(file.staged);
  state.staged.clear();
  try {
    session = await connect(tunnels, bound);
    for (const temp of [...state.temps]) {
      await session.fs.unlink(temp).then(
        () => state.temps.delete(temp),
        (err: unknown) => {
          // Already gone is fine; anything else leaves it listed below.
          if (isSafeScpError(err) && err.code === 'remote-no-such-path') state.temps.delete(temp);
        },
      );
    }
    if (state.temps.size === 0) deps.emit({ kind: 'debug', message: `removed the temporary files of the failed attempt on ${where}` });
  } catch (err: unknown) {
    deps.emit({ kind: 'debug', message: `could not connect to ${where} to remove temporary files: ${err instanceof Error ? err.message : String(err)}` });
  } finally {
    bound.removeEventListener('abort', cut);
    session?.close();
    for (const tunnel of tunnels.reverse()) tunnel.close();
  }
  if (state.temps.size > 0) {
    deps.emit({ kind: 'debug', message: `temporary files left on ${where}: ${[...state.temps].join(', ')}` });
  }
}

