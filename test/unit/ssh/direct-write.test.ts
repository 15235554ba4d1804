// The prepared-packet writer, against a stand-in for ssh2's internals whose "encryption" leaves bytes as they
// are: the packets it writes must be exactly what ssh2 would frame (lengths, padding, CHANNEL_DATA headers, one
// SFTP WRITE across them), and whenever it cannot send now the request goes through SFTP#write unchanged.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { SFTPWrapper } from 'ssh2';
import { ShortRead, directWriter } from '../../../src/ssh/direct-write.js';
import { packetFramer } from '../../../src/ssh/packet-framer.js';

interface Fake {
  sftp: SFTPWrapper;
  internals: {
    _protocol: { _cipher: { outSeqno: number; _instance: { encrypt: (p: Buffer, seq?: number) => void } }; _kexinit?: unknown; _queue?: unknown; _packetRW: { write: { allocStart: number } } };
    _requests: Record<number, { cb: (err?: Error | null) => void }>;
    _writeReqid: number;
    _buffer: unknown[];
    _waitWindow: boolean;
    outgoing: { id: number; window: number; packetSize: number; state: string };
  };
  wire: Buffer[];
  seqnos: Array<number | undefined>;
  slowWrites: Array<{ data: Buffer; position: number; cb: (err?: Error | null) => void }>;
  sock: Duplex;
  flushed: number;
}

function fake(packetSize = 32768, window = 2 * 1024 * 1024): Fake {
  const wire: Buffer[] = [];
  const seqnos: Array<number | undefined> = [];
  const slowWrites: Fake['slowWrites'] = [];
  const internals: Fake['internals'] = {
    _protocol: {
      _cipher: { outSeqno: 7, _instance: { encrypt: (_p: Buffer, seq?: number) => void seqnos.push(seq) } },
      _packetRW: { write: { allocStart: 5 } },
    },
    _requests: {},
    _writeReqid: -1,
    _buffer: [],
    _waitWindow: false,
    outgoing: { id: 3, window, packetSize, state: 'open' },
  };
  const sftp = Object.assign(internals, {
    write(_h: Buffer, data: Buffer, off: number, len: number, position: number, cb: (err?: Error | null) => void): void {
      slowWrites.push({ data: Buffer.from(data.subarray(off, off + len)), position, cb });
    },
  }) as unknown as SFTPWrapper;
  const f: Fake = { sftp, internals, wire, seqnos, slowWrites, flushed: 0, sock: undefined as unknown as Duplex };
  f.sock = {
    writable: true,
    write(buffer: Buffer, cb: (err?: Error | null) => void): boolean {
      wire.push(Buffer.from(buffer));
      cb();
      return true;
    },
  } as unknown as Duplex;
  return f;
}

/** Splits written bytes into SSH packets (16-byte tag after each) and joins their CHANNEL_DATA payloads. */
function unframe(bytes: Buffer, block: number): { channelData: Buffer; packets: number; maxData: number } {
  const parts: Buffer[] = [];
  let p = 0;
  let packets = 0;
  let maxData = 0;
  while (p < bytes.length) {
    const packetLen = bytes.readUInt32BE(p);
    const padLen = bytes[p + 4] as number;
    expect(padLen).toBeGreaterThanOrEqual(4);
    expect(packetLen % block).toBe(0);
    expect(bytes[p + 5]).toBe(94); // CHANNEL_DATA
    expect(bytes.readUInt32BE(p + 6)).toBe(3); // recipient channel
    const dataLen = bytes.readUInt32BE(p + 10);
    expect(1 + 1 + 4 + 4 + dataLen + padLen).toBe(packetLen);
    parts.push(bytes.subarray(p + 14, p + 14 + dataLen));
    maxData = Math.max(maxData, dataLen);
    p += 4 + packetLen + 16;
    packets++;
  }
  expect(p).toBe(bytes.length);
  return { channelData: Buffer.concat(parts), packets, maxData };
}

const framerOf = (f: Fake, cipher: string): NonNullable<ReturnType<typeof packetFramer>> => {
  const framer = packetFramer(f.internals._protocol, f.sock, cipher);
  if (!framer) throw new Error(`no framer for ${cipher}`);
  return framer;
};

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'safe-scp-direct-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

async function withFile<T>(bytes: Buffer, fn: (file: fsp.FileHandle) => Promise<T>): Promise<T> {
  const p = path.join(dir, 'src.bin');
  fs.writeFileSync(p, bytes);
  const file = await fsp.open(p, 'r');
  try {
    return await fn(file);
  } finally {
    await file.close();
  }
}

function send(w: NonNullable<ReturnType<typeof directWriter>>, handle: Buffer, file: fsp.FileHandle, position: number, length: number): { sent: Promise<void>; done: Promise<Error | null | undefined> } {
  let onSent!: () => void;
  const sent = new Promise<void>((resolve) => (onSent = resolve));
  const done = new Promise<Error | null | undefined>((resolve) => w.write(handle, file, position, length, onSent, (err) => resolve(err)));
  return { sent, done };
}

