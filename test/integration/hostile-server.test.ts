// A malicious SFTP server (ssh2 Server, loopback) sends hostile names; the built CLI must never write outside
// its local target, must fail clearly (remote-unsafe-name, exit 1, not retried), and must never leave a truncated
// file under a final name. CONTRACT.md "Transfers"; security-reliability.md section B (T10).
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import posix from 'node:path/posix';
import ssh2 from 'ssh2';
import type { Attributes, AuthContext, Connection, FileEntry, ParsedKey, SFTPWrapper } from 'ssh2';
import { baseEnv, runCli, tempDir, type CliResult } from './helpers/cli.js';
import { generateEd25519KeyPair } from '../../src/ssh/keygen.js';

const { Server, utils } = ssh2;
const { STATUS_CODE } = utils.sftp;
const USER = 'deploy';
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

// ------------------------------------------------------------------------------------------------
// The malicious server: a virtual tree keyed by the exact path strings the client asks for.

type Kind = 'file' | 'dir';
interface VEntry {
  readonly name: string;
  readonly kind: Kind;
  /** ls -l style text the server controls; the client must not take the type from it. */
  readonly longname?: string;
}

interface Hostile {
  readonly port: number;
  readonly knownHostsLine: string;
  readonly clientKey: string;
  /** Every SFTP request received, as "OP path". */
  readonly requests: string[];
  connections(): number;
  /** The next `n` connections are cut when a READ of `file` reaches `offset`. */
  dropReads(file: string, offset: number, n: number): void;
  close(): Promise<void>;
}

function parse(key: string): ParsedKey {
  const parsed = utils.parseKey(key);
  if (parsed instanceof Error) throw parsed;
  return Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
}

function attrsOf(kind: Kind, size: number): Attributes {
  const now = Math.floor(Date.now() / 1000);
  return { mode: kind === 'dir' ? S_IFDIR | 0o755 : S_IFREG | 0o644, uid: 1000, gid: 1000, size, atime: now, mtime: now };
}

