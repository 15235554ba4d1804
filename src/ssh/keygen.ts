// Ed25519 keys in OpenSSH format, from node:crypto: converting a PKCS#8 key for ssh2 (key.ts) and making
// fresh pairs. ssh2's utils.generateKeyPairSync('ed25519') drops a leading zero byte of the public key (about
// 1 key in 230), which its own parser then rejects as "Malformed OpenSSH private key"; the demo and the test
// servers use generateEd25519KeyPair instead.
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';

export interface OpenSshKeyPair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` text, unencrypted. */
  private: string;
  /** `ssh-ed25519 AAAA... comment` (no comment part when the comment is empty). */
  public: string;
}

const TYPE = 'ssh-ed25519';

function sshString(data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function jwkBytes(value: unknown, what: string): Buffer {
  if (typeof value !== 'string') throw new Error(`ed25519 key without ${what}`);
  const bytes = Buffer.from(value, 'base64url');
  if (bytes.length !== 32) throw new Error(`ed25519 ${what} is ${bytes.length} bytes, expected 32`);
  return bytes;
}

/** A fresh Ed25519 key pair, encoded as `ssh-keygen -t ed25519 -N ''` writes it. */
export function generateEd25519KeyPair(comment = ''): OpenSshKeyPair {
  return opensshEd25519(generateKeyPairSync('ed25519').privateKey, comment);
}

/** An Ed25519 private key as an unencrypted openssh-key-v1 container (PROTOCOL.key) and its public line. */
export function opensshEd25519(privateKey: KeyObject, comment = ''): OpenSshKeyPair {
  const jwk = privateKey.export({ format: 'jwk' });
  const pub = jwkBytes(jwk.x, 'public part');
  const seed = jwkBytes(jwk.d, 'private part');

  const publicBlob = Buffer.concat([sshString(TYPE), sshString(pub)]);
  const check = randomBytes(4).readUInt32BE();
  const unpadded = Buffer.concat([
    uint32(check),
    uint32(check),
    sshString(TYPE),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(comment),
  ]);
  const padLength = (8 - (unpadded.length % 8)) % 8;
  const padding = Buffer.from(Array.from({ length: padLength }, (_, i) => i + 1));
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    uint32(1),
    sshString(publicBlob),
    sshString(Buffer.concat([unpadded, padding])),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g) ?? [];
  return {
    private: ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n'),
    public: [TYPE, publicBlob.toString('base64'), ...(comment === '' ? [] : [comment])].join(' '),
  };
}
