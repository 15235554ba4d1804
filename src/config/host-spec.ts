// Host specs as -J, --hosts and `doctor` take them, and ~ in file names.
import os from 'node:os';
import path from 'node:path';
import { usageError } from '../errors.js';
import { hasControl } from '../operands.js';

/** `[user@]host[:port]` as used by -J and --hosts entries. */
export function parseHostSpec(spec: string, what: string): { host: string; user: string | undefined; port: number | undefined } {
  const at = spec.lastIndexOf('@');
  const user = at >= 0 ? spec.slice(0, at) || undefined : undefined;
  const rest = at >= 0 ? spec.slice(at + 1) : spec;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  let host = rest;
  let portText: string | undefined;
  if (v6) {
    host = v6[1] ?? '';
    portText = v6[2];
  } else if (rest.split(':').length === 2) {
    [host, portText] = rest.split(':') as [string, string];
  }
  if (hasControl(spec)) throw usageError(`${what}: ${JSON.stringify(spec)} contains a control character`);
  if (!host || /[\s/[\]]/.test(host)) throw usageError(`${what}: invalid host "${spec}", expected [user@]host[:port]`);
  if (portText !== undefined && (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535)) {
    throw usageError(`${what}: invalid port in "${spec}", expected 1-65535`);
  }
  return { host, user, port: portText === undefined ? undefined : Number(portText) };
}

/** `--hosts` as a comma or newline list (`@file` is read by the CLI before), `#` comments dropped. */
export function parseHostsList(value: string): string[] {
  return value
    .split(/[,\n]/)
    .map((s) => s.replace(/#.*/, '').trim())
    .filter(Boolean);
}

export function expandHome(file: string, env: Readonly<Record<string, string | undefined>>): string {
  if (file === '~' || file.startsWith('~/')) return path.join(env['HOME'] ?? os.homedir(), file.slice(1));
  return file;
}
