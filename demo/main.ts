// `npm start`: the whole product against an embedded, flaky SFTP server (no system sshd needed).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateEd25519KeyPair } from '../src/ssh/keygen.js';
import { startFaultProxy } from '../harness/fault-proxy.js';
import { startEmbeddedServer } from './embedded-server.js';

/** The product's bin, as a user runs it: this module runs as build/demo/main.js, the bin is dist/safe-scp.mjs. */
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'safe-scp.mjs');

function write(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const relay = (stream: NodeJS.ReadableStream, out: NodeJS.WriteStream): void => {
      let buffered = '';
      stream.on('data', (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) out.write(`  │ ${line}\n`);
      });
      stream.on('end', () => buffered && out.write(`  │ ${buffered}\n`));
    };
    relay(child.stdout, process.stdout);
    relay(child.stderr, process.stdout);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

function listFiles(root: string): string[] {
  return (fs.readdirSync(root, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(root, f)).isFile()).sort();
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'safe-scp-demo-'));
  const site = path.join(work, 'site');
  const serverRoot = path.join(work, 'server');
  fs.mkdirSync(path.join(serverRoot, 'www'), { recursive: true });
  write(path.join(site, 'index.html'), '<!doctype html><title>deployed by safe-scp</title>\n');
  write(path.join(site, 'assets', 'app.js'), 'console.log("hello from the demo");\n');
  write(path.join(site, 'assets', 'style.css'), 'body { font-family: sans-serif }\n');
  fs.writeFileSync(path.join(site, 'assets', 'logo.bin'), Buffer.alloc(2 * 1024 * 1024, 7));

  const keys = generateEd25519KeyPair();
  const server = await startEmbeddedServer({ root: serverRoot, username: 'deploy', authorizedKey: keys.public });
  // The flaky layer: the first two connections are dropped before the SSH banner, exactly as sshd
  // does past MaxStartups ("Exceeded MaxStartups", then RST): the classic
  // "kex_exchange_identification: read: Connection reset by peer".
  const proxy = await startFaultProxy({
    targetPort: server.port,
    plan: { failFirst: 2, fault: { kind: 'reset', at: 'before-banner', notice: 'Exceeded MaxStartups\r\n' } },
  });
  const [, type, blob] = server.hostKeyLine().split(' ');
  const knownHosts = `[127.0.0.1]:${proxy.port} ${type} ${blob}\n`;

  console.log('safe-scp demo');
  console.log(`  embedded SFTP server on 127.0.0.1:${server.port}, host key ${server.hostKeyFingerprint} (pinned via SSH_KNOWN_HOSTS)`);
  console.log(`  flaky layer on 127.0.0.1:${proxy.port}: resets the first 2 connections before the SSH banner`);
  console.log(`  uploading ${listFiles(site).length} files with: safe-scp -r -v -P ${proxy.port} site deploy@127.0.0.1:/www\n`);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SSH_PRIVATE_KEY: keys.private,
    SSH_KNOWN_HOSTS: knownHosts,
    SAFE_SCP_RETRY_DELAY: '500ms',
    SAFE_SCP_RETRY_MAX_DELAY: '3s',
    SAFE_SCP_HOST_INTERVAL: '200ms',
    SAFE_SCP_STATE_DIR: path.join(work, 'state'),
    SAFE_SCP_REPORT: path.join(work, 'report.json'),
    HOME: work,
  };
  const code = await runCli(['-r', '-v', '-P', String(proxy.port), site, 'deploy@127.0.0.1:/www'], env);

  const sent = listFiles(site);
  const received = listFiles(path.join(serverRoot, 'www', 'site'));
  const identical = sent.length === received.length && sent.every((f) => fs.readFileSync(path.join(site, f)).equals(fs.readFileSync(path.join(serverRoot, 'www', 'site', f))));
  const report = JSON.parse(fs.readFileSync(path.join(work, 'report.json'), 'utf8')) as { attempts: Array<{ cause: string | null }> };
  console.log('');
  console.log(`  exit code ${code}; connections through the flaky layer: ${proxy.connections} (${proxy.faulted} reset before the banner)`);
  console.log(`  attempts in the report: ${report.attempts.map((a) => a.cause ?? 'ok').join(' -> ')}`);
  console.log(`  the server holds ${received.length} files, ${identical ? 'identical to the source' : 'NOT identical to the source'}`);
  console.log('  (plain scp would have failed the job at the first reset)');

  await proxy.close();
  await server.close();
  fs.rmSync(work, { recursive: true, force: true });
  process.exitCode = code === 0 && identical ? 0 : 1;
}

main().catch((err: unknown) => {
  console.error('demo failed:', err);
  process.exitCode = 1;
});
