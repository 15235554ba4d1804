// Takes a host's throttle slot for a run, telling the run's event sink who it waits for and why.
import type { EventSink, SlotHolderInfo } from '../log/events.js';
import { acquireHostSlot, type HostSlot, type SlotHolder, type SlotWait } from './host-limiter.js';

export interface RunSlotOptions {
  readonly host: string;
  readonly port: number;
  readonly stateDir: string;
  readonly concurrency: number;
  readonly intervalMs: number;
  readonly signal: AbortSignal | undefined;
  readonly emit: EventSink;
}

/** The first wait worth a line without -v, then one line per this much more waiting. */
const WAIT_NOTICE_FIRST_MS = 2_000;
const WAIT_NOTICE_EVERY_MS = 10_000;
/** Checks run every 20-100 ms; an unchanged picture is reported at most this often (the -v lines). */
const WAIT_REPEAT_MS = 1_000;

/**
 * acquireHostSlot with events: `throttle-waiting` while the host is busy (at each check where the holders
 * changed, else once a second; `notice` marks the ones shown without -v: at 2 s, then every 10 s), and
 * `throttle-wait` once the slot is taken after a wait, naming who held it and any slot freed meanwhile.
 */
export async function waitForRunSlot(options: RunSlotOptions): Promise<HostSlot> {
  const { host, port, emit } = options;
  let nextNotice = WAIT_NOTICE_FIRST_MS;
  let lastEmitAt: number | undefined;
  let lastPicture = '';
  const onWait = (wait: SlotWait): void => {
    const holders = wait.holders.map((h) => holderInfo(h, wait.now));
    const picture = `${wait.reason}:${holders.map((h) => h.pid).join(',')}`;
    const notice = wait.waitedMs >= nextNotice;
    if (notice) nextNotice = wait.waitedMs + WAIT_NOTICE_EVERY_MS;
    if (!notice && picture === lastPicture && lastEmitAt !== undefined && wait.waitedMs - lastEmitAt < WAIT_REPEAT_MS) return;
    lastPicture = picture;
    lastEmitAt = wait.waitedMs;
    emit({ kind: 'throttle-waiting', host, port, waitedMs: wait.waitedMs, concurrency: wait.concurrency, reason: wait.reason, holders, notice });
  };
  const slot = await acquireHostSlot(`${host}:${port}`, {
    stateDir: options.stateDir,
    concurrency: options.concurrency,
    intervalMs: options.intervalMs,
    signal: options.signal,
    onWait,
  });
  if (slot.waitedMs >= 50 || slot.reclaimed.length > 0) {
    const freed = slot.reclaimed.flatMap((r) => (r.owner ? [{ pid: r.owner.pid, hostname: r.owner.hostname, reason: r.reason }] : []));
    emit({
      kind: 'throttle-wait',
      host,
      port,
      waitedMs: slot.waitedMs,
      ...(slot.waitedFor.length > 0 ? { heldBy: slot.waitedFor.map((h) => holderInfo(h, slot.startedAt)) } : {}),
      ...(freed.length > 0 ? { freed } : {}),
    });
  }
  return slot;
}

function holderInfo(holder: SlotHolder, now: number): SlotHolderInfo {
  const { owner } = holder;
  return {
    pid: owner.pid,
    hostname: owner.hostname,
    since: new Date(owner.createdAt).toISOString(),
    heldMs: Math.max(0, now - owner.createdAt),
    ...(owner.renewMs !== undefined ? { renewedMsAgo: Math.max(0, now - holder.renewedAt) } : {}),
  };
}
