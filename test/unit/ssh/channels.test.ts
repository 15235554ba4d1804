import { Channels, oneChannelMs } from '../../../src/ssh/channels.js';
import type { RemoteFs } from '../../../src/ssh/remote-fs.js';
import type { SafeScpEvent } from '../../../src/log/events.js';
import { answeringIn, fakeSftp, first, never } from '../helpers/channel-fakes.js';

describe('Channels.grow', () => {
  test('opens the extra channels at once and tells each listener; refusals are one note', async () => {
    const channels = new Channels(first, never);
    const events: SafeScpEvent[] = [];
    const seen: RemoteFs[] = [];
    channels.each((rfs) => seen.push(rfs));
    let opened = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    channels.grow(3, async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      if (++opened === 3) throw new Error('open failed');
      return fakeSftp();
    }, (e) => events.push(e), 'web:22', 0);
    await channels.settled();
    expect(maxInFlight).toBe(3);
    expect(channels.all).toHaveLength(3);
    expect(seen).toHaveLength(3);
    expect(events.map((e) => (e.kind === 'debug' ? e.message : e.kind))).toEqual([
      "web:22 refused 1 extra SFTP channel (open failed): the server's MaxSessions may be lower; going on with 3",
      '3 SFTP channels open to web:22',
    ]);
  });

  test('offered channels open only when the work asks for them, and only once', async () => {
    const channels = new Channels(first, never);
    let asked = 0;
    channels.offer(2, () => {
      asked++;
      return Promise.resolve(fakeSftp());
    }, () => undefined, 'web:22', 0);
    await channels.settled();
    expect(asked).toBe(0);
    channels.want();
    channels.want();
    await channels.settled();
    expect(asked).toBe(2);
    expect(channels.all).toHaveLength(3);
  });

  test('--channels given: the offered channels open at once', async () => {
    const channels = new Channels(first, never);
    channels.offer(1, () => Promise.resolve(fakeSftp()), () => undefined, 'web:22', 0, true);
    await channels.settled();
    expect(channels.all).toHaveLength(2);
  });

  test('a session that is closing reports no refusal', async () => {
    const channels = new Channels(first, never);
    const events: SafeScpEvent[] = [];
    channels.grow(2, () => {
      channels.stop();
      return Promise.reject(new Error('Received unexpected SFTP session termination'));
    }, (e) => events.push(e), 'web:22', 0);
    await channels.settled();
    expect(events).toEqual([]);
    expect(channels.all).toHaveLength(1);
  });
});

test('a short round trip opens no extra channel, and says why', async () => {
  const fast = answeringIn(0);
  const channels = new Channels(fast, never);
  const events: SafeScpEvent[] = [];
  let asked = 0;
  channels.grow(3, () => {
    asked++;
    return Promise.resolve(fakeSftp());
  }, (e) => events.push(e), 'web:22');
  await channels.settled();
  expect(asked).toBe(0);
  expect(channels.all).toHaveLength(1);
  expect(events.map((e) => (e.kind === 'debug' ? e.message : ''))[0]).toMatch(/^round trip to web:22 \d+ ms: one channel's window/);
});

describe('extra channels weighed against what the first took to open', () => {
  // A round trip of ~20 ms; a 2000-file tree of 8 MB with 256 files in flight: one channel needs ~8 round trips.
  const slow = answeringIn(20);
  const tree = async (openMs: number): Promise<{ asked: number; notes: string[] }> => {
    const channels = new Channels(slow, never, undefined, openMs);
    const notes: string[] = [];
    let asked = 0;
    channels.offer(3, () => {
      asked++;
      return Promise.resolve(fakeSftp());
    }, (e) => notes.push(e.kind === 'debug' ? e.message : e.kind), 'web:22');
    channels.wantFor(8_192_000, 2000, 256);
    await channels.settled();
    return { asked, notes };
  };

  test('a server whose channels start slowly: the tree stays on one channel, and -v says why', async () => {
    const { asked, notes } = await tree(1000);
    expect(asked).toBe(0);
    expect(notes[0]).toMatch(/^one SFTP channel would move what is left in about -?\d+ ms at a \d+ ms round trip, and the first took 1000 ms to open: no more channels$/);
  });

  test('a server whose channels start quickly: the extra channels open', async () => {
    const { asked, notes } = await tree(40);
    expect(asked).toBe(3);
    expect(notes).toEqual(['4 SFTP channels open to web:22']);
  });
});

test('oneChannelMs: a window of bytes or a wave of files per round trip, whichever is more', () => {
  expect(oneChannelMs({ bytes: 64 * 1024 * 1024, files: 1, filesInFlight: 256 }, 50)).toBe(32 * 50);
  expect(oneChannelMs({ bytes: 8_192_000, files: 2000, filesInFlight: 256 }, 50)).toBeCloseTo((2000 / 256) * 50);
});

test('one extra channel first, then twice as many while the work left is worth what they took to open', async () => {
  const slow = answeringIn(20);
  const ramp = async (eachOpenMs: number): Promise<{ opened: number; notes: string[] }> => {
    const channels = new Channels(slow, never, undefined, 10);
    const notes: string[] = [];
    channels.offer(3, () => new Promise((r) => setTimeout(() => r(fakeSftp()), eachOpenMs)), (e) => notes.push(e.kind === 'debug' ? e.message : e.kind), 'web:22');
    channels.wantFor(64 * 1024 * 1024, 1, 256); // ~32 round trips (640 ms) on one channel
    await channels.settled();
    return { opened: channels.all.length, notes };
  };
  expect(await ramp(30)).toEqual({ opened: 4, notes: ['4 SFTP channels open to web:22'] });
  const costly = await ramp(300);
  expect(costly.opened).toBe(2);
  expect(costly.notes[0]).toMatch(/^one SFTP channel would move what is left in about \d+ ms at a \d+ ms round trip, and the last of 2 took 3\d\d ms to open: no more channels$/);
  expect(costly.notes[1]).toBe('2 SFTP channels open to web:22');
});

test('the round trip is the quickest answer seen: a probe that waited behind other requests does not count as distance', async () => {
  const queued = answeringIn(30, 1);
  const channels = new Channels(queued, never);
  const notes: string[] = [];
  channels.grow(3, () => Promise.resolve(fakeSftp()), (e) => notes.push(e.kind === 'debug' ? e.message : e.kind), 'web:22');
  await channels.settled();
  expect(channels.all).toHaveLength(1);
  expect(notes[0]).toMatch(/^round trip to web:22 1 ms: /);
  expect(queued.roundTripMs()).toBe(1);
});