async function startHostile(dirs: ReadonlyMap<string, readonly VEntry[]>, files: ReadonlyMap<string, Buffer>, realpaths: ReadonlyMap<string, string>): Promise<Hostile> {
  const hostKey = generateEd25519KeyPair();
  const clientKey = generateEd25519KeyPair();
  const clientPub = parse(clientKey.public);
  const hostPub = parse(hostKey.private);
  const requests: string[] = [];
  const sockets = new Map<string, net.Socket>();
  let connections = 0;
  let drop: { file: string; offset: number; n: number } | undefined;

  /** Every path the server does not list as a directory is served as a file: a hostile server answers anything. */
  const contentOf = (p: string): Buffer => files.get(p) ?? Buffer.from(`PWNED ${p}\n`);
  const kindOf = (p: string): Kind => (dirs.has(p) ? 'dir' : 'file');

  const serveSftp = (sftp: SFTPWrapper, socket: net.Socket | undefined, connectionNo: number): void => {
    const handles = new Map<string, { path: string; kind: Kind; listed: boolean }>();
    let nextHandle = 0;
    let cut = false;
    const newHandle = (p: string, kind: Kind): Buffer => {
      const h = Buffer.alloc(4);
      h.writeUInt32BE(nextHandle++);
      handles.set(h.toString('hex'), { path: p, kind, listed: false });
      return h;
    };
    const stat = (id: number, p: string): void => {
      sftp.attrs(id, attrsOf(kindOf(p), kindOf(p) === 'dir' ? 4096 : contentOf(p).length));
    };
    sftp.on('REALPATH', (id, p) => {
      requests.push(`REALPATH ${p}`);
      const name = realpaths.get(p) ?? (p.startsWith('/') ? p : `/home/${USER}/${p}`);
      sftp.name(id, [{ filename: name, longname: name, attrs: {} as Attributes }]);
    });
    sftp.on('STAT', (id, p) => {
      requests.push(`STAT ${p}`);
      stat(id, p);
    });
    sftp.on('LSTAT', (id, p) => {
      requests.push(`LSTAT ${p}`);
      stat(id, p);
    });
    sftp.on('OPENDIR', (id, p) => {
      requests.push(`OPENDIR ${p}`);
      if (!dirs.has(p)) return sftp.status(id, STATUS_CODE.NO_SUCH_FILE, 'Not a directory');
      sftp.handle(id, newHandle(p, 'dir'));
    });
    sftp.on('READDIR', (id, handle) => {
      const h = handles.get(handle.toString('hex'));
      if (!h || h.kind !== 'dir') return sftp.status(id, STATUS_CODE.FAILURE, 'bad handle');
      requests.push(`READDIR ${h.path}`);
      if (h.listed) return sftp.status(id, STATUS_CODE.EOF);
      h.listed = true;
      const list: FileEntry[] = (dirs.get(h.path) ?? []).map((e) => {
        const size = e.kind === 'dir' ? 4096 : contentOf(posix.join(h.path, e.name)).length;
        return { filename: e.name, longname: e.longname ?? `${e.kind === 'dir' ? 'd' : '-'}rw-r--r-- 1 0 0 ${size} Jan 1 00:00 ${e.name}`, attrs: attrsOf(e.kind, size) };
      });
      sftp.name(id, list);
    });
    sftp.on('OPEN', (id, p) => {
      requests.push(`OPEN ${p}`);
      if (dirs.has(p)) return sftp.status(id, STATUS_CODE.FAILURE, 'Is a directory');
      sftp.handle(id, newHandle(p, 'file'));
    });
    sftp.on('READ', (id, handle, offset, length) => {
      const h = handles.get(handle.toString('hex'));
      if (!h || h.kind !== 'file') return sftp.status(id, STATUS_CODE.FAILURE, 'bad handle');
      if (cut) return;
      if (drop && drop.n > 0 && h.path === drop.file && offset >= drop.offset) {
        drop.n--;
        cut = true;
        requests.push(`CUT #${connectionNo} ${h.path} @${offset}`);
        socket?.destroy();
        return;
      }
      const data = contentOf(h.path);
      if (offset >= data.length) return sftp.status(id, STATUS_CODE.EOF);
      sftp.data(id, data.subarray(offset, offset + length));
    });
    sftp.on('FSTAT', (id, handle) => {
      const h = handles.get(handle.toString('hex'));
      if (!h) return sftp.status(id, STATUS_CODE.FAILURE, 'bad handle');
      stat(id, h.path);
    });
    sftp.on('CLOSE', (id, handle) => {
      handles.delete(handle.toString('hex'));
      sftp.status(id, STATUS_CODE.OK);
    });
    // Anything else (MKDIR, REMOVE, SETSTAT, ...) is answered OP_UNSUPPORTED by ssh2 itself.
  };

  const ssh = new Server({ hostKeys: [hostKey.private] });
  ssh.on('error', () => undefined);
  ssh.on('connection', (client: Connection, info: { ip: string; port: number }) => {
    const connectionNo = ++connections;
    const socket = sockets.get(`${info.ip}:${info.port}`);
    client.on('error', () => undefined);
    client.on('authentication', (ctx: AuthContext) => {
      if (ctx.method !== 'publickey' || ctx.username !== USER || !ctx.key.data.equals(clientPub.getPublicSSH())) return ctx.reject(['publickey']);
      if (ctx.signature === undefined) return ctx.accept();
      if (ctx.blob === undefined || clientPub.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
      ctx.accept();
    });
    client.on('session', (accept) => {
      accept().on('sftp', (acceptSftp) => serveSftp(acceptSftp(), socket, connectionNo));
    });
  });

  const tcp = net.createServer((socket) => {
    socket.on('error', () => undefined);
    const peer = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
    sockets.set(peer, socket);
    socket.once('close', () => sockets.delete(peer));
    ssh.injectSocket(socket);
  });
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  const port = (tcp.address() as net.AddressInfo).port;

  return {
    port,
    knownHostsLine: `[127.0.0.1]:${port} ${hostPub.type} ${hostPub.getPublicSSH().toString('base64')}`,
    clientKey: clientKey.private,
    requests,
    connections: () => connections,
    dropReads: (file, offset, n) => {
      drop = { file, offset, n };
    },
    close: async () => {
      for (const s of sockets.values()) s.destroy();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };
}

// ------------------------------------------------------------------------------------------------
// The scenario

/** An absolute name the server sends; it must never be created. Unique so /tmp is not shared with others. */
const ABS = `/tmp/safe-scp-hostile-abs-${process.pid}-${crypto.randomBytes(4).toString('hex')}.txt`;
const OK = { name: 'ok.txt', kind: 'file' } as const;
const BIG = crypto.randomBytes(2 * 1024 * 1024);

/** Directories whose READDIR carries one hostile name (plus an honest ok.txt): remote dir -> [name, kind]. */
const HOSTILE: ReadonlyArray<readonly [string, string, Kind]> = [
  ['/case-parent', '../escape.txt', 'file'],
  ['/case-grandparent', '../../etc/evil', 'file'],
  ['/case-slash', 'a/b.txt', 'file'],
  ['/case-backslash', 'x\\y', 'file'],
  ['/case-nul', 'nul\0name.txt', 'file'],
  ['/case-absolute', ABS, 'file'],
  ['/case-empty', '', 'file'],
  ['/case-newline', 'line\nbreak.txt', 'file'],
  ['/case-escape', 'red\u001b[31m.txt', 'file'],
  ['/case-parent-dir', '../up', 'dir'],
  ['/case-slash-dir', 'a/b', 'dir'],
];

const dirs = new Map<string, VEntry[]>();
for (const [dir, name, kind] of HOSTILE) dirs.set(dir, [OK, { name, kind }]);
// One level down: names are checked in every directory, not just the top one.
dirs.set('/case-deep', [OK, { name: 'sub', kind: 'dir' }]);
dirs.set('/case-deep/sub', [OK, { name: '../../../escape-deep.txt', kind: 'file' }]);
// '.' and '..' claiming to be directories (and a longname claiming 'd' for a plain file).
dirs.set('/case-dots', [
  { name: '..', kind: 'dir' },
  { name: '.', kind: 'dir' },
  { name: 'ok.txt', kind: 'file', longname: 'drwxr-xr-x 1 0 0 4096 Jan 1 00:00 ok.txt' },
]);
// Top-level remote paths that climb: what the user asked for is fine, but only its basename may be used locally.
dirs.set('../../x', [OK]);
dirs.set('..', [OK]);
dirs.set('.', [OK]);
// Honest trees for the local-symlink and interruption cases.
dirs.set('/site', [OK, { name: 'sub', kind: 'dir' }]);
dirs.set('/site/sub', [{ name: 'inner.txt', kind: 'file' }]);
dirs.set('/big', [{ name: 'big.bin', kind: 'file' }]);

const files = new Map<string, Buffer>([['/big/big.bin', BIG]]);
// The login directory's "real path" ends in '..'.
const realpaths = new Map<string, string>([['.', '/srv/..']]);

let server: Hostile;
let work: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  server = await startHostile(dirs, files, realpaths);
  work = tempDir('hostile');
  fs.mkdirSync(path.join(work, 'home'));
  env = baseEnv({
    HOME: path.join(work, 'home'),
    SSH_PRIVATE_KEY: server.clientKey,
    SSH_KNOWN_HOSTS: server.knownHostsLine,
    SAFE_SCP_STATE_DIR: path.join(work, 'state'),
    SAFE_SCP_HOST_INTERVAL: '0',
    SAFE_SCP_PORT: String(server.port),
    // Retries are allowed, so "not retried" is a decision, not a setting.
    SAFE_SCP_RETRIES: '2',
    SAFE_SCP_RETRY_DELAY: '100ms',
  });
});

