// In-process behaviour of the host limiter: waits, aborts, stale recovery and state-dir safety.
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  acquireHostSlot,
  ensureStateDir,
  hostDirName,
  hostStateDir,
  HostSlotTimeoutError,
  StateDirError,
  type HostSlotOptions,
  type ThrottleClock,
} from '../../../src/throttle/host-limiter.js';
import { deadPid } from './child-harness.js';

let work: string;
let n = 0;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'safe-scp-throttle-unit-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A fresh state dir per test, so tests never see each other's slots. */
function freshStateDir(): string {
  n += 1;
  return path.join(work, `state-${n}`);
}

/** Virtual time: sleep() advances now() at once, so interval waits cost no real time. */
function fakeClock(start = 1_000_000): ThrottleClock & { slept: number[] } {
  let now = start;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    sleep: async (ms, signal) => {
      signal?.throwIfAborted();
      slept.push(ms);
      now += ms;
    },
  };
}

function opts(stateDir: string, extra: Partial<HostSlotOptions> = {}): HostSlotOptions {
  return { stateDir, concurrency: 1, intervalMs: 0, ...extra };
}

async function slotFiles(stateDir: string, host: string): Promise<string[]> {
  return (await readdir(await hostStateDir(stateDir, host))).filter((name) => name.startsWith('slot-'));
}

async function plantSlot(stateDir: string, host: string, record: Record<string, unknown>, name = 'slot-planted.json'): Promise<string> {
  const file = path.join(await hostStateDir(stateDir, host), name);
  await writeFile(file, JSON.stringify(record));
  return file;
}

describe('hostDirName', () => {
  test('is file-name safe for IPv6, zones, paths and odd characters', () => {
    for (const key of ['[::1]:22', 'fe80::1%eth0:2222', '../../etc/passwd:22', 'a b\u0000c:22', 'x'.repeat(500)]) {
      const name = hostDirName(key);
      expect(name).toMatch(/^host-[a-z0-9._-]+-[0-9a-f]{16}$/);
      expect(name.length).toBeLessThanOrEqual(5 + 48 + 1 + 16);
    }
  });

  test('folds case and whitespace, keeps distinct keys apart', () => {
    expect(hostDirName('Deploy.Example.COM:22')).toBe(hostDirName(' deploy.example.com:22 '));
    expect(hostDirName('[::1]:22')).not.toBe(hostDirName('[::1]:2222'));
    // Same sanitised prefix, different keys: the hash keeps them apart.
    expect(hostDirName('a:b:22')).not.toBe(hostDirName('a_b_22'));
  });
});

