import { alreadyStaged, leftovers, lookUp, stagedName, type Listing } from '../../../src/transfer/staging.js';
import type { LocalItem } from '../../../src/transfer/local-tree.js';
import type { RemoteStats } from '../../../src/ssh/remote-fs.js';

const item = (over: Partial<LocalItem> = {}): LocalItem => ({ type: 'file', path: '/src/a.txt', rel: 'a.txt', size: 10, mode: 0o644, atimeMs: 1, mtimeMs: 1_700_000_000_123.4, ...over });
const file = (size: number): RemoteStats => ({ mode: 0o100644, size }) as RemoteStats;
const dir = (): RemoteStats => ({ mode: 0o040755, size: 4096 }) as RemoteStats;

describe('stagedName', () => {
  test('beside the final name, hidden, the same for the same source version', () => {
    const name = stagedName('/srv/site/a.txt', item(), false);
    // Size and mtime (whole ms) in base 36, the mode in octal.
    expect(name).toBe(`/srv/site/.a.txt.safe-scp-a-${(1_700_000_000_123).toString(36)}-644.staged`);
    expect(stagedName('/srv/site/a.txt', item({ path: '/elsewhere/a.txt' }), false)).toBe(name);
  });
  test('another size, mtime, mode or -p gives another name', () => {
    const base = stagedName('a.txt', item(), false);
    expect(base.startsWith('.a.txt.safe-scp-')).toBe(true);
    for (const other of [item({ size: 11 }), item({ mtimeMs: 1_700_000_001_000 }), item({ mode: 0o600 })]) expect(stagedName('a.txt', other, false)).not.toBe(base);
    expect(stagedName('a.txt', item(), true)).not.toBe(base);
    expect(stagedName('a.txt', item({ mtimeMs: -1500 }), false)).toBe('.a.txt.safe-scp-a--15o-644.staged');
  });
});

describe('the listing of the target directories', () => {
  const staged = stagedName('/t/a.txt', item(), false);
  const stagedBase = staged.slice(3);
  const listing: Listing = new Map([
    ['/t', new Map([
      ['a.txt', file(3)],
      [stagedBase, file(10)],
      ['.a.txt.safe-scp-0123456789abcdef.staged', file(10)],
      [stagedName('a.txt', item({ size: 11 }), false), file(11)],
      [stagedName('a.txt', item({ mtimeMs: -1500 }), true), file(10)],
      ['.a.txt.safe-scp-k3j9x0a1.part', file(4)],
      ['.ab.txt.safe-scp-k3j9x0a1.part', file(4)],
      ['.a.txt.safe-scp-notmine.txt', file(4)],
      ['a.txt.safe-scp-k3j9x0a1.part', file(4)],
    ])],
  ]);
  test('lookUp: the stats, undefined when absent, unknown when the directory was not listed', () => {
    expect(lookUp(listing, '/t', '/t/a.txt')?.valueOf()).toEqual(file(3));
    expect(lookUp(listing, '/t', '/t/b.txt')).toBeUndefined();
    expect(lookUp(listing, '/u', '/u/a.txt')).toBe('unknown');
  });
  test('alreadyStaged: a regular file of the source size under the staged name', () => {
    expect(alreadyStaged(listing, '/t', staged, item())).toBe(true);
    expect(alreadyStaged(listing, '/t', staged, item({ size: 9 }))).toBe(false);
    expect(alreadyStaged(new Map([['/t', new Map([[stagedBase, dir()]])]]), '/t', staged, item({ size: 4096 }))).toBe(false);
    expect(alreadyStaged(listing, '/u', staged, item())).toBe(false);
  });
  test('leftovers: other staged versions and partly written files of that name only', () => {
    // Staged names of other versions, as made now and as earlier builds made them (a SHA-256's 16 hex digits).
    expect(leftovers(listing, '/t', '/t/a.txt', staged).sort()).toEqual(
      ['/t/.a.txt.safe-scp-0123456789abcdef.staged', '/t/.a.txt.safe-scp-a--15o-644p.staged', '/t/.a.txt.safe-scp-b-loyw3v5n-644.staged', '/t/.a.txt.safe-scp-k3j9x0a1.part'].sort(),
    );
    expect(leftovers(listing, '/u', '/u/a.txt', staged)).toEqual([]);
  });
});
