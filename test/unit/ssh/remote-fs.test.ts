// RemoteFs: the limits it takes from the server, and the one-promise small-file put.
import { asSftp } from '../helpers/channel-fakes.js';
import { RemoteFs, sftpLength } from '../../../src/ssh/remote-fs.js';
import { largeWritesInFlight, smallWritesInFlight } from '../../../src/ssh/write-room.js';

const never = new Promise<never>(() => undefined);
const fsWith = (limits: Record<string, unknown>): RemoteFs => new RemoteFs(asSftp(limits), never);

describe('RemoteFs.filesInFlight', () => {
  test('half of a stated handle limit, at most what is wanted, at least 1', () => {
    expect(fsWith({ maxOpenHandles: 19995 }).filesInFlight(64)).toBe(64); // OpenSSH 9.2 here
    expect(fsWith({ maxOpenHandles: 100 }).filesInFlight(64)).toBe(50);
    expect(fsWith({ maxOpenHandles: 1 }).filesInFlight(64)).toBe(1);
  });

  test('unlimited: what is wanted; silent server: no more than 32', () => {
    expect(fsWith({ maxOpenHandles: Infinity }).filesInFlight(64)).toBe(64);
    expect(fsWith({}).filesInFlight(64)).toBe(32);
    expect(fsWith({}).filesInFlight(8)).toBe(8);
  });
});

test('the longest READ or WRITE sent whole: 254 KiB to OpenSSH and dropbear, 31952 bytes to any other server or an unknown one', () => {
  expect(sftpLength('SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10')).toBe(260096);
  expect(sftpLength('SSH-2.0-dropbear_2022.83')).toBe(260096);
  expect(sftpLength('SSH-2.0-ssh2js1.17.0')).toBe(31952);
  expect(sftpLength(undefined)).toBe(31952);
  expect(new RemoteFs(asSftp({}), never).maxLength).toBe(31952);
});

