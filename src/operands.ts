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

/** C0 controls and DEL (a decoded %00 included): no remote name, user or host may carry them. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

export function hasControl(text: string): boolean {
  return CONTROL.test(text);
}

/** `\u0000` for a NUL, so that the message shows what was found without printing it. */
function showControl(text: string): string {
  return text.replace(new RegExp(CONTROL.source, 'g'), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Refuses a control character in a user, host or path of `operand` before anything connects. */
function rejectControl(what: string, value: string | undefined, operand: string): void {
  if (value !== undefined && CONTROL.test(value)) {
    throw usageError(`${what} in operand "${showControl(operand)}" contains a control character (${showControl(value.match(CONTROL)?.[0] ?? '')})`);
  }
}

/** A host name or address never holds brackets, spaces or other separators once any [] around an IPv6 address are gone. */
function checkHost(host: string, operand: string): string {
  rejectControl('the host', host, operand);
  if (/[[\]\s/@]/.test(host)) throw usageError(`invalid host "${host}" in operand "${operand}"`);
  return host;
}

function remote(host: string, user: string | undefined, port: number | undefined, path: string, operand: string): RemoteOperand {
  rejectControl('the user name', user, operand);
  rejectControl('the remote path', path, operand);
  return { kind: 'remote', host: host === '' ? host : checkHost(host, operand), user, port, path };
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
  if (rest.startsWith('[') && !bracketed) throw usageError(`unclosed "[" in the host of operand "${operand}": write scp://[user@][IPv6]:port/path`);
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
  return remote(host, user === undefined ? undefined : decode(user, operand), port, homeRelative(decode(rawPath, operand)), operand);
}

/** Classifies one operand the way scp does: a colon before any slash makes it remote. */
export function parseOperand(operand: string): Operand {
  if (operand === '') throw usageError('empty operand');
  if (/^scp:\/\//i.test(operand)) return parseScpUri(operand);
  // `[user@][v6addr]:path`
  const v6 = /^(?:([^@/]*)@)?\[([^\]]+)\]:(.*)$/s.exec(operand);
  if (v6) {
    return remote(v6[2] ?? '', v6[1] || undefined, undefined, homeRelative(v6[3] ?? ''), operand);
  }
  // As in scp, an opening bracket without the `]:` that closes it never makes a remote operand.
  if (/^(?:[^@/]*@)?\[/.test(operand)) return { kind: 'local', path: operand };
  const colon = operand.indexOf(':');
  const slash = operand.indexOf('/');
  if (colon < 0 || (slash >= 0 && slash < colon)) return { kind: 'local', path: operand };
  const { user, rest } = splitUser(operand.slice(0, colon));
  return remote(rest, user, undefined, homeRelative(operand.slice(colon + 1)), operand);
}

/** The operands of one copy: which way it goes, the remote side (the target, or the first source), the rest. */
export interface CopyOperands {
  readonly direction: 'upload' | 'download';
  readonly remote: RemoteOperand;
  readonly sourceOperands: readonly Operand[];
  readonly targetOperand: Operand;
}

/** Parses SOURCE... TARGET: an upload to one remote target, or a download from sources on one remote host. */
export function splitOperands(operands: readonly string[]): CopyOperands {
  if (operands.length < 2) throw usageError('expected at least one SOURCE and a TARGET (safe-scp [options] SOURCE... TARGET)');
  const parsed = operands.map(parseOperand);
  const targetOperand = parsed[parsed.length - 1] as Operand;
  const sourceOperands = parsed.slice(0, -1);
  if (targetOperand.kind === 'remote') {
    if (sourceOperands.some((o) => o.kind === 'remote')) {
      throw usageError('remote-to-remote copies are not supported: copy to a local directory first, then upload');
    }
    return { direction: 'upload', remote: targetOperand, sourceOperands, targetOperand };
  }
  const remotes = sourceOperands.filter((o): o is RemoteOperand => o.kind === 'remote');
  const first = remotes[0];
  if (first === undefined) throw usageError('no remote operand: one side must be [user@]host:path');
  if (remotes.length !== sourceOperands.length) throw usageError('cannot mix local and remote sources in one download');
  if (remotes.some((r) => r.host !== first.host || r.user !== first.user || r.port !== first.port)) {
    throw usageError('all remote sources of a download must be on the same host');
  }
  return { direction: 'download', remote: first, sourceOperands, targetOperand };
}
