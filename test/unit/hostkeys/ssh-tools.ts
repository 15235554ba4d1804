// Test helpers: real keys from ssh-keygen in a throwaway directory, and ssh-keygen as an oracle.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Every ssh-keygen call is bounded so a wedged tool fails the test instead of hanging CI. */
const EXEC_TIMEOUT_MS = 20_000;

export interface TestKey {
  /** Key type as written in the .pub file, e.g. `ssh-ed25519`. */
  type: string;
  base64: string;
  blob: Buffer;
  /** `type base64`, ready to follow a host field. */
  text: string;
  pubFile: string;
}

export async function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'safe-scp-hostkeys-'));
}

export async function removeTempDir(dir: string | undefined): Promise<void> {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}

/** Generates a key pair with no passphrase and returns its public half. */
export async function generateKey(dir: string, name: string, args: string[]): Promise<TestKey> {
  const file = join(dir, name);
  execFileSync('ssh-keygen', [...args, '-N', '', '-C', name, '-f', file, '-q'], {
    timeout: EXEC_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return keyFromText(await readFile(`${file}.pub`, 'utf8'), `${file}.pub`);
}

export function keyFromText(pubText: string, pubFile: string): TestKey {
  const [type, base64] = pubText.trim().split(/\s+/);
  if (type === undefined || base64 === undefined) throw new Error(`bad public key in ${pubFile}`);
  return { type, base64, blob: Buffer.from(base64, 'base64'), text: `${type} ${base64}`, pubFile };
}

export interface ExecResult {
  status: number;
  stdout: string;
}

/** Runs ssh-keygen, returning its exit status instead of throwing on a non-zero one. */
export function sshKeygen(args: string[]): ExecResult {
  try {
    const stdout = execFileSync('ssh-keygen', args, {
      timeout: EXEC_TIMEOUT_MS,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { status: 0, stdout };
  } catch (error: unknown) {
    const failed = error as { status?: number | null; stdout?: string; signal?: string | null };
    if (typeof failed.status !== 'number') throw error; // timeout or spawn failure: not an answer
    return { status: failed.status, stdout: failed.stdout ?? '' };
  }
}

/** Builds an SSH wire blob from `string` fields. */
export function wireBlob(...fields: (string | Buffer)[]): Buffer {
  return Buffer.concat(
    fields.flatMap((field) => {
      const bytes = typeof field === 'string' ? Buffer.from(field, 'latin1') : field;
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return [length, bytes];
    }),
  );
}

/** Reads the SSH `string` fields of a blob (for building derived test keys). */
export function wireFields(blob: Buffer): Buffer[] {
  const fields: Buffer[] = [];
  let offset = 0;
  while (offset < blob.length) {
    const length = blob.readUInt32BE(offset);
    fields.push(blob.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return fields;
}
