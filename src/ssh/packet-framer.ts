// Frames CHANNEL_DATA packets the way ssh2 would, in one caller-owned buffer, and encrypts them in place with
// ssh2's own cipher object (same sequence numbers), for senders that bypass ssh2's per-packet path:
// direct-write.ts (file data read straight into packets) and batch-requests.ts (the small requests of a turn).
//
// ssh2 allocates every packet, fills its padding with its own randomFillSync call (~20 us each here), copies the
// payload in and writes it to the socket on its own. Only the AEAD ciphers of ssh2's native binding
// (aes*-gcm, chacha20-poly1305) encrypt in place; with any other cipher, no binding, or compression there is no
// framer, and while a key exchange is in progress (or ssh2 still holds packets queued by one) ready() is false,
// so callers go through ssh2 and nothing is reordered. This reaches into ssh2 internals (pinned by the version in
// package.json, covered by every integration test); when they do not look as expected it is never used.
import { randomFillSync } from 'node:crypto';
import type { Duplex } from 'node:stream';

const CHANNEL_DATA = 94;
/** 4 packet length + 1 padding length + 1 message type + 4 recipient channel + 4 data length. */
export const PACKET_HEAD = 14;
const TAG = 16;

interface CipherInternals {
  outSeqno: number;
  _dead?: boolean;
  _instance?: { encrypt?: (packet: Buffer, seqno?: number) => void };
}

export interface ProtocolInternals {
  _cipher?: CipherInternals;
  _kexinit?: unknown;
  _queue?: unknown;
  _packetRW?: { write?: { allocStart?: number } };
}

/** Where one CHANNEL_DATA packet sits in a buffer. */
export interface Slot {
  readonly start: number;
  /** Bytes of channel data this packet carries. */
  readonly dataLen: number;
  readonly padLen: number;
  /** The packet_length field: everything after it except the tag. */
  readonly packetLen: number;
}

export interface PacketFramer {
  /** Where the packets carrying `dataLen` bytes of channel data (at most `packetSize` each) go in one buffer. */
  layout(dataLen: number, packetSize: number): { slots: Slot[]; total: number };
  /** Prepared packets may go out now, in order with ssh2's own: same cipher, no key exchange, nothing queued. */
  ready(): boolean;
  /** Writes the headers and padding of `slots` (their data already in place) and encrypts them in place, in order. */
  seal(buffer: Buffer, slots: readonly Slot[], channel: number): void;
  /** Writes sealed packets to the connection's socket; `written` once the socket no longer needs the buffer. */
  send(buffer: Buffer, written?: () => void): void;
}

/** Cipher block size for the padding, and whether encrypt wants the sequence number (chacha20-poly1305). */
function aeadShape(cipherName: string): { block: number; withSeqno: boolean } | undefined {
  if (/^aes(128|256)-gcm@openssh\.com$/.test(cipherName)) return { block: 16, withSeqno: false };
  if (cipherName === 'chacha20-poly1305@openssh.com') return { block: 8, withSeqno: true };
  return undefined;
}

/** Random padding from a pooled block: one randomFillSync per 4 KiB of padding instead of one per packet. */
class PaddingSource {
  private pool = Buffer.alloc(0);
  private at = 0;

  fill(target: Buffer, offset: number, length: number): void {
    if (this.at + length > this.pool.length) {
      this.pool = randomFillSync(Buffer.allocUnsafe(4096));
      this.at = 0;
    }
    this.pool.copy(target, offset, this.at, this.at + length);
    this.at += length;
  }
}

/**
 * The framer for a connection whose ssh2 protocol object is `protocol` and whose socket is `sock`, or undefined
 * when the negotiated cipher or ssh2's internals do not allow it.
 */
export function packetFramer(protocol: ProtocolInternals | undefined, sock: Duplex, cipherName: string): PacketFramer | undefined {
  const shape = aeadShape(cipherName);
  const cipher = protocol?._cipher;
  if (!shape || !protocol || !cipher) return undefined;
  if (typeof cipher._instance?.encrypt !== 'function' || typeof cipher.outSeqno !== 'number') return undefined;
  if (protocol._packetRW?.write?.allocStart !== 5) return undefined; // compression rewrites every packet
  const cipherClass = cipher.constructor;
  const padding = new PaddingSource();

  const layout = (dataLen: number, packetSize: number): { slots: Slot[]; total: number } => {
    const slots: Slot[] = [];
    let total = 0;
    for (let sent = 0; sent < dataLen; sent += packetSize) {
      const len = Math.min(packetSize, dataLen - sent);
      // padding_length byte + payload (type, channel, length, data) + padding: a multiple of the block size.
      const unpadded = 1 + 1 + 4 + 4 + len;
      let padLen = shape.block - (unpadded % shape.block);
      if (padLen < 4) padLen += shape.block;
      const packetLen = unpadded + padLen;
      slots.push({ start: total, dataLen: len, padLen, packetLen });
      total += 4 + packetLen + TAG;
    }
    return { slots, total };
  };

  const ready = (): boolean => {
    const current = protocol._cipher;
    return current !== undefined && current.constructor === cipherClass && current._dead !== true && protocol._kexinit === undefined && protocol._queue === undefined;
  };

  const seal = (buffer: Buffer, slots: readonly Slot[], channel: number): void => {
    const c = protocol._cipher as CipherInternals;
    const instance = c._instance as { encrypt: (packet: Buffer, seqno?: number) => void };
    for (const slot of slots) {
      const at = slot.start;
      buffer.writeUInt32BE(slot.packetLen, at);
      buffer[at + 4] = slot.padLen;
      buffer[at + 5] = CHANNEL_DATA;
      buffer.writeUInt32BE(channel, at + 6);
      buffer.writeUInt32BE(slot.dataLen, at + 10);
      padding.fill(buffer, at + PACKET_HEAD + slot.dataLen, slot.padLen);
      const packet = buffer.subarray(at, at + 4 + slot.packetLen + TAG);
      if (shape.withSeqno) instance.encrypt(packet, c.outSeqno);
      else instance.encrypt(packet);
      c.outSeqno = (c.outSeqno + 1) >>> 0;
    }
  };

  const send = (buffer: Buffer, written?: () => void): void => {
    // ssh2 writes only to a writable socket; a dead one fails every pending request (RemoteFs).
    if (sock.writable) sock.write(buffer, (err) => (err ? undefined : written?.()));
  };

  return { layout, ready, seal, send };
}
