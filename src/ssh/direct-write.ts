// Sends SFTP WRITE requests as ready-made SSH packets, with the file's bytes read straight into them.
//
// Through ssh2, one 128 KiB WRITE costs a buffer for the SFTP message and a copy into it, five CHANNEL_DATA
// packets each allocated, copied into and padded with its own randomFillSync call, and five socket writes. For
// a 512 MiB upload that per-packet work is about a third of the client's CPU (README, Performance), and on a
// 2-core runner the client competes with sshd for the same cores. Here one buffer holds all the packets of a
// request: the file is read into the data spans with one readv, and packet-framer.ts frames the packets around
// them, encrypts them in place and writes them with one socket write. The buffers are reused once the socket is
// done with them: fresh ones cost page faults on every read and bring garbage collections.
//
// When the framer is not ready (key exchange), the channel window is short, or ssh2 still holds requests, the
// request goes through ssh2's SFTP#write instead, behind what ssh2 holds, so requests never overtake each other.
// The SFTP request table and channel window used here are ssh2 internals (pinned by the version in package.json,
// covered by every integration test); when they do not look as expected there is no direct writer.
import type { FileHandle } from 'node:fs/promises';
import type { SFTPWrapper } from 'ssh2';
import { PACKET_HEAD, type PacketFramer, type Slot } from './packet-framer.js';

const SSH_FXP_WRITE = 6;

interface SftpInternals {
  _requests?: Record<number, { cb: (err?: Error | null) => void }>;
  _writeReqid?: number;
  _buffer?: unknown[];
  _waitWindow?: boolean;
  outgoing?: { id?: number; state?: string; window?: number; packetSize?: number };
}

export type WriteCallback = (err?: Error | null) => void;

export interface DirectWriter {
  /**
   * Reads `length` bytes at `position` of `file` and sends them as one WRITE on `handle`. Calls `sent` once the
   * request is on its way (written, or queued inside ssh2 in order), or failed before that; requests issued
   * afterwards cannot overtake it. Calls `done` once the server answered, or with the read or send error
   * (`ShortRead` when the file gave fewer bytes than asked).
   */
  write(handle: Buffer, file: FileHandle, position: number, length: number, sent: () => void, done: WriteCallback): void;
  /** Requests sent as prepared packets, and those that went through ssh2's SFTP#write instead. */
  readonly counts: { direct: number; fallback: number };
}

export class ShortRead extends Error {
  constructor(readonly wanted: number, readonly got: number) {
    super(`read ${got} of ${wanted} bytes`);
  }
}

/** Packet buffers of one size, taken for a request and given back when the socket has written them. */
class BufferStock {
  private readonly free: Buffer[] = [];
  private size = 0;

  take(size: number): Buffer {
    if (size > this.size) {
      this.size = size;
      this.free.length = 0;
    }
    return this.free.pop() ?? Buffer.allocUnsafe(this.size);
  }

  give(buffer: Buffer): void {
    // Bounded by the requests in flight; a buffer from before a size change is dropped.
    if (buffer.length === this.size && this.free.length < 64) this.free.push(buffer);
  }
}

/**
 * The direct writer for one SFTP session, or undefined when ssh2's SFTP internals do not look as expected.
 * `framer` frames and encrypts the packets (packet-framer.ts). `flushPending` sends what the request batcher
 * still holds (batch-requests.ts), so a prepared request never overtakes a smaller one issued before it.
 */
export function directWriter(sftp: SFTPWrapper, framer: PacketFramer, flushPending: () => void): DirectWriter | undefined {
  const s = sftp as unknown as SftpInternals;
  if (typeof s._requests !== 'object' || typeof s._writeReqid !== 'number' || !Array.isArray(s._buffer)) return undefined;
  const out = s.outgoing;
  if (typeof out?.id !== 'number' || typeof out.packetSize !== 'number' || out.packetSize < 1024 || typeof out.window !== 'number') return undefined;
  const stock = new BufferStock();
  const counts = { direct: 0, fallback: 0 };

  /** The request can go out now, in order: the framer is ready, the channel is open with window, nothing queued. */
  const canSendNow = (messageLen: number): boolean =>
    framer.ready() && out.state === 'open' && (out.window ?? 0) >= messageLen && (s._buffer?.length ?? 1) === 0 && s._waitWindow !== true;

  const write = (handle: Buffer, file: FileHandle, position: number, length: number, sent: () => void, done: WriteCallback): void => {
    const messageLen = 4 + 1 + 4 + 4 + handle.length + 8 + 4 + length;
    const { slots, total } = framer.layout(messageLen, out.packetSize as number);
    const whole = stock.take(total);
    const buffer = whole.length === total ? whole : whole.subarray(0, total);
    // The file's bytes land where each packet carries data; the first packet starts with the SFTP header.
    const header = messageLen - length;
    const spans = slots.map((slot, i) => {
      const dataAt = slot.start + PACKET_HEAD;
      return buffer.subarray(dataAt + (i === 0 ? header : 0), dataAt + slot.dataLen);
    });
    file.readv(spans, position).then(
      ({ bytesRead }) => {
        if (bytesRead !== length) {
          stock.give(whole);
          sent();
          done(new ShortRead(length, bytesRead));
          return;
        }
        flushPending();
        if (!canSendNow(messageLen)) {
          // Gather the data back and let ssh2 queue it behind what it already holds.
          counts.fallback++;
          const data = Buffer.concat(spans, length);
          stock.give(whole);
          sftp.write(handle, data, 0, length, position, (err) => done(err));
          sent();
          return;
        }
        counts.direct++;
        const reqid = (s._writeReqid = ((s._writeReqid as number) + 1) >>> 0);
        let p = (slots[0] as Slot).start + PACKET_HEAD;
        buffer.writeUInt32BE(messageLen - 4, p);
        buffer[p + 4] = SSH_FXP_WRITE;
        buffer.writeUInt32BE(reqid, p + 5);
        buffer.writeUInt32BE(handle.length, p + 9);
        handle.copy(buffer, p + 13);
        p += 13 + handle.length;
        buffer.writeUInt32BE(Math.floor(position / 2 ** 32), p);
        buffer.writeUInt32BE(position >>> 0, p + 4);
        buffer.writeUInt32BE(length, p + 8);
        (s._requests as NonNullable<SftpInternals['_requests']>)[reqid] = { cb: (err) => done(err) };
        framer.seal(buffer, slots, out.id as number);
        out.window = (out.window as number) - messageLen;
        framer.send(buffer, () => stock.give(whole));
        sent();
      },
      (err: unknown) => {
        stock.give(whole);
        sent();
        done(err instanceof Error ? err : new Error(String(err)));
      },
    );
  };

  return { write, counts };
}
