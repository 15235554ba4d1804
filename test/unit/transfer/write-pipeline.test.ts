// sendWrites against a stand-in server file: never more writes unanswered than the caller allows, and the bytes land
// whole. (How many the channel sends at once, by the round trip, is RemoteFs.write's room: remote-fs.test.ts.)
import type { RemoteFs } from '../../../src/ssh/remote-fs.js';
import { BandwidthLimiter } from '../../../src/throttle/bandwidth.js';
import { TransferState } from '../../../src/transfer/progress.js';
import { BufferPool, sendWrites } from '../../../src/transfer/write-pipeline.js';

const KiB = 1024;
const CHUNK = 256 * KiB;

test('at most the writes the caller allows are unanswered, and the file lands whole', async () => {
  const size = 4 * 1024 * KiB;
  const data = Buffer.from(Array.from({ length: size }, (_, i) => i % 253));
  const got = Buffer.alloc(size);
  let open = 0;
  let most = 0;
  const fake = {
    writeRoom: async (): Promise<() => void> => () => undefined,
    write: async (_h: Buffer, chunk: Buffer, position: number): Promise<void> => {
      most = Math.max(most, ++open);
      await new Promise((resolve) => setImmediate(resolve));
      chunk.copy(got, position);
      open--;
    },
  };
  const state = new TransferState(() => undefined, new BandwidthLimiter(0));
  const { answered } = await sendWrites(fake as unknown as RemoteFs, Buffer.from('h'), '/t/.f.part', { data }, 0, size, 3, state, new BufferPool(CHUNK, 6));
  await answered;
  expect(got.equals(data)).toBe(true);
  expect(most).toBe(3);
});

test('once it resolves every WRITE is on the channel, even when the channel made them wait for room', async () => {
  // The caller sends the size check and the close next: a WRITE still waiting would land on a closed handle.
  const size = 2 * 1024 * KiB;
  let issued = 0;
  const fake = {
    writeRoom: async (): Promise<() => void> => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return () => undefined;
    },
    write: async (): Promise<void> => {
      issued++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    },
  };
  const state = new TransferState(() => undefined, new BandwidthLimiter(0));
  const { answered } = await sendWrites(fake as unknown as RemoteFs, Buffer.from('h'), '/t/.f.part', { data: Buffer.alloc(size) }, 0, size, 8, state, new BufferPool(CHUNK, 16));
  expect(issued).toBe(size / CHUNK);
  await answered;
});
