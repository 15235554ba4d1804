// The transfer over an open session, ended by a watchdog when it makes no progress for --stall-timeout.
import { isSafeScpError } from '../errors.js';
import type { ResolvedConfig } from '../config.js';
import { type Session, type Tunnel } from '../ssh/connect.js';
import { DOWNLOAD_FILES_IN_FLIGHT, download } from '../transfer/download.js';
import { TransferState } from '../transfer/progress.js';
import { UPLOAD_DEFAULTS, upload } from '../transfer/upload.js';
import type { Prepared } from './prepare.js';

/** Runs the transfer; a watchdog ends a connection that makes no progress for --stall-timeout. */
export async function transferWithWatchdog(session: Session, tunnels: readonly Tunnel[], config: ResolvedConfig, prepared: Prepared, state: TransferState, signal: AbortSignal): Promise<void> {
  state.lastProgress = Date.now();
  const watchdog = setInterval(() => {
    const idle = Date.now() - Math.max(state.lastProgress, session.channels.lastActivity);
    if (session.channels.pending > 0 && idle > config.stallTimeoutMs) {
      session.markStalled();
      session.client.destroy();
    }
  }, Math.min(1000, config.stallTimeoutMs));
  // On interrupt, transfers stop between requests and remove their temp files while the
  // connection still works; the connection is cut only if that takes too long.
  state.signal = signal;
  let hardStop: NodeJS.Timeout | undefined;
  const onAbort = (): void => {
    hardStop = setTimeout(() => session.client.destroy(), 3000);
    hardStop.unref();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  let ok = false;
  try {
    const options = { ...UPLOAD_DEFAULTS, preserve: config.preserve, staged: config.staged, update: config.update, inplace: config.inplace, channels: config.channels };
    const work =
      config.direction === 'upload'
        ? prepared.localSources().then((sources) => {
            const files = sources.flatMap((s) => s.items).filter((i) => i.type === 'file');
            state.started({ bytesTotal: files.reduce((sum, i) => sum + i.size, 0), filesTotal: files.length });
            return upload(session.channels, sources, config.target, options, state, prepared.prefetch);
          })
        : (state.started({}), download(session.channels, config.sources, config.target, { ...options, filesInFlight: DOWNLOAD_FILES_IN_FLIGHT, recursive: config.recursive }, state));
    await Promise.race([work, session.lost, ...tunnels.map((t) => t.lost)]);
    ok = true;
  } catch (err: unknown) {
    if (signal.aborted && isSafeScpError(signal.reason)) throw signal.reason;
    throw err;
  } finally {
    state.ended(ok);
    clearInterval(watchdog);
    clearTimeout(hardStop);
    signal.removeEventListener('abort', onAbort);
  }
}
