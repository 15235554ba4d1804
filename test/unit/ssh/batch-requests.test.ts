// The request batcher: same bytes, same order, packets within the channel's limit, nothing overtaken.
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { SFTPWrapper } from 'ssh2';
import type { Duplex } from 'node:stream';
import { batchSftpRequests } from '../../../src/ssh/batch-requests.js';
import { packetFramer, type ProtocolInternals } from '../../../src/ssh/packet-framer.js';

type Sent = { op: 'data'; channel: number; data: Buffer } | { op: 'close'; channel: number };

function fakeSftp(packetSize = 4000): { sftp: SFTPWrapper; sent: Sent[]; send: (data: Buffer) => void; close: () => void } {
  const sent: Sent[] = [];
  const protocol = {
    marker: 'real',
    channelData(channel: number, data: Buffer): void {
      sent.push({ op: 'data', channel, data: Buffer.from(data) });
    },
    channelClose(this: { marker: string }, channel: number): void {
      expect(this.marker).toBe('real'); // called on the real protocol, not the proxy
      sent.push({ op: 'close', channel });
    },
  };
  const internals = { _protocol: protocol as unknown, outgoing: { id: 7, packetSize } };
  const sftp = internals as unknown as SFTPWrapper;
  const proto = (): typeof protocol => internals._protocol as typeof protocol;
  return { sftp, sent, send: (data) => proto().channelData(7, data), close: () => proto().channelClose(7) };
}

const bytes = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);
const joined = (sent: Sent[]): Buffer => Buffer.concat(sent.flatMap((s) => (s.op === 'data' ? [s.data] : [])));

describe('batchSftpRequests', () => {
  test('requests of one turn go out as one packet at the next turn, bytes and order kept', async () => {
    const f = fakeSftp();
    expect(batchSftpRequests(f.sftp)).toBeInstanceOf(Function);
    f.send(bytes(10, 1));
    f.send(bytes(20, 2));
    f.send(bytes(30, 3));
    expect(f.sent).toEqual([]);
    await nextTurn();
    expect(f.sent).toHaveLength(1);
    expect(joined(f.sent)).toEqual(Buffer.concat([bytes(10, 1), bytes(20, 2), bytes(30, 3)]));
  });

  test('no packet exceeds the maximum packet size; full-size pieces pass straight through, after what waits', async () => {
    const f = fakeSftp(4000);
    batchSftpRequests(f.sftp);
    const pieces = [bytes(1600, 1), bytes(1600, 2), bytes(1600, 3), bytes(4000, 4), bytes(3999, 5), bytes(2, 6)];
    for (const p of pieces) f.send(p);
    await nextTurn();
    expect(joined(f.sent)).toEqual(Buffer.concat(pieces));
    for (const s of f.sent) if (s.op === 'data') expect(s.data.length).toBeLessThanOrEqual(4000);
    expect(f.sent.map((s) => (s.op === 'data' ? s.data.length : 0))).toEqual([3200, 1600, 4000, 3999, 2]);
  });

  test('channelClose flushes first, so it never overtakes a request', async () => {
    const f = fakeSftp();
    batchSftpRequests(f.sftp);
    f.send(bytes(5, 9));
    f.close();
    expect(f.sent.map((s) => s.op)).toEqual(['data', 'close']);
    await nextTurn();
    expect(f.sent).toHaveLength(2);
  });

  test('with a framer, a turn\'s requests go out as one packet framed in place, on the socket, bytes and order kept', async () => {
    const f = fakeSftp(4000);
    const wire: Buffer[] = [];
    const sock = { writable: true, write: (b: Buffer) => wire.push(Buffer.from(b)) } as unknown as Duplex;
    const cipherState: ProtocolInternals = { _cipher: { outSeqno: 5, _instance: { encrypt: () => undefined } }, _packetRW: { write: { allocStart: 5 } } };
    const framer = packetFramer(cipherState, sock, 'aes128-gcm@openssh.com');
    batchSftpRequests(f.sftp, framer);
    const pieces = [bytes(10, 1), bytes(20, 2), bytes(30, 3)];
    for (const p of pieces) f.send(p);
    await nextTurn();
    expect(f.sent).toEqual([]); // nothing through ssh2's channelData
    expect(wire).toHaveLength(1);
    const packet = wire[0] as Buffer;
    expect(packet.readUInt32BE(0) % 16).toBe(0);
    expect(packet[5]).toBe(94);
    expect(packet.readUInt32BE(6)).toBe(7);
    expect(packet.readUInt32BE(10)).toBe(60);
    expect(packet.subarray(14, 74)).toEqual(Buffer.concat(pieces));
    expect(packet.length).toBe(4 + packet.readUInt32BE(0) + 16);
    expect(cipherState._cipher?.outSeqno).toBe(6);
    // During a key exchange the framer stands aside and ssh2 queues the packet itself.
    cipherState._kexinit = {};
    f.send(bytes(5, 4));
    await nextTurn();
    expect(wire).toHaveLength(1);
    expect(joined(f.sent)).toEqual(bytes(5, 4));
  });

  test('an unknown ssh2 shape is left alone', () => {
    const bare = {} as unknown as SFTPWrapper;
    expect(batchSftpRequests(bare)).toBeUndefined();
    expect(bare).toEqual({});
  });
});
