// The server's own share of the tree rows: OpenSSH's sftp-server started directly (no ssh, no link, no safe-scp),
// its pipes fed the tree's files by a minimal SFTP driver, N files in flight: open, then write + fstat + close.
// What it takes here is time no client over any link can go below; with 256 in flight (what safe-scp keeps per
// channel) against 32 it also shows what requests waiting in sftp-server's input cost on this machine.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Requests } from '../src/ssh/sftp/requests.js';
import { ByteQueue, FXP, OPEN_FLAGS, Reader } from '../src/ssh/sftp/wire.js';

const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

/** One file of the tree: where it goes under the target root, and its bytes. */
export interface FloorFile {
  readonly rel: string;
  readonly data: Buffer;
}

/**
 * Seconds from the first OPEN to the last CLOSE's answer for `files` written under `root` (its directories made
 * beforehand, locally), `inFlight` files at once, the requests of each turn written to the server in one piece.
 * Rejects when the server is missing or answers anything but success.
 */
export async function sftpServerTreeS(root: string, files: readonly FloorFile[], inFlight: number): Promise<number> {
  for (const dir of new Set(files.map((f) => path.dirname(path.join(root, f.rel))))) fs.mkdirSync(dir, { recursive: true });
  const server = spawn(SFTP_SERVER, [], { stdio: ['pipe', 'pipe', 'ignore'] });
  const exited = new Promise<void>((resolve) => server.once('close', () => resolve()));
  const failed = new Promise<never>((_, reject) => {
    server.once('error', reject);
    server.once('close', (code) => reject(new Error(`${SFTP_SERVER} exited (${code}) before the tree was written`)));
  });
  failed.catch(() => undefined);
  try {
    return await Promise.race([drive(server.stdin, server.stdout, root, files, inFlight), failed]);
  } finally {
    server.stdin.end();
    await exited;
  }
}

function drive(input: NodeJS.WritableStream, output: NodeJS.ReadableStream, root: string, files: readonly FloorFile[], inFlight: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const out = new Requests();
    const incoming = new ByteQueue();
    /** Request id -> the file's index and what was asked. */
    const asked = new Map<number, { file: number; type: number }>();
    let nextId = 0;
    let nextFile = 0;
    let closed = 0;
    let started = 0;
    let flushing = false;
    const flush = (): void => {
      flushing = false;
      if (out.length > 0) input.write(out.take());
    };
    const send = (type: number, file: number, fill: (r: Requests) => void): void => {
      nextId++;
      fill(out.begin(type, nextId));
      out.end();
      asked.set(nextId, { file, type });
      if (!flushing) {
        flushing = true;
        setImmediate(flush);
      }
    };
    const open = (): void => {
      const file = nextFile++;
      const f = files[file] as FloorFile;
      send(FXP.OPEN, file, (r) => r.string(path.join(root, f.rel)).uint32(OPEN_FLAGS.wx).attrs({ mode: 0o644 }));
    };
    const answer = (r: Reader): void => {
      const type = r.byte();
      if (type === FXP.VERSION) {
        started = performance.now();
        for (let i = 0; i < Math.min(inFlight, files.length); i++) open();
        return;
      }
      const id = r.uint32();
      const request = asked.get(id);
      asked.delete(id);
      if (!request) throw new Error(`sftp-server answered request ${id}, which was not sent`);
      if (request.type === FXP.OPEN) {
        if (type !== FXP.HANDLE) throw new Error(`OPEN of ${(files[request.file] as FloorFile).rel} answered with type ${type}`);
        const handle = Buffer.from(r.bytes());
        const data = (files[request.file] as FloorFile).data;
        send(FXP.WRITE, request.file, (q) => q.string(handle).uint64(0).string(data));
        send(FXP.FSTAT, request.file, (q) => q.string(handle));
        send(FXP.CLOSE, request.file, (q) => q.string(handle));
        return;
      }
      const ok = request.type === FXP.FSTAT ? type === FXP.ATTRS : type === FXP.STATUS && r.uint32() === 0;
      if (!ok) throw new Error(`request ${request.type} for ${(files[request.file] as FloorFile).rel} failed (answer type ${type})`);
      if (request.type !== FXP.CLOSE) return;
      closed++;
      if (nextFile < files.length) open();
      else if (closed === files.length) resolve((performance.now() - started) / 1000);
    };
    output.on('data', (chunk: Buffer) => {
      incoming.push(chunk);
      try {
        while (incoming.length >= 4 && incoming.length >= 4 + incoming.peekUInt32()) answer(new Reader(incoming.take(4 + incoming.peekUInt32()), 4));
      } catch (err: unknown) {
        reject(err);
      }
    });
    input.write(Buffer.from([0, 0, 0, 5, FXP.INIT, 0, 0, 0, 3]));
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

/**
 * sftp-server's time for the tree in `tree`, written under fresh directories in `work`: the median of three runs at
 * each of `inFlight`, alternating; undefined (with the reason) when sftp-server is not there to start.
 */
export async function serverFloor(tree: string, work: string, inFlight: readonly number[] = [32, 256]): Promise<{ inFlight: number; seconds: number }[] | string> {
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
