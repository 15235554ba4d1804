// Parses scp operands: local paths, [user@]host:[path], scp://[user@]host[:port][/path], IPv6 in brackets.
import { usageError } from './errors.js';

export interface LocalOperand {
  readonly kind: 'local';
  readonly path: string;
}

export interface RemoteOperand {
  readonly kind: 'remote';
  /** Empty when the host comes from --hosts (`user@:path`). */
  readonly host: string;
  readonly user: string | undefined;
  readonly port: number | undefined;
  /** Remote path as given; '' means the login directory. */
  readonly path: string;
}

export type Operand = LocalOperand | RemoteOperand;

function parsePort(text: string, operand: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) {
    throw usageError(`invalid port "${text}" in operand "${operand}": expected 1-65535`);
  }
  return port;
}

/** `~` and `~/x` name the login directory, which is where SFTP resolves relative paths anyway. */
function homeRelative(path: string): string {
  if (path === '~') return '';
  return path.startsWith('~/') ? path.slice(2) : path;
}

/** decodeURIComponent, but a malformed escape is a usage error rather than a URIError. */
function decode(text: string, operand: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw usageError(`invalid %-escape in operand "${operand}"`);
  }
}

function splitUser(text: string): { user: string | undefined; rest: string } {
  const at = text.lastIndexOf('@');
  if (at < 0) return { user: undefined, rest: text };
  return { user: text.slice(0, at) || undefined, rest: text.slice(at + 1) };
}

function parseScpUri(operand: string): RemoteOperand {
  const body = operand.slice('scp://'.length);
  const slash = body.indexOf('/');
  const authority = slash < 0 ? body : body.slice(0, slash);
  const rawPath = slash < 0 ? '' : body.slice(slash + 1);
  const { user, rest } = splitUser(authority);
  let host = rest;
  let port: number | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(rest);
  if (bracketed) {
    host = bracketed[1] ?? '';
    if (bracketed[2] !== undefined) port = parsePort(bracketed[2], operand);
  } else if (rest.includes(':')) {
    const colon = rest.lastIndexOf(':');
    host = rest.slice(0, colon);
    port = parsePort(rest.slice(colon + 1), operand);
  }
  if (!host) throw usageError(`missing host in "${operand}"`);
  // As in OpenSSH, the scp:// path is relative to the login directory unless it starts with another '/'.
  return {
    kind: 'remote',
    host,
    user: user === undefined ? undefined : decode(user, operand),
    port,
    path: homeRelative(decode(rawPath, operand)),
  };
}

/** Classifies one operand the way scp does: a colon before any slash makes it remote. */
export function parseOperand(operand: string): Operand {
  if (operand === '') throw usageError('empty operand');
  if (/^scp:\/\//i.test(operand)) return parseScpUri(operand);
  // `[user@][v6addr]:path`
  const v6 = /^(?:([^@/]*)@)?\[([^\]]+)\]:(.*)$/s.exec(operand);
  if (v6) {
    return { kind: 'remote', host: v6[2] ?? '', user: v6[1] || undefined, port: undefined, path: homeRelative(v6[3] ?? '') };
  }
  // As in scp, an opening bracket without the `]:` that closes it never makes a remote operand.
  if (/^(?:[^@/]*@)?\[/.test(operand)) return { kind: 'local', path: operand };
  const colon = operand.indexOf(':');
  const slash = operand.indexOf('/');
  if (colon < 0 || (slash >= 0 && slash < colon)) return { kind: 'local', path: operand };
  const { user, rest } = splitUser(operand.slice(0, colon));
  return { kind: 'remote', host: rest, user, port: undefined, path: homeRelative(operand.slice(colon + 1)) };
}