afterAll(async () => {
  await server?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(ABS, { force: true });
});

// ------------------------------------------------------------------------------------------------
// Helpers

interface Box {
  /** Parent of the sandbox: everything under it is snapshotted. */
  parent: string;
  sandbox: string;
  /** The local target operand (an existing, empty directory). */
  target: string;
  /** A directory outside the sandbox that links may point at. */
  outside: string;
}

let boxes = 0;
function newBox(): Box {
  const parent = path.join(work, `box-${++boxes}`);
  const sandbox = path.join(parent, 'sandbox');
  const target = path.join(sandbox, 'target');
  const outside = path.join(parent, 'outside');
  fs.mkdirSync(target, { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'victim.txt'), 'precious\n');
  fs.writeFileSync(path.join(sandbox, 'neighbour.txt'), 'neighbour\n');
  return { parent, sandbox, target, outside };
}

/** Every entry below root: type, mode, size, content hash, link target. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of fs.readdirSync(dir)) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p);
      const rel = path.relative(root, p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(rel, `link -> ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(rel, `dir ${mode}`);
        walk(p);
      } else out.set(rel, `file ${mode} ${st.size} ${crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`);
    }
  };
  walk(root);
  return out;
}

/** Entries of `after` that differ from `before`, outside `allowed` (a path relative to the snapshot root). */
function changedOutside(before: Map<string, string>, after: Map<string, string>, allowed?: string): string[] {
  const inside = (rel: string): boolean => allowed !== undefined && (rel === allowed || rel.startsWith(allowed + path.sep));
  const changed: string[] = [];
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    if (!inside(key) && before.get(key) !== after.get(key)) changed.push(`${key}: ${before.get(key) ?? 'absent'} -> ${after.get(key) ?? 'absent'}`);
  }
  return changed;
}

