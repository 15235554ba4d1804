// The SFTP client of sftp/client.ts against a scripted server on a stand-in channel: what goes out (coalesced,
// limits with INIT on OpenSSH), how answers are read (split across chunks, every request type used), and what a
// broken or vanished server does to the requests waiting.
import { EventEmitter } from 'node:events';
import type { Client } from 'ssh2';
import { SftpClient } from '../../../src/ssh/sftp/client.js';
import { Requests } from '../../../src/ssh/sftp/requests.js';
import { FXP, isDirMode, isFileMode, Reader, type Stats } from '../../../src/ssh/sftp/wire.js';

interface Sent {
  type: number;
  id: number;
  r: Reader;
}

/** A channel whose writes a test reads back as requests, and which the test answers with `answer`. */
class FakeChannel extends EventEmitter {
  readonly writes: Buffer[] = [];
  /** The buffers as written (not copied). */
  readonly given: Buffer[] = [];
  readonly stderr = { resume: (): void => undefined };
  closed = false;
  /** When set, write callbacks wait in `held`: a channel that has not yet copied the bytes into its packets. */
  hold = false;
  readonly held: Array<() => void> = [];
  write(data: Buffer, cb?: (err?: Error | null) => void): boolean {
    this.writes.push(Buffer.from(data));
    this.given.push(data);
    if (cb && this.hold) this.held.push(() => cb());
    else if (cb) process.nextTick(cb);
    return true;
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    setImmediate(() => this.emit('close'));
  }
  /** Every request written so far (INIT has no id), in order. */
  requests(): Sent[] {
    const all = Buffer.concat(this.writes);
    const out: Sent[] = [];
    for (let at = 0; at < all.length; ) {
      const len = all.readUInt32BE(at);
      const r = new Reader(all.subarray(at + 4, at + 4 + len));
      const type = r.byte();
      out.push({ type, id: type === FXP.INIT ? 0 : r.uint32(), r });
      at += 4 + len;
    }
    return out;
  }
  /** Sends `packets` from the server, optionally cut into pieces of `piece` bytes. */
  answer(packets: Buffer[], piece = 0): void {
    const all = Buffer.concat(packets);
    if (piece <= 0) this.emit('data', all);
    else for (let at = 0; at < all.length; at += piece) this.emit('data', all.subarray(at, at + piece));
  }
}

/** A server packet: type, then (unless VERSION) the id, then the fields `build` adds. */
/** The one request `w` is writing, closed and taken. */
function takeOne(w: Requests): Buffer {
  w.end();
  return w.take();
}

function reply(type: number, id: number | undefined, build: (q: Requests) => Requests = (q) => q): Buffer {
  // Requests writes length, type and a uint32 after it: for VERSION that uint32 is the version.
  return takeOne(build(new Requests(256).begin(type, id ?? 3)));
}
const status = (id: number, code: number, message = ''): Buffer => reply(FXP.STATUS, id, (q) => q.uint32(code).string(message).string('en'));
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function started(serverVersion: 'openssh' | 'other', extensions: Record<string, string> = { 'posix-rename@openssh.com': '1', 'statvfs@openssh.com': '2', 'limits@openssh.com': '1' }): Promise<{ sftp: SftpClient; channel: FakeChannel }> {
  const channel = new FakeChannel();
  const client = { subsys: (_name: string, cb: (err: Error | undefined, ch: FakeChannel) => void) => setImmediate(() => cb(undefined, channel)) } as unknown as Client;
  const opening = SftpClient.open(client, serverVersion === 'openssh');
  await tick();
  await tick();
  const version = reply(FXP.VERSION, undefined, (q) => Object.entries(extensions).reduce((acc, [k, v]) => acc.string(k).string(v), q));
  const limits = channel.requests().find((s) => s.type === FXP.EXTENDED);
  if (serverVersion === 'openssh') {
    // Sent with INIT, before the VERSION came back.
    expect(limits).toBeDefined();
    channel.answer([version, reply(FXP.EXTENDED_REPLY, limits?.id ?? 0, (q) => q.uint64(262144).uint64(261120).uint64(261120).uint64(1000))]);
  } else {
    expect(limits).toBeUndefined();
    channel.answer([version]);
    await tick();
    await tick();
    const asked = channel.requests().find((s) => s.type === FXP.EXTENDED);
    if (asked) channel.answer([reply(FXP.EXTENDED_REPLY, asked.id, (q) => q.uint64(1).uint64(1).uint64(1).uint64(0))]);
  }
  return { sftp: await opening, channel };
}

