// The benchmark's probe of sftp-server's own time (bench/server-floor.ts): it starts OpenSSH's sftp-server directly
// and really writes the tree through it, every file whole, however many are in flight.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { floorFiles, serverFloor, sftpServerTreeS } from '../../bench/server-floor.js';
import { tempDir } from './helpers/cli.js';

let work: string;

beforeAll(() => {
  work = tempDir('server-floor');
  for (let i = 0; i < 30; i++) {
    const dir = path.join(work, 'tree', `d${i % 4}`, i % 2 ? 'sub' : '');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `f${i}`), randomBytes(i * 700));
  }
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test.each([1, 4, 64])('sftp-server writes every file of the tree whole with %i in flight, and the time is measured', async (inFlight) => {
  const files = floorFiles(path.join(work, 'tree'));
  expect(files).toHaveLength(30);
  const root = path.join(work, `out-${inFlight}`);
  const seconds = await sftpServerTreeS(root, files, inFlight);
  expect(seconds).toBeGreaterThan(0);
  for (const f of files) expect({ rel: f.rel, same: fs.readFileSync(path.join(root, f.rel)).equals(f.data) }).toEqual({ rel: f.rel, same: true });
});

test('a file that exists already fails the probe with its name instead of hanging', async () => {
  const files = floorFiles(path.join(work, 'tree'));
  const root = path.join(work, 'out-twice');
  await sftpServerTreeS(root, files, 8);
  // The first OPEN answered is the first file's: its name comes with the server's own words.
  await expect(sftpServerTreeS(root, files, 8)).rejects.toThrow(`OPEN of ${files[0]?.rel ?? '?'}: `);
});

test('the bench line: a median per number in flight, and the probe leaves nothing behind', async () => {
  const floor = await serverFloor(path.join(work, 'tree'), work, [2, 16]);
  expect(floor).toEqual([
    { inFlight: 2, seconds: expect.any(Number) as number },
    { inFlight: 16, seconds: expect.any(Number) as number },
  ]);
  expect(fs.readdirSync(work).filter((n) => n.startsWith('server-floor-'))).toEqual([]);
});
