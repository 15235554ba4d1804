// What every part of the key loader shares: where a key came from, the key-invalid error, and causes stripped of key material.
import { createHash } from 'node:crypto';
import type { ParsedKey } from 'ssh2';
import { SafeScpError } from '../../errors.js';

export type SourceKind = 'text' | 'file' | 'env' | 'env-file';
export interface Source {
  readonly label: string;
  readonly kind: SourceKind;
  readonly path?: string;
}

export function keyInvalid(source: Source, message: string, cause?: unknown, details?: Record<string, unknown>): SafeScpError {
  return new SafeScpError('key-invalid', `${source.label}: ${message}`, {
    phase: 'auth',
    ...(cause === undefined ? {} : { cause }),
    details: { source: source.label, ...(source.path === undefined ? {} : { path: source.path }), ...details },
  });
}

export const FIX_STORE =
  'Store the key as a File-type CI/CD variable, pasted exactly as `cat ~/.ssh/id_ed25519` prints it ' +
  '(from -----BEGIN to -----END, with a final newline), or base64-encode the whole file (`base64 -w0 KEY`) if it must be masked.';

/** `SHA256:` + unpadded base64 of the SHA-256 of the public key blob, like `ssh-keygen -lf`. */
export function fingerprintOf(key: Pick<ParsedKey, 'getPublicSSH'>): string {
  return `SHA256:${createHash('sha256').update(key.getPublicSSH()).digest('base64').replace(/=+$/, '')}`;
}

export function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  const { code } = err as { code: unknown };
  return typeof code === 'string' ? code : undefined;
}


/** A fresh Error carrying only ssh2's/OpenSSL's generic text: values ssh2 interpolates from the key are dropped. */
export function safeCause(err: unknown): Error {
  const raw = err instanceof Error ? err.message : String(err);
  let message = raw
    .slice(0, 200)
    .replace(/[^\x20-\x7E]+/g, '?')
    .replace(/(: |\()([^():]*)(\)?)/g, (_m, pre: string, value: string, post: string) =>
      /^[A-Za-z0-9@.,-]{1,40}$/.test(value.trim()) || /^[a-z ?-]+$/i.test(value) ? `${pre}${value}${post}` : `${pre}<redacted>${post}`,
    );
  // Belt and braces: no long base64-looking run survives.
  message = message.replace(/[A-Za-z0-9+/=]{24,}/g, '<redacted>');
  const code = errorCode(err);
  const out = new Error(message);
  if (code !== undefined && /^[A-Z0-9_]{1,64}$/.test(code)) Object.defineProperty(out, 'code', { value: code, enumerable: true });
  return out;
}