describe('SftpClient', () => {
  test('on OpenSSH, limits@openssh.com goes with INIT; elsewhere it waits for VERSION to announce it', async () => {
    const openssh = await started('openssh');
    expect(openssh.channel.requests().map((s) => s.type)).toEqual([FXP.INIT, FXP.EXTENDED]);
    expect(openssh.sftp.maxOpenHandles).toBe(1000);
    const other = await started('other');
    expect(other.sftp.maxOpenHandles).toBe(Infinity); // 0: no limit
    const silent = await started('other', {});
    expect(silent.sftp.maxOpenHandles).toBeUndefined();
    expect(silent.channel.requests().map((s) => s.type)).toEqual([FXP.INIT]);
  });

  test('handed over early (OpenSSH), its first requests go out right behind INIT, and ready waits for VERSION and the limits', async () => {
    const channel = new FakeChannel();
    const client = { subsys: (_n: string, cb: (err: Error | undefined, ch: FakeChannel) => void) => setImmediate(() => cb(undefined, channel)) } as unknown as Client;
    const sftp = await SftpClient.open(client, true, true);
    let ready = false;
    void sftp.ready.then(() => (ready = true));
    const stat = new Promise<Stats | undefined>((resolve) => sftp.stat('/srv', (_err, st) => resolve(st)));
    await tick();
    const sent = channel.requests();
    expect(sent.map((s) => s.type)).toEqual([FXP.INIT, FXP.EXTENDED, FXP.STAT]);
    expect(sftp.offers('posix-rename@openssh.com')).toBe(false);
    channel.answer([
      reply(FXP.VERSION, undefined, (q) => q.string('posix-rename@openssh.com').string('1')),
      reply(FXP.EXTENDED_REPLY, sent[1]?.id ?? 0, (q) => q.uint64(1).uint64(1).uint64(1).uint64(64)),
      reply(FXP.ATTRS, sent[2]?.id ?? 0, (q) => q.uint32(0x4).uint32(0o040755)),
    ]);
    await expect(stat).resolves.toMatchObject({ mode: 0o040755 });
    await tick();
    expect([ready, sftp.maxOpenHandles, sftp.offers('posix-rename@openssh.com')]).toEqual([true, 64, true]);
  });

  test("a turn's small requests go out in one write; a big WRITE goes at once with them, its data past the first packet not copied", async () => {
    const { sftp, channel } = await started('openssh');
    const before = channel.writes.length;
    const h = Buffer.from('h1');
    sftp.open('/a', 'wx', { mode: 0o644 }, () => undefined);
    sftp.fstat(h, () => undefined);
    sftp.close(h, () => undefined);
    expect(channel.writes.length).toBe(before);
    await tick();
    expect(channel.writes.length).toBe(before + 1);
    sftp.mkdir('/d', { mode: 0o755 }, () => undefined);
    const data = Buffer.alloc(64 * 1024, 7);
    sftp.write(h, data, 0, 64 * 1024, 0, () => undefined);
    // The mkdir (23 bytes) with the WRITE's header and the first packet's worth of data, then the rest of the data itself.
    expect(channel.writes.length).toBe(before + 3);
    expect(channel.writes[before + 1]?.length).toBe(23 + 32 * 1024);
    // Header: length, type, id, handle (4 + 2), offset, data length: 27 bytes.
    expect(channel.given[before + 2]?.buffer).toBe(data.buffer);
    expect(channel.given[before + 2]?.length).toBe(64 * 1024 - (32 * 1024 - 27));
    const sent = channel.requests().slice(-5);
    expect(sent.map((s) => s.type)).toEqual([FXP.OPEN, FXP.FSTAT, FXP.CLOSE, FXP.MKDIR, FXP.WRITE]);
    const open = sent[0]?.r;
    expect([open?.string(), open?.uint32(), open?.uint32(), open?.uint32()]).toEqual(['/a', 0x3a, 0x4, 0o644]);
  });

  test("a turn's buffer is written into again only once the channel has copied it on", async () => {
    const { sftp, channel } = await started('openssh');
    channel.hold = true;
    const n = channel.given.length;
    for (const path of ['/a', '/b', '/c', '/d']) {
      sftp.stat(path, () => undefined);
      await tick();
      if (path === '/b') channel.held.splice(0).forEach((copied) => copied());
    }
    // /c goes in the buffer taken up when /b went out; /d in one of those the channel has since copied on.
    const [a, b, c, d] = channel.given.slice(n).map((written) => written.buffer);
    expect(new Set([a, b, c]).size).toBe(3);
    expect([a, b]).toContain(d);
    expect(channel.requests().slice(-4).map((s) => s.r.string())).toEqual(['/a', '/b', '/c', '/d']);
  });

  test('reads every answer it uses, also when the answers arrive split into small pieces', async () => {
    const { sftp, channel } = await started('openssh');
    const got: unknown[] = [];
    sftp.open('/f', 'r', {}, (err, h) => got.push(err ?? h?.toString()));
    sftp.fstat(Buffer.from('h'), (err, st) => got.push(err ?? [st?.size, st?.mode, isFileMode(st?.mode ?? 0), isDirMode(st?.mode ?? 0)]));
    const buf = Buffer.alloc(10);
    sftp.read(Buffer.from('h'), buf, 2, 8, 0, (err, n) => got.push(err ?? [n, buf.toString('utf8', 2, 2 + (n ?? 0))]));
    sftp.readdir(Buffer.from('d'), (err, list) => got.push(err ?? list?.map((e) => [e.filename, isDirMode(e.attrs.mode)])));
    sftp.realpath('.', (err, p) => got.push(err ?? p));
    sftp.statvfs('/', (err, info) => got.push(err ?? [info?.['f_bavail'], info?.['f_namemax']]));
    sftp.read(Buffer.from('h'), buf, 0, 8, 99, (err) => got.push((err as Error & { code?: number }).code));
    sftp.remove('/nope', (err) => got.push([(err as Error & { code?: number }).code, err?.message]));
    await tick();
    const ids = channel.requests().slice(-8).map((s) => s.id);
    const attrs = (q: Requests, size: number, mode: number): Requests => q.uint32(0x1 | 0x4).uint64(size).uint32(mode);
    channel.answer(
      [
        reply(FXP.HANDLE, ids[0] ?? 0, (q) => q.string('H1')),
        reply(FXP.ATTRS, ids[1] ?? 0, (q) => attrs(q, 2 ** 33, 0o100644)),
        reply(FXP.DATA, ids[2] ?? 0, (q) => q.string('hello')),
        reply(FXP.NAME, ids[3] ?? 0, (q) => attrs(attrs(q.uint32(2).string('sub').string('drwx sub'), 0, 0o040755).string('f').string('-rw f'), 3, 0o100600)),
        reply(FXP.NAME, ids[4] ?? 0, (q) => attrs(q.uint32(1).string('/home/u').string(''), 0, 0o040755)),
        reply(FXP.EXTENDED_REPLY, ids[5] ?? 0, (q) => Array.from({ length: 11 }, (_, i) => i).reduce((acc, i) => acc.uint64(i === 4 ? 2 ** 40 : i === 10 ? 255 : 1), q)),
        status(ids[6] ?? 0, 1, 'EOF'),
        status(ids[7] ?? 0, 2, 'No such file'),
      ],
      7,
    );
    expect(got).toEqual(['H1', [2 ** 33, 0o100644, true, false], [5, 'hello'], [['sub', true], ['f', false]], '/home/u', [2 ** 40, 255], 1, [2, 'No such file']]);
  });

  test('an answer that does not parse fails its request and every other one waiting, and the channel is closed', async () => {
    const { sftp, channel } = await started('openssh');
    const errors: string[] = [];
    sftp.stat('/a', (err) => errors.push(String(err?.message)));
    sftp.stat('/b', (err) => errors.push(String(err?.message)));
    await tick();
    const [a] = channel.requests().slice(-2);
    // An ATTRS that claims a size but ends before it.
    channel.answer([reply(FXP.ATTRS, a?.id ?? 0, (q) => q.uint32(0x1))]);
    expect(errors).toEqual(['SFTP protocol error: SFTP packet shorter than its fields', 'SFTP protocol error: SFTP packet shorter than its fields']);
    expect(channel.closed).toBe(true);
    // Later requests fail at once, nothing sent.
    const writes = channel.writes.length;
    await expect(new Promise((resolve) => sftp.mkdir('/c', {}, resolve))).resolves.toMatchObject({ message: /SFTP protocol error/ });
    expect(channel.writes.length).toBe(writes);
  });

  test.each<[string, (ids: number[]) => Buffer]>([
    ['an answer to a request never sent', () => status(999, 0)],
    ['a packet longer than any answer', () => Buffer.from([0, 0x20, 0, 0, FXP.STATUS])],
    ['a DATA longer than the READ asked', (ids) => reply(FXP.DATA, ids[0] ?? 0, (q) => q.string(Buffer.alloc(64)))],
    ['a STATUS OK where a handle was due', (ids) => status(ids[1] ?? 0, 0)],
  ])('%s breaks the session: every waiting request fails', async (_name, bad) => {
    const { sftp, channel } = await started('openssh');
    const results: unknown[] = [];
    sftp.read(Buffer.from('h'), Buffer.alloc(8), 0, 8, 0, (err) => results.push(err?.message));
    sftp.open('/x', 'r', {}, (err) => results.push(err?.message));
    await tick();
    channel.answer([bad(channel.requests().slice(-2).map((s) => s.id))]);
    expect(results).toHaveLength(2);
    for (const r of results) expect(r).toMatch(/^SFTP protocol error: /);
  });

  test('a channel that closes fails the requests waiting with "No response from server" (classified as a lost connection)', async () => {
    const { sftp, channel } = await started('openssh');
    const pending = new Promise<Error | null>((resolve) => sftp.lstat('/a', (err) => resolve(err)));
    await tick();
    channel.emit('close');
    await expect(pending).resolves.toMatchObject({ message: 'No response from server' });
  });

  test('a server below version 3 is refused', async () => {
    const channel = new FakeChannel();
    const client = { subsys: (_n: string, cb: (err: Error | undefined, ch: FakeChannel) => void) => setImmediate(() => cb(undefined, channel)) } as unknown as Client;
    const opening = SftpClient.open(client, false);
    await tick();
    channel.answer([reply(FXP.VERSION, undefined, (q) => q).fill(0, 5, 9)]);
    await expect(opening).rejects.toThrow('SFTP protocol error: the server speaks an SFTP version below 3');
  });

  test('a refused subsystem rejects with the error ssh2 gives', async () => {
    const client = { subsys: (_n: string, cb: (err: Error) => void) => setImmediate(() => cb(new Error('Unable to start subsystem: sftp'))) } as unknown as Client;
    await expect(SftpClient.open(client, true)).rejects.toThrow('Unable to start subsystem: sftp');
  });
});