describe('RemoteFs.putSmall', () => {
  type Cb = (err?: Error | null, value?: unknown) => void;
  /** An SFTP stand-in that records each request and answers it from `answers` (op -> error or value). */
  const fakeSftp = (answers: Record<string, Error | unknown> = {}) => {
    const sent: string[] = [];
    const answer = (op: string, cb: Cb, fallback?: unknown): void => {
      sent.push(op);
      const a = answers[op];
      setImmediate(() => (a instanceof Error ? cb(a) : cb(null, a ?? fallback)));
    };
    const sftp = {
      open: (_p: string, flags: string, attrs: { mode: number }, cb: Cb) => answer(`open ${flags} ${attrs.mode.toString(8)}`, cb, Buffer.from('h1')),
      write: (_h: Buffer, data: Buffer, _o: number, len: number, pos: number, cb: Cb) => answer(`write ${len}@${pos} ${data.subarray(0, len).toString()}`, cb),
      fsetstat: (_h: Buffer, attrs: { mode: number }, cb: Cb) => answer(`fsetstat ${attrs.mode.toString(8)}`, cb),
      fstat: (_h: Buffer, cb: Cb) => answer('fstat', cb, { size: 5, mode: 0o100644 }),
      close: (_h: Buffer, cb: Cb) => answer('close', cb),
    };
    return { sent, rfs: new RemoteFs(asSftp(sftp), never) };
  };
  const sftpError = (code: number, message: string): Error => Object.assign(new Error(message), { code });

  /** A WRITE that is answered 2 ms later, and the most bytes of writes ever unanswered at once. */
  const timedWrites = (): { write: (h: Buffer, d: Buffer, o: number, len: number, pos: number, cb: Cb) => void; peak: () => number } => {
    let inFlight = 0;
    let peak = 0;
    const write = (_h: Buffer, _d: Buffer, _o: number, len: number, _pos: number, cb: Cb): void => {
      inFlight += len;
      peak = Math.max(peak, inFlight);
      setTimeout(() => {
        inFlight -= len;
        cb(null);
      }, 2);
    };
    return { write, peak: () => peak };
  };

  test("small files' writes wait for room: at most smallWritesInFlight unanswered, more as the round trip grows", async () => {
    const most = async (rttMs: number): Promise<number> => {
      const { write, peak } = timedWrites();
      const sftp = {
        open: (_p: string, _f: string, _a: unknown, cb: Cb) => setImmediate(() => cb(null, Buffer.from('h'))),
        write,
        fstat: (_h: Buffer, cb: Cb) => setImmediate(() => cb(null, { size: 64 * 1024 })),
        close: (_h: Buffer, cb: Cb) => setImmediate(() => cb(null)),
      };
      const rfs = new RemoteFs(asSftp(sftp), never);
      rfs.roundTripMs = () => rttMs;
      const puts = Array.from({ length: 40 }, (_, i) => rfs.putSmall(`/d/.f${i}`, Buffer.alloc(64 * 1024), 0o644, undefined));
      await expect(Promise.all(puts)).resolves.toHaveLength(40);
      return peak();
    };
    expect(await most(0)).toBe(256 * 1024);
    expect(await most(50)).toBe(16 * 64 * 1024);
    expect(smallWritesInFlight(0)).toBe(256 * 1024);
    expect(smallWritesInFlight(50)).toBe(256 * 1024 + 800_000);
    expect(smallWritesInFlight(500)).toBe(2 * 1024 * 1024);
  });

  test('other writes share a room of their own per channel, whatever file they are of: 512 KiB and more by the round trip', async () => {
    const most = async (rttMs: number): Promise<number> => {
      const { write, peak } = timedWrites();
      const rfs = new RemoteFs(asSftp({ write }), never);
      rfs.roundTripMs = () => rttMs;
      // 8 files of 4 writes of 256 KiB each, each file sending its next write once it has room (as sendWrites does).
      const file = async (f: number): Promise<void> => {
        const answered: Array<Promise<void>> = [];
        for (let w = 0; w < 4; w++) {
          const free = await rfs.writeRoom(256 * 1024);
          answered.push(rfs.write(Buffer.from(`h${f}`), Buffer.alloc(256 * 1024), w * 256 * 1024, `/d/.f${f}`).finally(free));
        }
        await Promise.all(answered);
      };
      await Promise.all(Array.from({ length: 8 }, (_, f) => file(f)));
      expect(rfs.pending).toBe(0);
      return peak();
    };
    expect(await most(0)).toBe(512 * 1024);
    expect(await most(10)).toBe(768 * 1024);
    expect(await most(50)).toBe(2 * 1024 * 1024);
    expect(largeWritesInFlight(0)).toBe(512 * 1024);
    expect(largeWritesInFlight(10)).toBe(992 * 1024);
    expect(largeWritesInFlight(32)).toBe(2 * 1024 * 1024);
  });

  test('opens, then sends write, fstat and close back to back, and answers the fstat', async () => {
    const { sent, rfs } = fakeSftp();
    await expect(rfs.putSmall('/d/.f.part', Buffer.from('hello'), 0o644, undefined)).resolves.toMatchObject({ size: 5 });
    expect(sent).toEqual(['open wx 644', 'write 5@0 hello', 'fstat', 'close']);
    expect(rfs.pending).toBe(0);
  });

  test('-p attributes go between the write and the fstat; an empty file sends no write', async () => {
    const { sent, rfs } = fakeSftp();
    await rfs.putSmall('/d/.f.part', Buffer.alloc(0), 0o600, { mode: 0o600, mtime: 1 });
    expect(sent).toEqual(['open wx 600', 'fsetstat 600', 'fstat', 'close']);
  });

  test('a failed write rejects with the write, classified, and the handle is still closed', async () => {
    const { sent, rfs } = fakeSftp({ 'write 5@0 hello': sftpError(4, 'Failure: No space left on device') });
    await expect(rfs.putSmall('/d/.f.part', Buffer.from('hello'), 0o644, undefined)).rejects.toMatchObject({ code: 'remote-disk-full' });
    expect(sent).toContain('close');
  });

  test('a refused open rejects as the open and sends nothing else', async () => {
    const { sent, rfs } = fakeSftp({ 'open wx 644': sftpError(3, 'Permission denied') });
    await expect(rfs.putSmall('/d/.f.part', Buffer.from('hello'), 0o644, undefined)).rejects.toMatchObject({ code: 'remote-permission-denied' });
    expect(sent).toEqual(['open wx 644']);
  });

  test('a lost connection rejects a put whose answers never come', async () => {
    let lose: (err: unknown) => void = () => undefined;
    const lost = new Promise<never>((_, reject) => (lose = reject));
    const silent = asSftp({ open: () => undefined });
    const rfs = new RemoteFs(silent, lost);
    const put = rfs.putSmall('/d/.f.part', Buffer.from('x'), 0o644, undefined);
    lose(new Error('connection lost'));
    await expect(put).rejects.toThrow('connection lost');
    expect(rfs.pending).toBe(0);
  });
});

