// The throttle slot is a lease: renewed by its holder, lost when the holder stops renewing it (SIGSTOP, a frozen VM).
import { mkdtemp, readdir, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { acquireHostSlot, hostStateDir, HostSlotTimeoutError, type SlotWait, type ThrottleClock } from '../../../src/throttle/host-limiter.js';

let work: string;
let n = 0;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'safe-scp-lease-unit-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function freshStateDir(): string {
  n += 1;
  return path.join(work, `state-${n}`);
}

/** Virtual time: sleep() advances now() at once. */
function fakeClock(start = 1_000_000): ThrottleClock {
  let now = start;
  return {
    now: () => now,
    sleep: async (ms, signal) => {
      signal?.throwIfAborted();
      now += ms;
    },
  };
}

/** A leased slot of a live process (this one) last renewed at `renewedAt` (clock time). */
async function plantLease(stateDir: string, host: string, renewMs: number, createdAt: number, renewedAt: number): Promise<string> {
  const file = path.join(await hostStateDir(stateDir, host), 'slot-planted.json');
  await writeFile(file, JSON.stringify({ pid: process.pid, hostname: os.hostname(), createdAt, token: 'planted-1', renewMs }));
  await utimes(file, renewedAt / 1000, renewedAt / 1000);
  return file;
}

test('a holder that stopped renewing loses its slot after 3 renewal periods, though its pid lives; the waiter is told who held it', async () => {
  const stateDir = freshStateDir();
  const clock = fakeClock();
  const t0 = clock.now();
  await plantLease(stateDir, 'h:22', 1_000, t0 - 60_000, t0);
  const waits: SlotWait[] = [];
  const slot = await acquireHostSlot('h:22', { stateDir, concurrency: 1, intervalMs: 0, clock, onWait: (w) => waits.push(w) });
  // Not before the lease ran out (3 x 1 s), and at the first check after it (polls are 20-100 ms apart).
  expect(slot.waitedMs).toBeGreaterThan(3_000);
  expect(slot.waitedMs).toBeLessThanOrEqual(3_100);
  expect(slot.reclaimed).toEqual([{ owner: expect.objectContaining({ pid: process.pid, token: 'planted-1' }), reason: 'lease-expired' }]);
  expect(slot.waitedFor.map((h) => h.owner.pid)).toEqual([process.pid]);
  expect(waits.length).toBeGreaterThan(10);
  for (const w of waits) {
    expect(w.reason).toBe('busy');
    expect(w.holders).toEqual([{ owner: expect.objectContaining({ pid: process.pid, createdAt: t0 - 60_000, renewMs: 1_000 }), renewedAt: t0 }]);
  }
  await slot.release();
});

test('a lease renewed within 3 periods is honoured, and the legacy age limit does not apply to it', async () => {
  const stateDir = freshStateDir();
  const clock = fakeClock();
  // Created an hour ago, renewed 2.5 s ago with a 1 s period: still held.
  await plantLease(stateDir, 'h:22', 1_000, clock.now() - 3_600_000, clock.now() - 2_500);
  await expect(acquireHostSlot('h:22', { stateDir, concurrency: 1, intervalMs: 0, clock, maxWaitMs: 400, staleAfterMs: 60_000 })).rejects.toThrow(
    HostSlotTimeoutError,
  );
});

test('a live holder that keeps renewing keeps its slot for many lease periods', async () => {
  const stateDir = freshStateDir();
  const holder = await acquireHostSlot('h:22', { stateDir, concurrency: 1, intervalMs: 0, leaseRenewMs: 25 });
  try {
    // 600 ms is 24 renewal periods, 8 lease lifetimes; staleAfterMs (for lease-less slots) is far shorter too.
    await expect(acquireHostSlot('h:22', { stateDir, concurrency: 1, intervalMs: 0, maxWaitMs: 600, staleAfterMs: 50 })).rejects.toThrow(
      HostSlotTimeoutError,
    );
    expect(holder.lost).toBe(false);
  } finally {
    await holder.release();
  }
  const next = await acquireHostSlot('h:22', { stateDir, concurrency: 1, intervalMs: 0, maxWaitMs: 0 });
  await next.release();
});

test('a holder whose slot was taken away notices at its next renewal, and release stops renewing', async () => {
  const stateDir = freshStateDir();
  const dir = await hostStateDir(stateDir, 'h:22');
  const holder = await acquireHostSlot('h:22', { stateDir, concurrency: 1, intervalMs: 0, leaseRenewMs: 20 });
  const [file] = (await readdir(dir)).filter((name) => name.startsWith('slot-'));
  if (file === undefined) throw new Error('no slot file');
  await unlink(path.join(dir, file));
  for (let i = 0; i < 100 && !holder.lost; i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(holder.lost).toBe(true);
  await holder.release();
  expect((await readdir(dir)).filter((name) => name.startsWith('slot-'))).toEqual([]);
});

test('leaseRenewMs must be positive', async () => {
  await expect(acquireHostSlot('h:22', { stateDir: freshStateDir(), concurrency: 1, intervalMs: 0, leaseRenewMs: 0 })).rejects.toThrow(RangeError);
});