describe('wire', () => {
  test('requests back to back in one buffer: 64-bit offsets, UTF-8 names, growing past the first buffer', () => {
    const w = new Requests(16);
    w.begin(FXP.WRITE, 7).string(Buffer.from('h')).uint64(2 ** 40 + 5).uint32(3).raw(Buffer.from('abc'));
    w.end();
    w.begin(FXP.OPEN, 8).string('dé/ü').uint32(1);
    w.begin(FXP.STAT, 9).string('/x');
    w.end(100);
    const out = w.take();
    const one = new Reader(out.subarray(4, 4 + out.readUInt32BE(0)));
    expect([one.byte(), one.uint32(), one.string(), one.uint64(), one.bytes().toString()]).toEqual([FXP.WRITE, 7, 'h', 2 ** 40 + 5, 'abc']);
    // The OPEN begun and not closed is dropped; the STAT's length counts the 100 bytes sent after it.
    const at = 4 + out.readUInt32BE(0);
    expect(out.readUInt32BE(at)).toBe(1 + 4 + 4 + 2 + 100);
    expect(out.length).toBe(at + 4 + 11);
    const two = new Reader(out.subarray(at + 4));
    expect([two.byte(), two.uint32(), two.string()]).toEqual([FXP.STAT, 9, '/x']);
    expect(w.length).toBe(0);
    expect(takeOne(new Requests(8).begin(FXP.OPEN, 1).string('dé')).subarray(9).toString('utf8', 4)).toBe('dé');
    // Above 2^53 a 64-bit value reads as Number(BigInt) rounds it (a server's "unlimited" is often 2^64 - 1).
    for (const big of [2n ** 53n + 1n, 2n ** 64n - 1n, 0x1234_5678_9abc_def0n]) {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(big);
      expect(new Reader(b).uint64()).toBe(Number(big));
    }
  });

  test('a burst of turns taken before any is released: every buffer released serves again, none is made anew', () => {
    // 8 KiB: a buffer of its own (smaller ones share Node's pool, and are not kept).
    const w = new Requests(8192);
    const burst = Array.from({ length: 20 }, (_, i) => {
      w.begin(FXP.CLOSE, i).string(Buffer.from('h'));
      w.end();
      return w.take();
    });
    for (const taken of burst) w.release(taken);
    const again = Array.from({ length: 20 }, (_, i) => {
      w.begin(FXP.CLOSE, 100 + i).string(Buffer.from('h'));
      w.end();
      return w.take();
    });
    // The 20 of the burst, and the one the 21st turn was being written into when they came back.
    expect(new Set([...burst, ...again].map((b) => b.buffer)).size).toBe(21);
  });

  test('attributes: only the mode, or the mode and both times', () => {
    const r = (q: Requests): Reader => {
      const p = takeOne(q);
      const rd = new Reader(p.subarray(4));
      rd.byte();
      rd.uint32();
      return rd;
    };
    const modeOnly = r(new Requests(64).begin(FXP.SETSTAT, 1).attrs({ mode: 0o600 }));
    expect([modeOnly.uint32(), modeOnly.uint32(), modeOnly.left]).toEqual([0x4, 0o600, 0]);
    const both = r(new Requests(64).begin(FXP.SETSTAT, 1).attrs({ mode: 0o644, atime: 10.7, mtime: 20.2 }));
    const st: Stats = both.attrs();
    expect([st.mode, st.atime, st.mtime]).toEqual([0o644, 10, 20]);
  });
});