describe('RemoteFs.readdir', () => {
  type Cb = (err?: Error | null, value?: unknown) => void;
  const eof = (): Error => Object.assign(new Error('No more files'), { code: 1 });
  /** A directory of `count` names that the server hands out 100 at a time, '.' and '..' first, as OpenSSH does. */
  const serverWith = (count: number) => {
    const sent: string[] = [];
    const names = ['.', '..', ...Array.from({ length: count }, (_, i) => `f${i}`)];
    let next = 0;
    const sftp = {
      opendir: (_p: string, cb: Cb) => {
        sent.push('opendir');
        setImmediate(() => cb(null, Buffer.from('d1')));
      },
      readdir: (_h: Buffer, cb: Cb) => {
        sent.push('readdir');
        const batch = names.slice(next, next + 100);
        next += batch.length;
        setImmediate(() => (batch.length === 0 ? cb(eof()) : cb(null, batch.map((filename) => ({ filename, longname: filename, attrs: { mode: 0o100644, size: 1 } })))));
      },
      close: (_h: Buffer, cb: Cb) => {
        sent.push('close');
        setImmediate(() => cb(null));
      },
    };
    return { sent, rfs: new RemoteFs(asSftp(sftp), never) };
  };

  test('a directory that fits in one answer: one round of two reads, then the close', async () => {
    const { sent, rfs } = serverWith(10);
    const entries = await rfs.readdir('/srv');
    expect(entries.map((e) => e.name)).toEqual(Array.from({ length: 10 }, (_, i) => `f${i}`));
    expect(sent).toEqual(['opendir', 'readdir', 'readdir', 'close']);
  });

  test('a long directory: reads two at a time until the end, every name once', async () => {
    const { sent, rfs } = serverWith(450);
    const entries = await rfs.readdir('/srv');
    expect(new Set(entries.map((e) => e.name)).size).toBe(450);
    expect(sent.filter((op) => op === 'readdir')).toHaveLength(6);
    expect(sent.at(-1)).toBe('close');
  });

  test('a failed read rejects, classified, and the handle is still closed', async () => {
    const sent: string[] = [];
    const sftp = {
      opendir: (_p: string, cb: Cb) => setImmediate(() => cb(null, Buffer.from('d1'))),
      readdir: (_h: Buffer, cb: Cb) => setImmediate(() => cb(Object.assign(new Error('Permission denied'), { code: 3 }))),
      close: (_h: Buffer, cb: Cb) => {
        sent.push('close');
        setImmediate(() => cb(null));
      },
    };
    await expect(new RemoteFs(asSftp(sftp), never).readdir('/srv')).rejects.toMatchObject({ code: 'remote-permission-denied' });
    expect(sent).toEqual(['close']);
  });
});
