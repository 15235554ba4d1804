// Advertising SFTP extensions from the embedded server.
//
// ssh2's server answers INIT with a fixed VERSION packet (v3, no extension pairs), so clients
// (OpenSSH sftp, ssh2's ext_openssh_*) would never use posix-rename/fsync. We swap that one
// 9-byte packet for one listing ADVERTISED_EXTENSIONS when it is handed to the connection's
// protocol for this channel, keeping the channel window accounting right. If ssh2's internals
// ever look different, we silently fall back to the plain VERSION (the handlers still work).
import type { SFTPWrapper } from 'ssh2';

/** SFTP extensions implemented by sftp-session.ts and advertised in our VERSION packet. */
const ADVERTISED_EXTENSIONS: ReadonlyArray<readonly [string, string]> = [
  ['posix-rename@openssh.com', '1'],
  ['fsync@openssh.com', '1'],
];

const PLAIN_VERSION = Buffer.from([0, 0, 0, 5, 2, 0, 0, 0, 3]);

function buildVersionPacket(extensions: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [Buffer.from([2, 0, 0, 0, 3])];
  for (const [name, value] of extensions) {
    for (const s of [name, value]) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      parts.push(len, b);
    }
  }
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

const EXTENDED_VERSION = buildVersionPacket(ADVERTISED_EXTENSIONS);

interface OutgoingChannelState {
  id: number;
  window: number;
  packetSize: number;
}

type ChannelDataFn = (this: unknown, id: number, data: Buffer) => unknown;

const pendingVersionByProtocol = new WeakMap<object, Map<number, OutgoingChannelState>>();

function isOutgoingState(v: unknown): v is OutgoingChannelState {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o['id'] === 'number' && typeof o['window'] === 'number' && typeof o['packetSize'] === 'number';
}

export function advertiseExtensions(sftp: SFTPWrapper): void {
  const internals = sftp as unknown as { _protocol?: unknown; outgoing?: unknown };
  const proto = internals._protocol;
  const outgoing = internals.outgoing;
  if (typeof proto !== 'object' || proto === null || !isOutgoingState(outgoing)) return;
  const sink = proto as { channelData?: unknown };
  if (typeof sink.channelData !== 'function') return;
  let pending = pendingVersionByProtocol.get(proto);
  if (pending === undefined) {
    const waiting = new Map<number, OutgoingChannelState>();
    pending = waiting;
    pendingVersionByProtocol.set(proto, waiting);
    const original = sink.channelData as ChannelDataFn;
    sink.channelData = function channelData(this: unknown, id: number, data: Buffer): unknown {
      const state = waiting.get(id);
      if (state !== undefined) {
        waiting.delete(id); // only the first payload on the channel can be VERSION
        const extra = EXTENDED_VERSION.length - PLAIN_VERSION.length;
        if (
          Buffer.isBuffer(data) &&
          data.equals(PLAIN_VERSION) &&
          state.window >= extra &&
          state.packetSize >= EXTENDED_VERSION.length
        ) {
          state.window -= extra;
          return original.call(this, id, EXTENDED_VERSION);
        }
      }
      return original.call(this, id, data);
    };
  }
  pending.set(outgoing.id, outgoing);
}
