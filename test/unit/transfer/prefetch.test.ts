// Read-ahead of small files: what it hands out is exactly the file as walked, or nothing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LocalItem, LocalSource } from '../../../src/transfer/local-tree.js';
import { Prefetch, SMALL_FILE } from '../../../src/transfer/prefetch.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'safe-scp-prefetch-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, bytes: Buffer): LocalItem {
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return { type: 'file', path: p, rel: name, size: bytes.length, mode: 0o644, atimeMs: 0, mtimeMs: 0 };
}

const source = (items: LocalItem[]): LocalSource => ({ operand: dir, name: 'x', type: 'dir', items });

test('small files come back byte for byte; large ones are left to the upload', async () => {
  const a = file('a', Buffer.from('alpha'));
  const b = file('b', Buffer.alloc(SMALL_FILE, 7));
  const big = file('big', Buffer.alloc(SMALL_FILE + 1, 1));
  const empty = file('empty', Buffer.alloc(0));
  const p = new Prefetch();
  await p.run([source([a, b, big, empty])]);
  expect(p.get(a.path, a.size)?.toString()).toBe('alpha');
  expect(p.get(b.path, b.size)?.equals(Buffer.alloc(SMALL_FILE, 7))).toBe(true);
  expect(p.get(big.path, big.size)).toBeUndefined();
  expect(p.get(empty.path, 0)?.length).toBe(0);
});

test('a file that shrank or vanished since the walk is not handed out; a size mismatch neither', async () => {
  const shrunk = file('shrunk', Buffer.from('0123456789'));
  const gone = file('gone', Buffer.from('x'));
  fs.writeFileSync(shrunk.path, '0123');
  fs.rmSync(gone.path);
  const ok = file('ok', Buffer.from('fine'));
  const p = new Prefetch();
  await p.run([source([shrunk, gone, ok])]);
  expect(p.get(shrunk.path, shrunk.size)).toBeUndefined();
  expect(p.get(gone.path, gone.size)).toBeUndefined();
  expect(p.get(ok.path, 5)).toBeUndefined();
  expect(p.get(ok.path, 4)?.toString()).toBe('fine');
});

test('stops at its byte budget, and clear() lets go of everything', async () => {
  const items = Array.from({ length: 10 }, (_, i) => file(`f${i}`, Buffer.alloc(1000, i)));
  const p = new Prefetch(3000);
  await p.run([source(items)]);
  const got = items.filter((it) => p.get(it.path, it.size) !== undefined).length;
  expect(got).toBe(3);
  p.clear();
  expect(items.every((it) => p.get(it.path, it.size) === undefined)).toBe(true);
});