describe('acquireHostSlot', () => {
  test('rejects invalid options before touching the file system', async () => {
    const stateDir = freshStateDir();
    await expect(acquireHostSlot('h:22', opts(stateDir, { concurrency: 0 }))).rejects.toThrow(RangeError);
    await expect(acquireHostSlot('h:22', opts(stateDir, { concurrency: 1.5 }))).rejects.toThrow(RangeError);
    await expect(acquireHostSlot('h:22', opts(stateDir, { intervalMs: -1 }))).rejects.toThrow(RangeError);
    await expect(acquireHostSlot('h:22', opts(stateDir, { maxWaitMs: Number.NaN }))).rejects.toThrow(RangeError);
    await expect(acquireHostSlot('  ', opts(stateDir))).rejects.toThrow(TypeError);
  });

  test('allows `concurrency` holders, then waits; release frees a slot and is idempotent', async () => {
    const stateDir = freshStateDir();
    const host = '127.0.0.1:2222';
    const a = await acquireHostSlot(host, opts(stateDir, { concurrency: 2 }));
    const b = await acquireHostSlot(host, opts(stateDir, { concurrency: 2 }));
    // A free slot is taken without polling; the bound only has to tell "no wait" from a poll or a timeout on a loaded machine.
    expect(a.waitedMs).toBeLessThan(500);
    expect(await slotFiles(stateDir, host)).toHaveLength(2);
    await expect(acquireHostSlot(host, opts(stateDir, { concurrency: 2, maxWaitMs: 100 }))).rejects.toThrow(HostSlotTimeoutError);

    const waiting = acquireHostSlot(host, opts(stateDir, { concurrency: 2, maxWaitMs: 5_000 }));
    await new Promise((r) => setTimeout(r, 50));
    await a.release();
    await a.release();
    const c = await waiting;
    expect(c.waitedMs).toBeGreaterThanOrEqual(40);
    await Promise.all([b.release(), c.release(), c.release()]);
    expect(await slotFiles(stateDir, host)).toHaveLength(0);
  });

  test('hosts are throttled independently', async () => {
    const stateDir = freshStateDir();
    const a = await acquireHostSlot('a:22', opts(stateDir));
    const b = await acquireHostSlot('b:22', opts(stateDir, { maxWaitMs: 0 }));
    await Promise.all([a.release(), b.release()]);
  });

  test('the timeout error names the host, the concurrency and the holder', async () => {
    const stateDir = freshStateDir();
    const held = await acquireHostSlot('busy:22', opts(stateDir));
    const error: unknown = await acquireHostSlot('busy:22', opts(stateDir, { maxWaitMs: 0 })).catch((e: unknown) => e);
    await held.release();
    expect(error).toBeInstanceOf(HostSlotTimeoutError);
    expect((error as Error).message).toContain('busy:22');
    expect((error as Error).message).toContain('host concurrency 1');
    expect((error as Error).message).toContain(`pid ${process.pid}`);
  });

  test('spaces the starts of consecutive acquisitions by intervalMs (virtual clock)', async () => {
    const stateDir = freshStateDir();
    const clock = fakeClock();
    const realStart = Date.now();
    const first = await acquireHostSlot('h:22', opts(stateDir, { concurrency: 5, intervalMs: 1_000, clock }));
    const second = await acquireHostSlot('h:22', opts(stateDir, { concurrency: 5, intervalMs: 1_000, clock }));
    const third = await acquireHostSlot('h:22', opts(stateDir, { concurrency: 5, intervalMs: 1_000, clock }));
    expect(first.waitedMs).toBe(0);
    expect(second.startedAt - first.startedAt).toBeGreaterThanOrEqual(1_000);
    expect(third.startedAt - second.startedAt).toBeGreaterThanOrEqual(1_000);
    expect(second.waitedMs).toBeGreaterThanOrEqual(1_000);
    // Slept out in one go (plus <= 10 ms jitter), not polled.
    expect(second.waitedMs).toBeLessThanOrEqual(1_010);
    expect(Date.now() - realStart).toBeLessThan(1_000);
    await Promise.all([first.release(), second.release(), third.release()]);
  });

  test('a gap of 0 lets starts follow each other at once', async () => {
    const stateDir = freshStateDir();
    const clock = fakeClock();
    const a = await acquireHostSlot('h:22', opts(stateDir, { concurrency: 2, clock }));
    const b = await acquireHostSlot('h:22', opts(stateDir, { concurrency: 2, clock }));
    expect(b.waitedMs).toBe(0);
    expect(clock.slept).toEqual([]);
    await Promise.all([a.release(), b.release()]);
  });

  test('a last start in the future (clock stepped back) delays by at most intervalMs', async () => {
    const stateDir = freshStateDir();
    const clock = fakeClock();
    const dir = await hostStateDir(stateDir, 'h:22');
    await writeFile(path.join(dir, 'state.json'), JSON.stringify({ lastStartAt: clock.now() + 3_600_000 }));
    const slot = await acquireHostSlot('h:22', opts(stateDir, { intervalMs: 500, clock }));
    expect(slot.waitedMs).toBeLessThanOrEqual(510);
    await slot.release();
  });

  test('an abort rejects a waiter with the signal reason', async () => {
    const stateDir = freshStateDir();
    const held = await acquireHostSlot('h:22', opts(stateDir));
    const controller = new AbortController();
    const reason = new Error('job cancelled');
    const started = Date.now();
    const waiting = acquireHostSlot('h:22', opts(stateDir, { signal: controller.signal }));
    setTimeout(() => controller.abort(reason), 60);
    await expect(waiting).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(1_000);
    await held.release();
    // An already aborted signal rejects without waiting; the waiter left no slot behind.
    await expect(acquireHostSlot('h:22', opts(stateDir, { signal: AbortSignal.abort(reason) }))).rejects.toBe(reason);
    expect(await slotFiles(stateDir, 'h:22')).toHaveLength(0);
  });

  test('an abort also interrupts a wait for the interval gap', async () => {
    const stateDir = freshStateDir();
    const first = await acquireHostSlot('h:22', opts(stateDir, { concurrency: 2, intervalMs: 10_000 }));
    const controller = new AbortController();
    setTimeout(() => controller.abort('stop'), 50);
    await expect(acquireHostSlot('h:22', opts(stateDir, { concurrency: 2, intervalMs: 10_000, signal: controller.signal }))).rejects.toBe('stop');
    await first.release();
  });

  test('maxWaitMs bounds the wait in real time', async () => {
    const stateDir = freshStateDir();
    const held = await acquireHostSlot('h:22', opts(stateDir));
    const started = Date.now();
    await expect(acquireHostSlot('h:22', opts(stateDir, { maxWaitMs: 200 }))).rejects.toThrow(/gave up after waiting \d+ ms/);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(195);
    expect(took).toBeLessThan(1_000);
    await held.release();
  });
});