const tempsIn = (snap: Map<string, string>): string[] => [...snap.keys()].filter((k) => k.includes('.safe-scp-'));

async function download(args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult & { report: Record<string, unknown>; newConnections: number }> {
  const reportFile = path.join(work, `report-${crypto.randomBytes(4).toString('hex')}.json`);
  const before = server.connections();
  const result = await runCli(['--report', reportFile, ...args], { ...env, ...extraEnv }, 30_000);
  const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as Record<string, unknown>;
  return { ...result, report, newConnections: server.connections() - before };
}

const remote = (p: string): string => `${USER}@127.0.0.1:${p}`;

function expectRefusedOnce(result: Awaited<ReturnType<typeof download>>, cause = 'remote-unsafe-name'): void {
  expect(result.code).toBe(1);
  expect(result.report['cause']).toBe(cause);
  expect(result.report['attempts']).toHaveLength(1);
  expect(result.newConnections).toBe(1);
  expect(result.stderr).toMatch(/not retried/);
  expect(result.stderr).not.toMatch(/retrying in/);
}

// ------------------------------------------------------------------------------------------------
// Tests

describe.each(HOSTILE)('READDIR of %s names an entry %j (%s)', (dir, name) => {
  test('the run fails naming it, nothing is created anywhere, not even inside the target', async () => {
    const box = newBox();
    const before = snapshot(box.parent);
    const sentBefore = server.requests.length;
    const result = await download(['-r', remote(dir), box.target]);
    expectRefusedOnce(result);
    // The message names the unsafe name (JSON-quoted: a NUL or backslash is shown escaped, never raw).
    expect(result.stderr).toContain(`unsafe file name from the server in ${dir}: ${JSON.stringify(name)}`);
    expect(result.stderr).not.toContain('\0');
    expect(result.stderr).not.toContain('\u001b');
    // The advice fits a hostile server (not free space and permissions), and says nothing leaked.
    expect(result.stderr).toContain('misbehaving or compromised');
    expect(result.stderr).toContain('nothing was written outside the target');
    const after = snapshot(box.parent);
    expect(changedOutside(before, after)).toEqual([]);
    expect(tempsIn(after)).toEqual([]);
    expect(fs.existsSync(ABS)).toBe(false);
    // The names were refused while listing: nothing was even opened for reading.
    expect(server.requests.slice(sentBefore).filter((r) => r.startsWith('OPEN '))).toEqual([]);
  });
});

test('a hostile name one directory down is refused the same way', async () => {
  const box = newBox();
  const before = snapshot(box.parent);
  const result = await download(['-r', remote('/case-deep'), box.target]);
  expectRefusedOnce(result);
  expect(result.stderr).toContain('"../../../escape-deep.txt"');
  expect(result.stderr).toContain('/case-deep/sub');
  const after = snapshot(box.parent);
  expect(changedOutside(before, after)).toEqual([]);
  expect(tempsIn(after)).toEqual([]);
});

test("'.' and '..' entries claiming to be directories are skipped (as OpenSSH does), never followed; the type comes from attrs, not longname", async () => {
  const box = newBox();
  const before = snapshot(box.parent);
  const sentBefore = server.requests.length;
  const result = await download(['-r', remote('/case-dots'), box.target]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const after = snapshot(box.parent);
  expect(changedOutside(before, after, path.join('sandbox', 'target', 'case-dots'))).toEqual([]);
  expect(fs.readdirSync(path.join(box.target, 'case-dots'))).toEqual(['ok.txt']);
  expect(fs.readFileSync(path.join(box.target, 'case-dots', 'ok.txt'), 'utf8')).toBe('PWNED /case-dots/ok.txt\n');
  const sent = server.requests.slice(sentBefore);
  expect(sent.filter((r) => /\/\.\.?$/.test(r) || r.includes('/../'))).toEqual([]);
  expect(sent.filter((r) => r.startsWith('OPENDIR '))).toEqual(['OPENDIR /case-dots']);
});

test("'host:../../x' lands as TARGET/x (into an existing directory) or as TARGET (a new name), never above it", async () => {
  const box = newBox();
  const before = snapshot(box.parent);
  const into = await download(['-r', remote('../../x'), box.target]);
  expect(into.stderr).toBe('');
  expect(into.code).toBe(0);
  expect(fs.readFileSync(path.join(box.target, 'x', 'ok.txt'), 'utf8')).toBe('PWNED ../../x/ok.txt\n');

  const fresh = path.join(box.target, 'fresh');
  const as = await download(['-r', remote('../../x'), fresh]);
  expect(as.code).toBe(0);
  expect(fs.readdirSync(fresh)).toEqual(['ok.txt']);

  // A single file whose remote path climbs: only its basename is used.
  const single = await download([remote('../../etc/passwd'), box.target]);
  expect(single.code).toBe(0);
  expect(fs.readFileSync(path.join(box.target, 'passwd'), 'utf8')).toBe('PWNED ../../etc/passwd\n');

  const after = snapshot(box.parent);
  expect(changedOutside(before, after, path.join('sandbox', 'target'))).toEqual([]);
  expect([...after.keys()].filter((k) => k.startsWith(path.join('sandbox', 'target') + path.sep)).sort()).toEqual(
    ['fresh', 'fresh/ok.txt', 'passwd', 'x', 'x/ok.txt'].map((k) => path.join('sandbox', 'target', k)),
  );
  expect(tempsIn(after)).toEqual([]);
});

test("'host:..' and a login directory whose real path ends in '..' are refused when copied into an existing directory", async () => {
  const box = newBox();
  const before = snapshot(box.parent);
  // '..' is the user's own operand: refused, but not blamed on the server.
  const up = await download(['-r', remote('..'), box.target]);
  expectRefusedOnce(up, 'remote-failure');
  expect(up.stderr).toContain('unsafe remote name ".."');

  const home = await download(['-r', remote(''), box.target]);
  expectRefusedOnce(home);
  expect(home.stderr).toContain('unsafe remote name ".."');

  expect(changedOutside(before, snapshot(box.parent))).toEqual([]);
});

describe('a local target that already holds a symlink where the server has a name', () => {
  test('TARGET/site -> outside: the download does not go through it', async () => {
    const box = newBox();
    fs.symlinkSync(box.outside, path.join(box.target, 'site'));
    const before = snapshot(box.parent);
    const result = await download(['-r', remote('/site'), box.target]);
    expect(result.code).toBe(1);
    expect(result.report['attempts']).toHaveLength(1);
    expect(result.stderr).toContain(`refusing to write through the symbolic link ${path.join(box.target, 'site')} `);
    const after = snapshot(box.parent);
    expect(changedOutside(before, after)).toEqual([]);
    expect(fs.readdirSync(box.outside)).toEqual(['victim.txt']);
    expect(tempsIn(after)).toEqual([]);
  });

  test('TARGET/site/sub -> outside, where the server has a directory sub: nothing is written through it', async () => {
    const box = newBox();
    fs.mkdirSync(path.join(box.target, 'site'));
    fs.symlinkSync(box.outside, path.join(box.target, 'site', 'sub'));
    const before = snapshot(box.parent);
    const result = await download(['-r', remote('/site'), box.target]);
    expect(result.code).toBe(1);
    expect(result.report['attempts']).toHaveLength(1);
    expect(result.stderr).toContain(`refusing to write through the symbolic link ${path.join(box.target, 'site', 'sub')} `);
    const after = snapshot(box.parent);
    expect(changedOutside(before, after, path.join('sandbox', 'target', 'site'))).toEqual([]);
    expect(fs.readdirSync(box.outside)).toEqual(['victim.txt']);
    expect(fs.lstatSync(path.join(box.target, 'site', 'sub')).isSymbolicLink()).toBe(true);
    expect(tempsIn(after)).toEqual([]);
  });

  test('TARGET/site/ok.txt -> outside/victim.txt, where the server has a file ok.txt: the link is replaced, its target untouched', async () => {
    const box = newBox();
    fs.mkdirSync(path.join(box.target, 'site'));
    fs.symlinkSync(path.join(box.outside, 'victim.txt'), path.join(box.target, 'site', 'ok.txt'));
    const before = snapshot(box.parent);
    const result = await download(['-r', remote('/site'), box.target]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const after = snapshot(box.parent);
    expect(changedOutside(before, after, path.join('sandbox', 'target', 'site'))).toEqual([]);
    expect(fs.readFileSync(path.join(box.outside, 'victim.txt'), 'utf8')).toBe('precious\n');
    const ok = path.join(box.target, 'site', 'ok.txt');
    expect(fs.lstatSync(ok).isFile()).toBe(true);
    expect(fs.readFileSync(ok, 'utf8')).toBe('PWNED /site/ok.txt\n');
    // The replaced link's lrwxrwxrwx must not become the file's mode: the server said 0644.
    expect(fs.statSync(ok).mode & 0o022).toBe(0);
    expect(tempsIn(after)).toEqual([]);
  });
});

describe('the connection dies in the middle of a file', () => {
  test('out of retries: exit 75, no file under the final name, no temp file', async () => {
    const box = newBox();
    const cutsBefore = server.requests.filter((r) => r.startsWith('CUT ')).length;
    server.dropReads('/big/big.bin', 512 * 1024, 1);
    const result = await download(['-r', remote('/big'), box.target], { SAFE_SCP_RETRIES: '0' });
    expect(result.code).toBe(75);
    expect(result.report['cause']).toBe('connection-lost-mid-transfer');
    expect(server.requests.filter((r) => r.startsWith('CUT ')).length - cutsBefore).toBe(1);
    const after = snapshot(box.parent);
    expect(after.has(path.join('sandbox', 'target', 'big', 'big.bin'))).toBe(false);
    expect(tempsIn(after)).toEqual([]);
  });

  test('with a retry: the second attempt completes the file; no temp file is left', async () => {
    const box = newBox();
    server.dropReads('/big/big.bin', 512 * 1024, 1);
    const result = await download(['-r', remote('/big'), box.target], { SAFE_SCP_RETRIES: '1' });
    expect(result.code).toBe(0);
    expect(result.newConnections).toBe(2);
    expect(fs.readFileSync(path.join(box.target, 'big', 'big.bin')).equals(BIG)).toBe(true);
    expect(tempsIn(snapshot(box.parent))).toEqual([]);
  });
});
