// The server's own share of the tree rows: OpenSSH's sftp-server started directly (no ssh, no link, no RemoteFs),
// the tree's files fed over its pipes through safe-scp's own SFTP client (src/ssh/sftp/client.ts, on a stand-in
// channel as its unit tests use), N files in flight: open, then write + fstat + close. What it takes here is time no
// client over any link can go below; with 256 in flight (what safe-scp keeps per channel) against 32 it also shows
// what requests waiting in sftp-server's input cost on this machine.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable, Writable } from 'node:stream';
import type { Client } from 'ssh2';
import { SftpClient } from '../src/ssh/sftp/client.js';
import { f3 } from './common.js';

const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

/** One file of the tree: where it goes under the target root, and its bytes. */
export interface FloorFile {
  readonly rel: string;
  readonly data: Buffer;
}

/**
 * Seconds from the first OPEN to the last CLOSE's answer for `files` written under `root` (its directories made
 * beforehand, locally), `inFlight` files at once. Rejects when the server is missing or any request fails.
 */
export async function sftpServerTreeS(root: string, files: readonly FloorFile[], inFlight: number): Promise<number> {
  for (const dir of new Set(files.map((f) => path.dirname(path.join(root, f.rel))))) fs.mkdirSync(dir, { recursive: true });
  const server = spawn(SFTP_SERVER, [], { stdio: ['pipe', 'pipe', 'ignore'] });
  const exited = new Promise<void>((resolve) => server.once('close', () => resolve()));
  try {
    const sftp = await SftpClient.open(overPipes(server), true);
    return await writeTree(sftp, root, files, inFlight);
  } finally {
    server.stdin.end();
    await exited;
  }
}

/** What SftpClient.open needs of an ssh2 client: `subsys` handing over a channel, here sftp-server's own pipes. */
function overPipes(server: ChildProcessByStdio<Writable, Readable, null>): Client {
  const channel = Object.assign(new EventEmitter(), {
    write: (data: Buffer, cb?: (err?: Error | null) => void): boolean => server.stdin.write(data, cb),
    stderr: { resume: (): void => undefined },
    close: (): void => void server.stdin.end(),
  });
  server.stdout.on('data', (chunk: Buffer) => channel.emit('data', chunk));
  server.once('error', (err) => channel.emit('error', err));
  server.once('close', () => channel.emit('close'));
  return { subsys: (_name: string, cb: (err: Error | undefined, ch: typeof channel) => void) => cb(undefined, channel) } as unknown as Client;
}

/** Keeps `inFlight` files going (open, then write + fstat + close back to back) until all are closed. */
function writeTree(sftp: SftpClient, root: string, files: readonly FloorFile[], inFlight: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let next = 0;
    let closed = 0;
    const failed = (what: string, f: FloorFile) => (err: Error | null): boolean => {
      if (err) reject(new Error(`${what} of ${f.rel}: ${err.message}`));
      return err !== null;
    };
    const start = (): void => {
      const f = files[next++] as FloorFile;
      sftp.open(path.join(root, f.rel), 'wx', { mode: 0o644 }, (err, handle) => {
        if (failed('OPEN', f)(err) || !handle) return;
        sftp.write(handle, f.data, 0, f.data.length, 0, (e) => void failed('WRITE', f)(e));
        sftp.fstat(handle, (e) => void failed('FSTAT', f)(e));
        sftp.close(handle, (e) => {
          if (failed('CLOSE', f)(e)) return;
          closed++;
          if (next < files.length) start();
          else if (closed === files.length) resolve((performance.now() - started) / 1000);
        });
      });
    };
    for (let i = 0; i < Math.min(inFlight, files.length); i++) start();
  });
}

/** The tree's files under `tree` (every regular file, relative paths). */
export function floorFiles(tree: string, rel = ''): FloorFile[] {
  return fs.readdirSync(path.join(tree, rel), { withFileTypes: true }).flatMap((e) => {
    const sub = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) return floorFiles(tree, sub);
    return e.isFile() ? [{ rel: sub, data: fs.readFileSync(path.join(tree, sub)) }] : [];
  });
}

/** sftp-server's own time for the tree by files in flight (serverFloor), or why it was not measured. */
export type ServerFloor = readonly { inFlight: number; seconds: number }[] | string;

/** The report's and the log's words for it. */
export const floorText = (floor: ServerFloor): string =>
  typeof floor === 'string' ? `not measured (${floor})` : floor.map((f) => `${f3(f.seconds)} s with ${f.inFlight} files in flight`).join(', ');

/**
 * sftp-server's time for the tree in `tree`, written under fresh directories in `work`: the median of three runs at
 * each of `inFlight`, alternating; undefined (with the reason) when sftp-server is not there to start.
 */
export async function serverFloor(tree: string, work: string, inFlight: readonly number[] = [32, 256]): Promise<ServerFloor> {
  if (!fs.existsSync(SFTP_SERVER)) return `${SFTP_SERVER} not found`;
  const files = floorFiles(tree);
  const times = new Map<number, number[]>(inFlight.map((n) => [n, []]));
  let seq = 0;
  for (let round = 0; round < 3; round++) {
    for (const n of inFlight) {
      const root = path.join(work, `server-floor-${seq++}`);
      try {
        times.get(n)?.push(await sftpServerTreeS(root, files, n));
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    }
  }
  return inFlight.map((n) => {
    const sorted = [...(times.get(n) ?? [])].sort((a, b) => a - b);
    return { inFlight: n, seconds: sorted[1] ?? NaN };
  });
}