describe('stale recovery', () => {
  const me = os.hostname();

  test('a slot whose pid is dead on this machine is removed and taken', async () => {
    const stateDir = freshStateDir();
    const pid = await deadPid();
    const file = await plantSlot(stateDir, 'h:22', { pid, hostname: me, createdAt: Date.now(), token: `${pid}-x` });
    const slot = await acquireHostSlot('h:22', opts(stateDir, { maxWaitMs: 1_000 }));
    expect(slot.waitedMs).toBeLessThan(750);
    await expect(lstat(file)).rejects.toThrow(/ENOENT/);
    await slot.release();
  });

  test('a slot older than staleAfterMs is stale even if its pid lives', async () => {
    const stateDir = freshStateDir();
    const file = await plantSlot(stateDir, 'h:22', { pid: process.pid, hostname: me, createdAt: Date.now() - 5_000, token: 'old-1' });
    const slot = await acquireHostSlot('h:22', opts(stateDir, { staleAfterMs: 1_000, maxWaitMs: 0 }));
    expect(slot.reclaimed).toEqual([{ owner: expect.objectContaining({ pid: process.pid, token: 'old-1' }), reason: 'too-old' }]);
    await expect(lstat(file)).rejects.toThrow(/ENOENT/);
    await slot.release();
  });

  test('the default maximum age is generous (10 minutes)', async () => {
    const stateDir = freshStateDir();
    await plantSlot(stateDir, 'h:22', { pid: process.pid, hostname: me, createdAt: Date.now() - 9 * 60_000, token: 'nine-min' });
    await expect(acquireHostSlot('h:22', opts(stateDir, { maxWaitMs: 0 }))).rejects.toThrow(HostSlotTimeoutError);
    await plantSlot(stateDir, 'h:22', { pid: process.pid, hostname: me, createdAt: Date.now() - 11 * 60_000, token: 'eleven-min' });
    await expect(acquireHostSlot('h:22', opts(stateDir, { concurrency: 2, maxWaitMs: 0 }))).resolves.toBeDefined();
  });

  test("another machine's slot (shared dir) is honoured until it is too old", async () => {
    const stateDir = freshStateDir();
    // pid 1 is alive here, but on another host the pid says nothing: only age counts.
    await plantSlot(stateDir, 'h:22', { pid: 999_999, hostname: 'other-runner', createdAt: Date.now(), token: 'other-1' });
    await expect(acquireHostSlot('h:22', opts(stateDir, { maxWaitMs: 100, staleAfterMs: 60_000 }))).rejects.toThrow(/pid 999999 on other-runner/);
    await plantSlot(stateDir, 'h:22', { pid: 999_999, hostname: 'other-runner', createdAt: Date.now() - 120_000, token: 'other-1' });
    const slot = await acquireHostSlot('h:22', opts(stateDir, { maxWaitMs: 0, staleAfterMs: 60_000 }));
    await slot.release();
  });

  const linux = process.platform === 'linux' ? test : test.skip;
  linux('a recycled pid (same pid, different process start time) does not keep a slot alive', async () => {
    const stateDir = freshStateDir();
    const file = await plantSlot(stateDir, 'h:22', { pid: process.pid, hostname: me, createdAt: Date.now(), token: 'recycled', startTime: '1' });
    const slot = await acquireHostSlot('h:22', opts(stateDir, { maxWaitMs: 0 }));
    expect(slot.reclaimed).toEqual([{ owner: expect.objectContaining({ pid: process.pid, token: 'recycled' }), reason: 'owner-gone' }]);
    await expect(lstat(file)).rejects.toThrow(/ENOENT/);
    await slot.release();
  });

  test('an unreadable slot file counts as held for a moment, then is removed', async () => {
    const stateDir = freshStateDir();
    const file = await plantSlot(stateDir, 'h:22', {}, 'slot-garbage.json');
    await writeFile(file, '{"pid": 12');
    await expect(acquireHostSlot('h:22', opts(stateDir, { maxWaitMs: 0 }))).rejects.toThrow(HostSlotTimeoutError);
    const old = new Date(Date.now() - 10_000);
    await utimes(file, old, old);
    const slot = await acquireHostSlot('h:22', opts(stateDir, { maxWaitMs: 0 }));
    await slot.release();
  });

  test('a mutex left by a dead process is broken quickly', async () => {
    const stateDir = freshStateDir();
    const dir = await hostStateDir(stateDir, 'h:22');
    const pid = await deadPid();
    await writeFile(path.join(dir, 'lock'), JSON.stringify({ pid, hostname: me, createdAt: Date.now(), token: `${pid}-lock` }));
    const slot = await acquireHostSlot('h:22', opts(stateDir, { maxWaitMs: 1_000 }));
    expect(slot.waitedMs).toBeLessThan(750);
    await slot.release();
    // Our own mutex is gone again, and no claim or temp file was left behind.
    expect((await readdir(dir)).filter((f) => f !== 'state.json')).toEqual([]);
  });

  test('a live mutex is waited for, and broken only once older than the lock age limit', async () => {
    const stateDir = freshStateDir();
    const dir = await hostStateDir(stateDir, 'h:22');
    await writeFile(path.join(dir, 'lock'), JSON.stringify({ pid: 999_999, hostname: 'other-runner', createdAt: Date.now(), token: 'remote-lock' }));
    await expect(acquireHostSlot('h:22', opts(stateDir, { maxWaitMs: 100 }))).rejects.toThrow(HostSlotTimeoutError);
    await writeFile(path.join(dir, 'lock'), JSON.stringify({ pid: 999_999, hostname: 'other-runner', createdAt: Date.now() - 31_000, token: 'remote-lock' }));
    const slot = await acquireHostSlot('h:22', opts(stateDir, { maxWaitMs: 100 }));
    await slot.release();
  });

  test('a claim left by a breaker that died does not block breaking forever', async () => {
    const stateDir = freshStateDir();
    const dir = await hostStateDir(stateDir, 'h:22');
    const pid = await deadPid();
    const token = `${pid}-lock`;
    await writeFile(path.join(dir, 'lock'), JSON.stringify({ pid, hostname: me, createdAt: Date.now(), token }));
    await writeFile(path.join(dir, `lock.break-${token}`), JSON.stringify({ pid, hostname: me, createdAt: Date.now(), token: `${pid}-claim` }));
    const slot = await acquireHostSlot('h:22', opts(stateDir, { maxWaitMs: 1_000 }));
    expect(slot.waitedMs).toBeLessThan(750);
    await slot.release();
  });
});

