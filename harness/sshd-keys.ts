// Keys for the throwaway sshd: client and host key pairs made with ssh-keygen, and their fingerprints.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export type KeyType = 'ed25519' | 'ecdsa' | 'rsa';

export interface HostKeyInfo {
  /** Key algorithm as in known_hosts / the SSH wire, e.g. 'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa'. */
  type: string;
  /** The ssh-keygen type it was made with ('ed25519' | 'ecdsa' | 'rsa'), or the wire type for hostKeyFiles. */
  keygenType: string;
  /** Private key path (the public key is `${path}.pub`). */
  path: string;
  /** `TYPE BASE64` (no comment). */
  publicLine: string;
  /** OpenSSH-style `SHA256:...` (no padding), equal to `ssh-keygen -lf`. */
  fingerprint: string;
}

export interface UserKey {
  type: KeyType;
  path: string;
  publicPath: string;
  /** `TYPE BASE64 COMMENT` as in the .pub file, without newline. */
  publicLine: string;
  fingerprint: string;
}


function execFileText(file: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')} failed: ${error.message} ${stderr}`.trim()));
      else resolve(stdout);
    });
  });
}

/** OpenSSH SHA256 fingerprint of a public key line (`TYPE BASE64 [comment]`). */
export function fingerprintOf(publicLine: string): string {
  const b64 = publicLine.trim().split(/\s+/)[1];
  if (b64 === undefined) throw new Error(`not a public key line: ${publicLine}`);
  const blob = Buffer.from(b64, 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function keygenArgs(type: KeyType, rsaBits: number): string[] {
  if (type === 'rsa') return ['-t', 'rsa', '-b', String(rsaBits)];
  if (type === 'ecdsa') return ['-t', 'ecdsa', '-b', '256'];
  return ['-t', 'ed25519'];
}

/** Generates a key pair with ssh-keygen at `dir/name` (default `id_TYPE`); empty passphrase unless given. */
export async function makeUserKey(
  dir: string,
  type: KeyType = 'ed25519',
  passphrase = '',
  options: { name?: string; rsaBits?: number; comment?: string } = {},
): Promise<UserKey> {
  const keyPath = path.join(dir, options.name ?? `id_${type}`);
  await execFileText(
    'ssh-keygen',
    ['-q', ...keygenArgs(type, options.rsaBits ?? 2048), '-N', passphrase, '-C', options.comment ?? 'safe-scp-test', '-f', keyPath],
    30_000,
  );
  const publicLine = (await readFile(`${keyPath}.pub`, 'utf8')).trim();
  return { type, path: keyPath, publicPath: `${keyPath}.pub`, publicLine, fingerprint: fingerprintOf(publicLine) };
}

/** The HostKeyInfo of a private key file, from its `.pub` next to it. */
export async function hostKeyFromFile(keyPath: string, keygenType: string): Promise<HostKeyInfo> {
  const [type, b64] = (await readFile(`${keyPath}.pub`, 'utf8')).trim().split(/\s+/);
  if (type === undefined || b64 === undefined) throw new Error(`bad public key file ${keyPath}.pub`);
  const publicLine = `${type} ${b64}`;
  return { type, keygenType, path: keyPath, publicLine, fingerprint: fingerprintOf(publicLine) };
}
