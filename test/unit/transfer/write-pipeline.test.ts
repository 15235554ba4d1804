// sendWrites against a stand-in server file: the writes kept unanswered follow the round trip (a short one keeps
// few, so they do not pile up at the server), never more than the caller allows, and the bytes land whole.
import type { RemoteFs } from '../../../src/ssh/remote-fs.js';
import { BandwidthLimiter } from '../../../src/throttle/bandwidth.js';
import { TransferState } from '../../../src/transfer/progress.js';
import { BufferPool, sendWrites, writesWorthInFlight } from '../../../src/transfer/write-pipeline.js';

const KiB = 1024;
const CHUNK = 256 * KiB;

/** A remote file that answers each WRITE a turn later and records the most writes ever unanswered at once. */
function serving(size: number, rttMs: () => number): { rfs: RemoteFs; got: Buffer; most: () => number } {
  const got = Buffer.alloc(size);
  let open = 0;
  let most = 0;
  const fake = {
    roundTripMs: rttMs,
    write: async (_h: Buffer, data: Buffer, position: number): Promise<void> => {
      most = Math.max(most, ++open);
      await new Promise((resolve) => setImmediate(resolve));
      data.copy(got, position);
      open--;
    },
  };
  return { rfs: fake as unknown as RemoteFs, got, most: () => most };
}

async function upload(size: number, rttMs: () => number, maxRequests: number): Promise<{ got: Buffer; data: Buffer; most: number }> {
  const data = Buffer.from(Array.from({ length: size }, (_, i) => i % 253));
  const { rfs, got, most } = serving(size, rttMs);
  const state = new TransferState(() => undefined, new BandwidthLimiter(0));
  const { answered } = await sendWrites(rfs, Buffer.from('h'), '/t/.f.part', { data }, 0, size, maxRequests, state, new BufferPool(CHUNK, 2 * maxRequests));
  await answered;
  return { got, data, most: most() };
}

test('512 KiB worth in flight at no round trip, 48 KiB more per millisecond, the 2 MiB window of OpenSSH by ~32 ms', () => {
  expect(writesWorthInFlight(0)).toBe(512 * KiB);
  expect(writesWorthInFlight(10)).toBe(992 * KiB);
  expect(writesWorthInFlight(32)).toBeGreaterThanOrEqual(2048 * KiB);
});

test('on a short round trip a few writes of 256 KiB are kept in flight, not the eight allowed', async () => {
  // Loopback's 0.2 ms: 512 KiB and 10 KiB, so three writes.
  const { got, data, most } = await upload(4 * 1024 * KiB, () => 0.2, 8);
  expect(got.equals(data)).toBe(true);
  expect(most).toBe(3);
  // Before any answer, the round trip counts as none: two.
  expect((await upload(4 * 1024 * KiB, () => 0, 8)).most).toBe(2);
});

test('on a long one the limit the caller gives holds', async () => {
  const { got, data, most } = await upload(4 * 1024 * KiB, () => 50, 8);
  expect(got.equals(data)).toBe(true);
  expect(most).toBe(8);
});

test('the depth follows the round trip as it becomes known', async () => {
  let rtt = 0;
  const { rfs, got, most } = serving(8 * 1024 * KiB, () => rtt);
  const data = Buffer.from(Array.from({ length: got.length }, (_, i) => i % 249));
  const state = new TransferState(() => undefined, new BandwidthLimiter(0));
  // The first answers bring the round trip, as the probe's answer does on a channel.
  state.progress = () => {
    rtt = 50;
  };
  const { answered } = await sendWrites(rfs, Buffer.from('h'), '/t/.f.part', { data }, 0, got.length, 8, state, new BufferPool(CHUNK, 16));
  await answered;
  expect(got.equals(data)).toBe(true);
  expect(most()).toBe(8);
});
