import { Channels } from '../../../src/ssh/channels.js';
import { spread } from '../../../src/transfer/spread.js';
import { fakeSftp, first, never } from '../helpers/channel-fakes.js';

describe('spread', () => {
  test('every item once, at most perChannel at a time on each channel, channels that open later join in', async () => {
    const channels = new Channels(first, never);
    const items = Array.from({ length: 40 }, (_, i) => i);
    const done: number[] = [];
    const running = new Map<unknown, number>();
    let most = 0;
    let grown = false;
    await spread(channels, items, () => 3, async (item, rfs) => {
      running.set(rfs, (running.get(rfs) ?? 0) + 1);
      most = Math.max(most, running.get(rfs) ?? 0);
      if (!grown) {
        grown = true;
        channels.grow(1, () => Promise.resolve(fakeSftp()), () => undefined, 'web:22', 0);
      }
      await new Promise((r) => setTimeout(r, 2));
      running.set(rfs, (running.get(rfs) ?? 0) - 1);
      done.push(item);
    });
    expect(done.sort((a, b) => a - b)).toEqual(items);
    expect(most).toBeLessThanOrEqual(3);
    expect(running.size).toBe(2);
  });

  test('an item that releases its slot lets the next start, but a slot never holds more than two', async () => {
    const channels = new Channels(first, never);
    let running = 0;
    let most = 0;
    const done: number[] = [];
    await spread(channels, Array.from({ length: 12 }, (_, i) => i), () => 2, async (item, _rfs, release) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 2));
      release();
      await new Promise((r) => setTimeout(r, 6));
      running--;
      done.push(item);
    });
    expect(done.sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(most).toBe(4);
  });

  test('the first failure is thrown once the work under way has ended, and no new work starts', async () => {
    const channels = new Channels(first, never);
    const started: number[] = [];
    let ended = 0;
    const run = spread(channels, Array.from({ length: 10 }, (_, i) => i), () => 2, async (item) => {
      started.push(item);
      await new Promise((r) => setTimeout(r, item === 0 ? 1 : 10));
      ended++;
      if (item === 0) throw new Error('boom');
    });
    await expect(run).rejects.toThrow('boom');
    expect(ended).toBe(started.length);
    expect(started.length).toBeLessThan(10);
  });
});
