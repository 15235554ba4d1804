// Uploading a tree with symlinks to a real OpenSSH sshd: links that leave the source tree are never followed
// (their targets' contents reach the server nowhere), a link inside it is copied as a regular file, loops end.
// security-reliability.md section B (T11); src/transfer/local-tree.ts.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startSshd, type Sshd } from '../../harness/sshd.js';
import { baseEnv, runCli, tempDir, type CliResult } from './helpers/cli.js';

const SECRET = `leaked-secret-${process.pid}-${Date.now()}`;

let sshd: Sshd;
let work: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  sshd = await startSshd({});
  work = tempDir('symlinks');
  fs.mkdirSync(path.join(work, 'home'));
  env = baseEnv({
    HOME: path.join(work, 'home'),
    SSH_PRIVATE_KEY: fs.readFileSync(sshd.userKeyPath, 'utf8'),
    SSH_KNOWN_HOSTS: sshd.knownHostsLines(),
    SAFE_SCP_PORT: String(sshd.port),
    SAFE_SCP_STATE_DIR: path.join(work, 'state'),
    SAFE_SCP_HOST_INTERVAL: '0',
  });
});

afterAll(async () => {
  await sshd?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** Every path below root (relative, '/'-separated) with its lstat type. */
function listTree(root: string): Map<string, 'file' | 'dir' | 'link' | 'other'> {
  const out = new Map<string, 'file' | 'dir' | 'link' | 'other'>();
  for (const rel of fs.readdirSync(root, { recursive: true }) as string[]) {
    const st = fs.lstatSync(path.join(root, rel));
    out.set(rel.split(path.sep).join('/'), st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other');
  }
  return out;
}

function upload(args: string[]): Promise<CliResult> {
  return runCli(args, env, 30_000);
}

test('links out of the tree are skipped and reported, a link inside is copied as a file, loops end; exit 0', async () => {
  // Outside the source tree: a file and a directory that must never reach the server.
  const outside = path.join(work, 'outside');
  fs.mkdirSync(path.join(outside, 'secret-dir'), { recursive: true });
  fs.writeFileSync(path.join(outside, 'secret.txt'), `${SECRET} file\n`);
  fs.writeFileSync(path.join(outside, 'secret-dir', 'id_ed25519'), `${SECRET} key\n`);

  const src = path.join(work, 'src');
  fs.mkdirSync(path.join(src, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(src, 'index.html'), '<h1>hi</h1>\n');
  fs.writeFileSync(path.join(src, 'assets', 'site.css'), 'body { color: red }\n');
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(src, 'leak-file')); // absolute, to a file outside
  fs.symlinkSync(path.join(outside, 'secret-dir'), path.join(src, 'leak-dir')); // absolute, to a directory outside
  fs.symlinkSync('../../outside/secret.txt', path.join(src, 'assets', 'up-leak')); // relative, climbing out
  fs.symlinkSync('assets/site.css', path.join(src, 'inside-link')); // to a file inside
  fs.symlinkSync('.', path.join(src, 'a')); // loop: a -> .
  fs.symlinkSync('a', path.join(src, 'b')); //       b -> a
  fs.symlinkSync('..', path.join(src, 'assets', 'parent')); // loop one level down: back to the root
  fs.symlinkSync('does-not-exist', path.join(src, 'dangling'));
  fs.symlinkSync('self', path.join(src, 'self')); // ELOOP
  execFileSync('mkfifo', [path.join(src, 'fifo')]); // opening it would block forever

  const dest = path.join(work, 'srv', 'site');
  fs.mkdirSync(path.dirname(dest));
  const result = await upload(['-r', '-v', src, `${sshd.user}@127.0.0.1:${dest}`]);
  expect(result.code).toBe(0);
  expect(result.durationMs).toBeLessThan(20_000);

  const tree = listTree(dest);
  expect(Object.fromEntries(tree)).toEqual({
    'index.html': 'file',
    assets: 'dir',
    'assets/site.css': 'file',
    'inside-link': 'file',
  });
  expect(fs.readFileSync(path.join(dest, 'inside-link'), 'utf8')).toBe('body { color: red }\n');
  // The secrets reached no file on the server side (and no temp file was left to hold them).
  for (const [rel, type] of tree) {
    if (type === 'file') expect(fs.readFileSync(path.join(dest, rel), 'utf8')).not.toContain(SECRET);
  }
  expect(fs.readdirSync(path.dirname(dest))).toEqual(['site']);

  // -v names every link it did not follow.
  for (const link of ['leak-file', 'leak-dir', 'assets/up-leak']) expect(result.stderr).toContain(`skipping symlink ${link}: it points outside ${src}`);
  for (const link of ['dangling', 'self']) expect(result.stderr).toContain(`skipping symlink ${link}: it cannot be resolved`);
  for (const loop of ['a', 'b', 'assets/parent']) expect(result.stderr).toContain(`skipping symlink ${loop}: it leads back to a directory already copied`);
  expect(result.stderr).toContain('skipping fifo: not a regular file');
  // Nothing about the secrets' contents in the output either.
  expect(result.stdout + result.stderr).not.toContain(SECRET);
});

test('a link to a directory inside the tree is copied as a directory; links inside it that lead out are still skipped', async () => {
  const outside = path.join(work, 'outside-2');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret.txt'), `${SECRET} 2\n`);
  const src = path.join(work, 'src-2');
  fs.mkdirSync(path.join(src, 'real'), { recursive: true });
  fs.writeFileSync(path.join(src, 'real', 'page.html'), 'page\n');
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(src, 'real', 'leak'));
  fs.symlinkSync('real', path.join(src, 'alias'));
  fs.symlinkSync('../alias', path.join(src, 'real', 'self')); // alias/self -> alias: a loop through a followed link

  const dest = path.join(work, 'srv-2');
  const result = await upload(['-r', '-v', src, `${sshd.user}@127.0.0.1:${dest}`]);
  expect(result.code).toBe(0);
  const tree = listTree(dest);
  expect([...tree.values()].filter((t) => t !== 'file' && t !== 'dir')).toEqual([]);
  expect(tree.get('real/page.html')).toBe('file');
  expect(tree.get('alias')).toBe('dir');
  expect(tree.get('alias/page.html')).toBe('file');
  expect([...tree.keys()].filter((k) => k.endsWith('leak'))).toEqual([]);
  for (const [rel, type] of tree) {
    if (type === 'file') expect(fs.readFileSync(path.join(dest, rel), 'utf8')).not.toContain(SECRET);
  }
  // The loop through the followed link ends after at most one extra copy.
  expect(tree.size).toBeLessThan(10);
  expect(result.stderr).toContain(`skipping symlink real/leak: it points outside ${src}`);
  expect(result.stderr).toMatch(/skipping symlink (alias|real)\/self: it leads back/);
});
