// A write that fails with a bare FAILURE is explained by statvfs@openssh.com: RemoteFs.statvfs and explainWriteFailure.
import { asSftp } from '../helpers/channel-fakes.js';
import { classifySftpError } from '../../../src/classify.js';
import { SafeScpError } from '../../../src/errors.js';
import { explainWriteFailure, type SpaceQuery } from '../../../src/ssh/disk-space.js';
import { RemoteFs } from '../../../src/ssh/remote-fs.js';

type Cb = (err?: Error | null, value?: unknown) => void;
const never = new Promise<never>(() => undefined);
const sftpError = (code: number, message: string): Error => Object.assign(new Error(message), { code });

/** statvfs answers as SftpClient parses them (numbers); 'unsupported': the server did not announce the extension. */
function withStatvfs(answer: Record<string, number> | Error | 'unsupported'): { rfs: RemoteFs; asked: string[] } {
  const asked: string[] = [];
  const sftp = {
    offers: (extension: string) => extension === 'statvfs@openssh.com' && answer !== 'unsupported',
    statvfs: (p: string, cb: Cb) => {
      asked.push(p);
      setImmediate(() => (answer instanceof Error ? cb(answer) : cb(undefined, answer)));
    },
    open: (_p: string, _f: string, _a: unknown, cb: Cb) => setImmediate(() => cb(null, Buffer.from('h'))),
    write: (_h: Buffer, _d: Buffer, _o: number, _l: number, _p: number, cb: Cb) => setImmediate(() => cb(sftpError(4, 'Failure'))),
    fstat: (_h: Buffer, cb: Cb) => setImmediate(() => cb(null, { size: 0, mode: 0o100644 })),
    close: (_h: Buffer, cb: Cb) => setImmediate(() => cb(null)),
  };
  return { rfs: new RemoteFs(asSftp(sftp), never), asked };
}

const STATS = { f_bsize: 4096, f_frsize: 4096, f_blocks: 5120, f_bfree: 0, f_bavail: 0, f_files: 100, f_ffree: 90, f_favail: 90 };

describe('RemoteFs.statvfs', () => {
  test('free bytes are f_bavail * f_frsize; free files f_favail', async () => {
    const { rfs, asked } = withStatvfs({ ...STATS, f_bavail: 3 });
    await expect(rfs.statvfs('/srv/app')).resolves.toEqual({ freeBytes: 3 * 4096, freeFiles: 90 });
    expect(asked).toEqual(['/srv/app']);
  });

  test('fields beyond 32 bits (large filesystems) and a zero f_frsize (then f_bsize counts)', async () => {
    const { rfs } = withStatvfs({ ...STATS, f_frsize: 0, f_bavail: 2 ** 40, f_favail: 7 });
    await expect(rfs.statvfs('/')).resolves.toEqual({ freeBytes: 2 ** 40 * 4096, freeFiles: 7 });
  });

  test('a server without the extension rejects without a request', async () => {
    await expect(withStatvfs('unsupported').rfs.statvfs('/')).rejects.toBeInstanceOf(SafeScpError);
  });
});

describe('explainWriteFailure', () => {
  const bare = classifySftpError(sftpError(4, 'Failure'), 'write', '/srv/app/.x.part');

  test('a full filesystem turns the bare FAILURE into remote-disk-full', async () => {
    const e = await explainWriteFailure(withStatvfs(STATS).rfs, bare, '/srv/app', 1000);
    expect(e).toMatchObject({ code: 'remote-disk-full', details: { directory: '/srv/app', freeBytes: 0, fileBytes: 1000 } });
  });

  test('the small-file path (putSmall) is explained the same way', async () => {
    const { rfs } = withStatvfs(STATS);
    const err = await rfs.putSmall('/srv/app/.x.part', Buffer.from('hello'), 0o644, undefined).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'remote-failure' });
    await expect(explainWriteFailure(rfs, err, '/srv/app', 5)).resolves.toMatchObject({ code: 'remote-disk-full' });
  });

  test.each<[string, Record<string, number> | Error | 'unsupported']>([
    ['statvfs unsupported', 'unsupported'],
    ['statvfs fails', sftpError(4, 'Failure')],
    ['space left', { ...STATS, f_bavail: 100_000 }],
  ])('%s: the server\'s own error stands', async (_name, answer) => {
    await expect(explainWriteFailure(withStatvfs(answer).rfs, bare, '/srv/app', 1000)).resolves.toBe(bare);
  });

  test('any other error is returned without asking the server', async () => {
    const query: SpaceQuery = { statvfs: () => Promise.reject(new Error('must not be asked')) };
    const denied = classifySftpError(sftpError(3, 'Permission denied'), 'write', '/x');
    const local = new Error('EIO');
    await expect(explainWriteFailure(query, denied, '/', 1)).resolves.toBe(denied);
    await expect(explainWriteFailure(query, local, '/', 1)).resolves.toBe(local);
  });
});
