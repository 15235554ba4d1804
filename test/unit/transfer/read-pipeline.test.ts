// readSpan against a stand-in server file: the end-of-file probe is one small read, and a file that grew since it
// was listed is read on to its real end.
import type { RemoteFs } from '../../../src/ssh/remote-fs.js';
import { BandwidthLimiter } from '../../../src/throttle/bandwidth.js';
import { TransferState } from '../../../src/transfer/progress.js';
import { readSpan } from '../../../src/transfer/read-pipeline.js';

/** A remote file of `content` that records the length of every READ. */
function serving(content: Buffer): { rfs: RemoteFs; asked: number[] } {
  const asked: number[] = [];
  const fake = {
    maxLength: 260096,
    read: async (_h: Buffer, buffer: Buffer, length: number, position: number): Promise<number> => {
      asked.push(length);
      await new Promise((resolve) => setImmediate(resolve));
      return content.copy(buffer, 0, position, Math.min(content.length, position + length));
    },
  };
  return { rfs: fake as unknown as RemoteFs, asked };
}

async function readAll(content: Buffer, expected: number): Promise<{ got: Buffer; reached: number; asked: number[] }> {
  const { rfs, asked } = serving(content);
  const got = Buffer.alloc(content.length);
  const local = { write: (data: Buffer, offset: number, length: number, position: number) => Promise.resolve(data.copy(got, position, offset, offset + length)) };
  const state = new TransferState(() => undefined, new BandwidthLimiter(0));
  const reached = await readSpan(rfs, Buffer.from('h'), { remote: '/f', local }, 0, expected, true, { chunkSize: 256 * 1024, bytesInFlight: 2 * 1024 * 1024 }, state);
  return { got, reached, asked };
}

test('a small file: one read of its size and one 4 KiB probe that meets the end', async () => {
  const content = Buffer.from('hello world');
  const { got, reached, asked } = await readAll(content, content.length);
  expect(reached).toBe(content.length);
  expect(got.equals(content)).toBe(true);
  expect(asked).toEqual([content.length, 4096]);
});

test('a file that grew since it was listed is read to its real end, past the probe in whole reads', async () => {
  const content = Buffer.from(Array.from({ length: 700_000 }, (_, i) => i % 251));
  const { got, reached, asked } = await readAll(content, 100);
  expect(reached).toBe(content.length);
  expect(got.equals(content)).toBe(true);
  expect(asked.slice(0, 2)).toEqual([100, 4096]);
  expect(Math.max(...asked)).toBe(260096);
  expect(asked.length).toBeLessThan(10);
});
