// The write path that reads file data straight into prepared SSH packets (src/ssh/direct-write.ts), against a
// real sshd that offers one cipher at a time: every byte arrives, at every size edge, with each AEAD cipher it
// supports, and a cipher it does not support goes through ssh2 unchanged.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startSshd, type Sshd } from '../../src/harness/sshd.js';
import { UPLOAD_DEFAULTS } from '../../src/transfer/upload.js';
import { runCli, sshdEnv, tempDir } from './helpers/cli.js';

const MAX_WRITE = 261120; // OpenSSH's advertised write limit
const CHUNK = UPLOAD_DEFAULTS.chunkSize; // the size safe-scp writes (below MAX_WRITE)
// Above the small-file threshold, one write, one byte over, the server's limit and over, many writes with a tail.
const SIZES = [64 * 1024 + 1, CHUNK, CHUNK + 1, MAX_WRITE, MAX_WRITE + 1, 3 * 1024 * 1024 + 7];

const sha = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe.each([
  { cipher: 'aes128-gcm@openssh.com', direct: true },
  { cipher: 'aes256-gcm@openssh.com', direct: true },
  { cipher: 'chacha20-poly1305@openssh.com', direct: true },
  { cipher: 'aes128-ctr', direct: false },
])('upload with only $cipher offered', ({ cipher, direct }) => {
  let sshd: Sshd;
  let work: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    sshd = await startSshd({ extraConfig: [`Ciphers ${cipher}`] });
    work = tempDir('direct');
    env = sshdEnv(sshd.userKeyPath, sshd.knownHostsLines(), work, { SAFE_SCP_PORT: String(sshd.port) });
  }, 30_000);

  afterAll(async () => {
    await sshd?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('every size edge arrives byte for byte', async () => {
    const src = path.join(work, 'src');
    const dest = path.join(work, 'dest');
    fs.mkdirSync(src);
    fs.mkdirSync(dest);
    const files = SIZES.map((size, i) => {
      const file = path.join(src, `f${i}-${size}.bin`);
      fs.writeFileSync(file, crypto.randomBytes(size));
      return file;
    });
    const result = await runCli(['-v', ...files, `${sshd.user}@127.0.0.1:${dest}/`], env);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(cipher);
    for (const file of files) expect(sha(path.join(dest, path.basename(file)))).toBe(sha(file));
    expect(fs.readdirSync(dest).sort()).toEqual(files.map((f) => path.basename(f)).sort());
    const counts = /write requests: (\d+) read straight into prepared packets, (\d+) through ssh2/.exec(result.stderr);
    if (direct) {
      expect(counts).not.toBeNull();
      expect(Number(counts?.[1])).toBeGreaterThan(0);
    } else {
      expect(counts).toBeNull();
    }
  }, 60_000);
});