describe.each([
  { cipher: 'aes128-gcm@openssh.com', block: 16, seqno: false },
  { cipher: 'chacha20-poly1305@openssh.com', block: 8, seqno: true },
])('directWriter with $cipher', ({ cipher, block, seqno }) => {
  test('one WRITE framed as ssh2 would: packets within the limit, padded to the block, data byte for byte', async () => {
    const f = fake(32768);
    let flushes = 0;
    const w = directWriter(f.sftp, framerOf(f, cipher), () => void flushes++);
    expect(w).toBeDefined();
    const data = crypto.randomBytes(261120 + 1000);
    const handle = Buffer.from([0, 0, 0, 9]);
    await withFile(data, async (file) => {
      const { sent, done } = send(w!, handle, file, 1000, 261120);
      await sent;
      expect(flushes).toBe(1);
      expect(f.wire).toHaveLength(1);
      const { channelData, packets, maxData } = unframe(f.wire[0] as Buffer, block);
      expect(maxData).toBeLessThanOrEqual(32768);
      expect(packets).toBe(Math.ceil(channelData.length / 32768));
      // SFTP: length, WRITE, request id 0, handle, offset 1000, data length, data.
      expect(channelData.readUInt32BE(0)).toBe(channelData.length - 4);
      expect(channelData[4]).toBe(6);
      expect(channelData.readUInt32BE(5)).toBe(0);
      expect(channelData.readUInt32BE(9)).toBe(4);
      expect(channelData.subarray(13, 17)).toEqual(handle);
      expect(channelData.readBigUInt64BE(17)).toBe(1000n);
      expect(channelData.readUInt32BE(25)).toBe(261120);
      expect(channelData.subarray(29).equals(data.subarray(1000, 1000 + 261120))).toBe(true);
      // Sequence numbers advance once per packet; the window is charged for the whole message.
      expect(f.internals._protocol._cipher.outSeqno).toBe(7 + packets);
      expect(f.seqnos).toEqual(seqno ? Array.from({ length: packets }, (_, i) => 7 + i) : Array.from({ length: packets }, () => undefined));
      expect(f.internals.outgoing.window).toBe(2 * 1024 * 1024 - channelData.length);
      // The answer arrives through ssh2's request table.
      f.internals._requests[0]?.cb(undefined);
      await expect(done).resolves.toBeUndefined();
      expect(w!.counts).toEqual({ direct: 1, fallback: 0 });
    });
  });

  test('too little window, a key exchange, or requests already queued in ssh2: the same bytes go through SFTP#write', async () => {
    const data = crypto.randomBytes(100_000);
    for (const block of ['window', 'kex', 'queued'] as const) {
      const f = fake(32768, block === 'window' ? 50_000 : 2 * 1024 * 1024);
      if (block === 'kex') f.internals._protocol._kexinit = {};
      if (block === 'queued') f.internals._buffer.push(Buffer.alloc(1));
      const w = directWriter(f.sftp, framerOf(f, cipher), () => undefined);
      await withFile(data, async (file) => {
        const { sent, done } = send(w!, Buffer.from('h'), file, 0, data.length);
        await sent;
        expect(f.wire).toHaveLength(0);
        expect(f.slowWrites).toHaveLength(1);
        expect(f.slowWrites[0]?.data.equals(data)).toBe(true);
        expect(f.slowWrites[0]?.position).toBe(0);
        f.slowWrites[0]?.cb(undefined);
        await expect(done).resolves.toBeUndefined();
        expect(w!.counts).toEqual({ direct: 0, fallback: 1 });
      });
    }
  });
});

test('a file shorter than asked fails with ShortRead and sends nothing', async () => {
  const f = fake();
  const w = directWriter(f.sftp, framerOf(f, 'aes128-gcm@openssh.com'), () => undefined);
  await withFile(Buffer.alloc(1000, 1), async (file) => {
    const { sent, done } = send(w!, Buffer.from('h'), file, 0, 5000);
    await sent;
    const err = await done;
    expect(err).toBeInstanceOf(ShortRead);
    expect(f.wire).toHaveLength(0);
    expect(f.slowWrites).toHaveLength(0);
  });
});

test('no framer for a cipher without in-place encryption or with compression; no writer for an unknown ssh2 shape', () => {
  const f = fake();
  expect(packetFramer(f.internals._protocol, f.sock, 'aes128-ctr')).toBeUndefined();
  const framer = framerOf(f, 'aes128-gcm@openssh.com');
  expect(directWriter({} as SFTPWrapper, framer, () => undefined)).toBeUndefined();
  f.internals._protocol._packetRW.write.allocStart = 0;
  expect(packetFramer(f.internals._protocol, f.sock, 'aes128-gcm@openssh.com')).toBeUndefined();
});