describe('state directory safety', () => {
  test('creates the directory with mode 0700', async () => {
    const dir = path.join(work, 'new-state', 'nested');
    await ensureStateDir(dir);
    const info = await lstat(dir);
    expect(info.isDirectory()).toBe(true);
    if (process.platform !== 'win32') expect(info.mode & 0o777).toBe(0o700);
  });

  test('refuses a symlinked state dir, also through acquireHostSlot', async () => {
    const real = path.join(work, 'real-target');
    const link = path.join(work, 'linked-state');
    await mkdir(real, { mode: 0o700 });
    await symlink(real, link);
    await expect(ensureStateDir(link)).rejects.toThrow(StateDirError);
    await expect(ensureStateDir(link)).rejects.toThrow(/symbolic link/);
    await expect(acquireHostSlot('h:22', opts(link))).rejects.toThrow(StateDirError);
    expect(await readdir(real)).toEqual([]);
  });

  test('refuses a symlink planted in place of a per-host directory', async () => {
    const stateDir = freshStateDir();
    await ensureStateDir(stateDir);
    const elsewhere = path.join(work, 'elsewhere');
    await mkdir(elsewhere);
    await symlink(elsewhere, path.join(stateDir, hostDirName('h:22')));
    await expect(acquireHostSlot('h:22', opts(stateDir))).rejects.toThrow(/symbolic link/);
  });

  test('refuses a file, and a world-writable dir without the sticky bit; accepts one with it', async () => {
    const file = path.join(work, 'a-file');
    await writeFile(file, '');
    await expect(ensureStateDir(file)).rejects.toThrow(/not a directory/);
    if (process.platform === 'win32') return;
    const open = path.join(work, 'world-writable');
    await mkdir(open);
    await chmod(open, 0o777);
    await expect(ensureStateDir(open)).rejects.toThrow(/world-writable without the sticky bit/);
    await chmod(open, 0o1777);
    await expect(ensureStateDir(open)).resolves.toBe(open);
  });

  test("refuses a directory owned by someone else", async () => {
    const uid = process.getuid?.();
    if (uid === undefined) return;
    if (uid === 0) {
      // As root we can hand a directory to nobody (65534) and check that we then refuse it.
      const foreign = path.join(work, 'foreign');
      await mkdir(foreign, { mode: 0o700 });
      await chown(foreign, 65_534, 65_534);
      await expect(ensureStateDir(foreign)).rejects.toThrow(/owned by uid 65534, not by this user \(uid 0\)/);
    } else {
      await expect(ensureStateDir('/')).rejects.toThrow(/owned by uid 0/);
    }
  });
});
