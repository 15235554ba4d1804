// RemoteFs limits: files kept open at once follow what the server says it allows.
import type { SFTPWrapper } from 'ssh2';
import { RemoteFs } from '../../../src/ssh/remote-fs.js';

const never = new Promise<never>(() => undefined);
const fsWith = (limits: Record<string, unknown>): RemoteFs => new RemoteFs(limits as unknown as SFTPWrapper, never);

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

  test('write and read lengths come from limits@openssh.com, 32 KiB without it', () => {
    expect(fsWith({ _maxWriteLen: 261120, _maxReadLen: 261120 }).maxWriteLength).toBe(261120);
    expect(fsWith({}).maxReadLength).toBe(32768);
  });
});
