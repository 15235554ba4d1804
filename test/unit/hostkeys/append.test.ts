// appendKnownHost (accept-new): whole lines, no duplicates, private permissions.
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { parseKnownHosts } from '../../../src/hostkeys/known-hosts.js';
import { appendKnownHost } from '../../../src/hostkeys/append.js';
import { makeTempDir, removeTempDir } from './ssh-tools.js';

const KEY = 'AAAAC3NzaC1lZDI1NTE5AAAAINniL2jCqVWKSjcvJrGWZuc7P032CpYq+9u81bJgsvl3';
const lineFor = (i: number): string => `[host${String(i)}.example.com]:2222 ssh-ed25519 ${KEY}`;

let dir: string | undefined;

beforeEach(async () => {
  dir = await makeTempDir();
});

afterEach(async () => {
  await removeTempDir(dir);
});

function path(...parts: string[]): string {
  if (dir === undefined) throw new Error('no temp dir');
  return join(dir, ...parts);
}

describe('appendKnownHost', () => {
  test('creates the directory 0700 and the file 0600 with one whole line', async () => {
    const file = path('new', '.ssh', 'known_hosts');
    await appendKnownHost(file, lineFor(1));
    expect(await readFile(file, 'utf8')).toBe(`${lineFor(1)}\n`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path('new', '.ssh'))).mode & 0o777).toBe(0o700);
  });

  test.each([
    ['10 different lines', (i: number) => lineFor(i), 10],
    ['10 identical lines', () => lineFor(0), 1],
  ])('concurrent appends: %s', async (_name, make, expected) => {
    const file = path('known_hosts');
    await Promise.all(Array.from({ length: 10 }, (_, i) => appendKnownHost(file, make(i))));
    const text = await readFile(file, 'utf8');
    const lines = text.split('\n');
    expect(lines.pop()).toBe(''); // ends with a newline
    expect(lines).toHaveLength(expected);
    expect(new Set(lines).size).toBe(expected);
    for (const l of lines) expect(l).toMatch(/^\[host\d\.example\.com\]:2222 ssh-ed25519 AAAA\S+$/);
    const parsed = parseKnownHosts(text, file);
    expect(parsed.warnings).toEqual([]);
    expect(parsed.entries).toHaveLength(expected);
  });

  test('skips a line already present (also with CRLF or surrounding blanks)', async () => {
    const file = path('known_hosts');
    const original = `# pinned by hand\r\n  ${lineFor(1)}  \r\n`;
    await writeFile(file, original);
    await appendKnownHost(file, lineFor(1));
    expect(await readFile(file, 'utf8')).toBe(original);
  });

  test('never rewrites existing content, and repairs a missing final newline', async () => {
    const file = path('known_hosts');
    await writeFile(file, lineFor(1), { mode: 0o644 });
    await appendKnownHost(file, lineFor(2));
    expect(await readFile(file, 'utf8')).toBe(`${lineFor(1)}\n${lineFor(2)}\n`);
    expect((await stat(file)).mode & 0o777).toBe(0o644); // an existing file keeps its mode
  });

  test.each(['', '   ', `${lineFor(1)}\n${lineFor(2)}`, `${lineFor(1)}\r`, 'a\0b'])(
    'refuses a line that is not exactly one line: %j',
    async (bad) => {
      const file = path('known_hosts');
      await expect(appendKnownHost(file, bad)).rejects.toThrow('one non-empty line');
      await expect(stat(file)).rejects.toThrow();
    },
  );

  test('a failed append is reported and does not wedge later appends to that file', async () => {
    const parent = path('sub');
    await writeFile(parent, 'a file where the directory should be');
    const file = join(parent, 'known_hosts');
    await expect(appendKnownHost(file, lineFor(1))).rejects.toThrow();
    await rm(parent);
    await appendKnownHost(file, lineFor(2));
    expect(await readFile(file, 'utf8')).toBe(`${lineFor(2)}\n`);
  });
});
