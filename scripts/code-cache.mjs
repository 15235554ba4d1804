// Makes dist/safe-scp.cjs.cache, the V8 code cache the bin loads (scripts/bin.mjs): one real upload (a small
// tree and a file large enough for the pipelined writer) to the embedded SFTP server, so the cache holds what
// a copy compiles. Best effort: without a cache the bin compiles as usual, so a failure here only warns.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'dist', 'safe-scp.mjs');
const cacheFile = path.join(root, 'dist', 'safe-scp.cjs.cache');
const TIMEOUT_MS = 60_000;

function run(args, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'safe-scp-code-cache-'));
let server;
try {
  const { startEmbeddedServer } = await import(path.join(root, 'dist', 'demo', 'embedded-server.js'));
  const { generateEd25519KeyPair } = await import(path.join(root, 'dist', 'ssh', 'keygen.js'));
  const keys = generateEd25519KeyPair();
  const serverRoot = path.join(work, 'server');
  fs.mkdirSync(serverRoot);
  server = await startEmbeddedServer({ root: serverRoot, username: 'build', authorizedKey: keys.public });
  const tree = path.join(work, 'tree');
  for (let d = 0; d < 4; d++) {
    fs.mkdirSync(path.join(tree, `d${d}`), { recursive: true });
    for (let f = 0; f < 8; f++) fs.writeFileSync(path.join(tree, `d${d}`, `f${f}.txt`), `file ${d}/${f}\n`.repeat(200));
  }
  fs.writeFileSync(path.join(tree, 'big.bin'), Buffer.alloc(3 * 1024 * 1024, 1));
  const home = path.join(work, 'home');
  fs.mkdirSync(home);
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: home,
    SSH_PRIVATE_KEY: keys.private,
    SSH_KNOWN_HOSTS: `${server.hostKeyLine()}\n`,
    SAFE_SCP_STATE_DIR: path.join(work, 'state'),
    SAFE_SCP_HOST_INTERVAL: '0',
    SAFESCP_CODE_CACHE_OUT: cacheFile,
  };
  const { code, stderr } = await run(['-r', '-q', '-P', String(server.port), tree, 'build@127.0.0.1:/'], env);
  if (code !== 0) throw new Error(`warm-up copy exited ${code}: ${stderr.trim()}`);
  console.log(`code cache: ${path.relative(root, cacheFile)} (${Math.round(fs.statSync(cacheFile).size / 1024)} KiB)`);
} catch (err) {
  fs.rmSync(cacheFile, { force: true });
  console.warn(`code cache: not made (${err instanceof Error ? err.message : String(err)}); the bin compiles as usual`);
} finally {
  await server?.close();
  fs.rmSync(work, { recursive: true, force: true });
}
