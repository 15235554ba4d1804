// planUpload's directories: one burst of mkdirs, and what it does when a server does not keep that burst's order.
import { planUpload } from '../../../src/transfer/upload-plan.js';
import type { LocalItem, LocalSource } from '../../../src/transfer/local-tree.js';
import type { RemoteFs, RemoteStats } from '../../../src/ssh/remote-fs.js';
import { SafeScpError } from '../../../src/errors.js';

const dirItem = (rel: string): LocalItem => ({ type: 'dir', path: `/src/site/${rel}`, rel, size: 0, mode: 0o755, atimeMs: 1, mtimeMs: 1 });
const fileItem = (rel: string): LocalItem => ({ type: 'file', path: `/src/site/${rel}`, rel, size: 3, mode: 0o644, atimeMs: 1, mtimeMs: 1 });
const site: LocalSource = {
  operand: '/src/site',
  name: 'site',
  type: 'dir',
  items: [dirItem(''), dirItem('a'), dirItem('a/b'), dirItem('c'), fileItem('a/b/x'), fileItem('c/y')],
};

/**
 * A server stand-in holding a set of directories. Requests are queued and handled together at the end of the turn,
 * in the order sent or, with `reorder`, backwards (a server free to reorder a burst); each answer comes a turn later.
 */
function server(existing: string[], reorder = false, files: string[] = []) {
  const dirs = new Set(['/', '/srv', ...existing]);
  const plain = new Set(files);
  const turns: string[][] = [];
  let queue: Array<() => void> = [];
  let batch: string[] = [];
  const request = <T>(op: string, handle: () => T): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (queue.length === 0) {
        setImmediate(() => {
          const run = reorder ? [...queue].reverse() : queue;
          turns.push(batch);
          queue = [];
          batch = [];
          for (const r of run) r();
        });
      }
      batch.push(op);
      queue.push(() => {
        try {
          const value = handle();
          setImmediate(() => resolve(value));
        } catch (err: unknown) {
          setImmediate(() => reject(err));
        }
      });
    });
  const parentOf = (p: string): string => p.slice(0, p.lastIndexOf('/')) || '/';
  const noSuch = (p: string): SafeScpError => new SafeScpError('remote-no-such-path', `no such file ${p}`, { phase: 'transfer', remotePath: p });
  const rfs = {
    mkdir: (p: string) =>
      request(`mkdir ${p}`, () => {
        if (dirs.has(p) || plain.has(p)) throw new SafeScpError('remote-failure', `mkdir ${p}: Failure`, { phase: 'transfer', remotePath: p });
        if (!dirs.has(parentOf(p))) throw noSuch(p);
        dirs.add(p);
      }),
    stat: (p: string) =>
      request(`stat ${p}`, () => {
        if (plain.has(p)) return { mode: 0o100644, size: 1 } as RemoteStats;
        if (!dirs.has(p)) throw noSuch(p);
        return { mode: 0o040755, size: 0 } as RemoteStats;
      }),
    statOrUndefined: (p: string) => rfs.stat(p).catch(() => undefined),
    readdir: (p: string) =>
      request(`readdir ${p}`, () => {
        if (!dirs.has(p)) throw noSuch(p);
        return [...dirs].filter((d) => d !== p && parentOf(d) === p).map((d) => ({ name: d.slice(p.length + 1), attrs: { mode: 0o040755, size: 0 } as RemoteStats }));
      }),
    statvfs: () => Promise.reject(new Error('not offered')),
  };
  return { dirs, turns, rfs: rfs as unknown as RemoteFs };
}

test('a new tree: every mkdir in one burst, with the stat of the target, all created, nothing listed', async () => {
  const { dirs, turns, rfs } = server([]);
  const plan = await planUpload(rfs, [site], '/srv', false, () => false, () => 16);
  expect(turns[0]).toEqual(['stat /', 'stat /srv', 'mkdir /srv/site', 'mkdir /srv/site/a', 'mkdir /srv/site/a/b', 'mkdir /srv/site/c']);
  expect(turns).toHaveLength(1);
  expect([...dirs]).toEqual(expect.arrayContaining(['/srv/site/a/b', '/srv/site/c']));
  expect([...plan.created].sort()).toEqual(['/srv/site', '/srv/site/a', '/srv/site/a/b', '/srv/site/c']);
  expect(plan.jobs.map((j) => j.remote)).toEqual(['/srv/site/a/b/x', '/srv/site/c/y']);
  expect(plan.listing.size).toBe(0);
});

test('a tree that is there already: the failed mkdirs are listed in one burst, which proves them directories', async () => {
  const { turns, rfs } = server(['/srv/site', '/srv/site/a', '/srv/site/a/b', '/srv/site/c']);
  const plan = await planUpload(rfs, [site], '/srv', false, () => false, () => 16);
  expect(plan.created.size).toBe(0);
  expect(turns[1]).toEqual(['readdir /srv/site', 'readdir /srv/site/a', 'readdir /srv/site/a/b', 'readdir /srv/site/c']);
  expect(turns).toHaveLength(2);
  expect([...(plan.listing.get('/srv/site/a')?.keys() ?? [])]).toEqual(['b']);
});

test('a server that reorders the burst: the children it refused are made level by level, and all count as created', async () => {
  const { dirs, rfs } = server([], true);
  const plan = await planUpload(rfs, [site], '/srv', false, () => false, () => 16);
  for (const d of ['/srv/site', '/srv/site/a', '/srv/site/a/b', '/srv/site/c']) expect(dirs.has(d)).toBe(true);
  expect([...plan.created].sort()).toEqual(['/srv/site', '/srv/site/a', '/srv/site/a/b', '/srv/site/c']);
});

test('a parent that cannot be made: the failure names it', async () => {
  const { rfs } = server([]);
  const refusing = { ...rfs, mkdir: (p: string) => (p === '/srv/site/a' ? Promise.reject(new SafeScpError('remote-permission-denied', `mkdir ${p}: Permission denied`, { phase: 'transfer', remotePath: p })) : rfs.mkdir(p)) } as unknown as RemoteFs;
  await expect(planUpload(refusing, [site], '/srv', false, () => false, () => 16)).rejects.toMatchObject({ code: 'remote-permission-denied', remotePath: '/srv/site/a' });
});

test('a file where a directory goes: the failure says so and names both', async () => {
  const { rfs } = server(['/srv/site'], false, ['/srv/site/c']);
  await expect(planUpload(rfs, [site], '/srv', false, () => false, () => 16)).rejects.toMatchObject({
    code: 'remote-failure',
    remotePath: '/srv/site/c',
    message: 'remote /srv/site/c exists and is not a directory; cannot copy the directory /src/site/c there',
  });
});

test('a target that does not exist: the mkdirs sent on the guess that it is a directory make nothing, and the tree becomes the target', async () => {
  const { dirs, turns, rfs } = server([]);
  const plan = await planUpload(rfs, [site], '/srv/new', false, () => false, () => 16);
  expect(turns[0]).toEqual(['stat /srv', 'stat /srv/new', 'mkdir /srv/new/site', 'mkdir /srv/new/site/a', 'mkdir /srv/new/site/a/b', 'mkdir /srv/new/site/c']);
  expect([...dirs].filter((d) => d.startsWith('/srv/new')).sort()).toEqual(['/srv/new', '/srv/new/a', '/srv/new/a/b', '/srv/new/c']);
  expect([...plan.created].sort()).toEqual(['/srv/new', '/srv/new/a', '/srv/new/a/b', '/srv/new/c']);
  expect(plan.jobs.map((j) => j.remote)).toEqual(['/srv/new/a/b/x', '/srv/new/c/y']);
});
