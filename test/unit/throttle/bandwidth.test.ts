// The -l limiter is a token bucket: after any idle gap, at most one burst plus the rate passes.
import { BandwidthLimiter, type PaceClock } from '../../../src/throttle/bandwidth.js';

/** Virtual time: sleep() advances now() at once; `passed` records when each take() was let through. */
function fakeClock(): PaceClock & { advance(ms: number): void; t: number } {
  const clock = {
    t: 5_000,
    now: () => clock.t,
    sleep: async (ms: number) => {
      clock.t += ms;
    },
    advance: (ms: number) => {
      clock.t += ms;
    },
  };
  return clock;
}

/** Sends `chunks` of `size` bytes back to back; returns [time let through, bytes] per chunk. */
async function send(limiter: BandwidthLimiter, clock: PaceClock, chunks: number, size: number): Promise<Array<[number, number]>> {
  const passed: Array<[number, number]> = [];
  for (let i = 0; i < chunks; i += 1) {
    await limiter.take(size);
    passed.push([clock.now(), size]);
  }
  return passed;
}

/** Most bytes let through within `windowMs` of `from`. */
function bytesWithin(passed: Array<[number, number]>, from: number, windowMs: number): number {
  return passed.filter(([t]) => t >= from && t <= from + windowMs).reduce((sum, [, n]) => sum + n, 0);
}

const RATE = 50_000; // -l 400 (Kbit/s)

test('after a long idle gap (a retry back-off), no more than burst + rate x t passes', async () => {
  const clock = fakeClock();
  const limiter = new BandwidthLimiter(RATE, { clock });
  await send(limiter, clock, 10, 32 * 1024); // some sending, then the connection drops
  clock.advance(30_000); // back-off and reconnect: 30 s without sending
  const resumed = clock.now();
  const passed = await send(limiter, clock, 400, 32 * 1024);
  for (const t of [0, 250, 1_000, 5_000, 60_000]) {
    expect(bytesWithin(passed, resumed, t)).toBeLessThanOrEqual(RATE + (RATE * t) / 1000);
  }
  // And the rate is still reached: 400 x 32 KiB at 50 kB/s takes about 262 s minus the burst.
  const last = passed[passed.length - 1]?.[0] ?? 0;
  expect((last - resumed) / 1000).toBeCloseTo((400 * 32 * 1024 - RATE) / RATE, 0);
});

test('a whole-run average would have let the idle time through at once; the bucket does not', async () => {
  const clock = fakeClock();
  const limiter = new BandwidthLimiter(RATE, { clock });
  clock.advance(600_000); // ten minutes before the first byte (connect, waits)
  const start = clock.now();
  const passed = await send(limiter, clock, 100, 64 * 1024);
  expect(bytesWithin(passed, start, 1_000)).toBeLessThanOrEqual(2 * RATE);
  expect(bytesWithin(passed, start, 0)).toBeLessThanOrEqual(RATE);
});

test('a take larger than the burst waits out its own excess', async () => {
  const clock = fakeClock();
  const limiter = new BandwidthLimiter(RATE, { clock, burstBytes: 10_000 });
  const start = clock.now();
  await limiter.take(110_000);
  expect(clock.now() - start).toBe(2_000);
});

test('limit 0 never waits and is inactive', async () => {
  const clock = fakeClock();
  const limiter = new BandwidthLimiter(0, { clock });
  expect(limiter.active).toBe(false);
  await limiter.take(1e12);
  expect(clock.now()).toBe(5_000);
});
