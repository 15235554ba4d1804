// Packs the small SFTP requests of one event-loop turn into shared SSH packets.
//
// ssh2 sends every SFTP request as its own CHANNEL_DATA packet: for a tree of small files (open, write, fstat,
// close, rename per file) that is a packet, a padding fill, an encryption call and a decryption on the server
// per request. The SFTP stream does not care where packets split, so the requests issued in one turn go out
// together, in order, in packets of at most the channel's maximum packet size. ssh2 has already charged the
// channel window for each piece, so the window accounting is unchanged.
//
// This reaches into two ssh2 internals (SFTP#_protocol, SFTP#outgoing), pinned by the ssh2 version in
// package.json and covered by every integration test; when they are not there it changes nothing.
import type { SFTPWrapper } from 'ssh2';
import { PACKET_HEAD, type PacketFramer } from './packet-framer.js';

interface ProtocolLike {
  channelData(channel: number, data: Buffer | string): void;
  channelClose(channel: number): void;
}

interface SftpInternals {
  _protocol?: ProtocolLike;
  outgoing?: { id?: number; packetSize?: number };
}

/**
 * Installs the batching on one SFTP session. With a `framer` (packet-framer.ts) a turn's requests are copied
 * once, into a packet framed and encrypted in place, instead of concatenated and handed to ssh2's per-packet
 * path. Returns a function that sends what waits right now (for a sender that bypasses channelData,
 * direct-write.ts), or undefined (and changes nothing) on an unknown ssh2 shape.
 */
export function batchSftpRequests(sftp: SFTPWrapper, framer?: PacketFramer): (() => void) | undefined {
  const internals = sftp as unknown as SftpInternals;
  const protocol = internals._protocol;
  const packetSize = internals.outgoing?.packetSize;
  if (!protocol || typeof protocol.channelData !== 'function' || typeof protocol.channelClose !== 'function') return undefined;
  if (typeof packetSize !== 'number' || packetSize < 1024) return undefined;

  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let pendingChannel = -1;
  let scheduled = false;

  const flush = (): void => {
    if (pendingBytes === 0) return;
    const pieces = pending;
    const bytes = pendingBytes;
    const channel = pendingChannel;
    pending = [];
    pendingBytes = 0;
    if (framer?.ready()) {
      // At most packetSize bytes wait (channelData flushes before that), so this is one packet.
      const { slots, total } = framer.layout(bytes, packetSize);
      const buffer = Buffer.allocUnsafe(total);
      let at = (slots[0]?.start ?? 0) + PACKET_HEAD;
      for (const p of pieces) at += p.copy(buffer, at);
      framer.seal(buffer, slots, channel);
      framer.send(buffer);
      return;
    }
    protocol.channelData(channel, pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, bytes));
  };
  const flushLater = (): void => {
    scheduled = false;
    flush();
  };

  const channelData = (channel: number, data: Buffer | string): void => {
    // Full-size pieces (bulk file data) and anything unusual go straight out, after what is already waiting.
    if (!Buffer.isBuffer(data) || data.length >= packetSize || (pendingBytes > 0 && channel !== pendingChannel)) {
      flush();
      if (!Buffer.isBuffer(data) || data.length >= packetSize) {
        protocol.channelData(channel, data);
        return;
      }
    }
    if (pendingBytes + data.length > packetSize) flush();
    pendingChannel = channel;
    pending.push(data);
    pendingBytes += data.length;
    if (!scheduled) {
      scheduled = true;
      setImmediate(flushLater);
    }
  };

  internals._protocol = new Proxy(protocol, {
    get(target, property) {
      if (property === 'channelData') return channelData;
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      // Anything else (channelClose) must not overtake the requests still waiting.
      return (...args: unknown[]): unknown => {
        flush();
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return flush;
}
