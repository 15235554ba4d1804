// What ssh_config says about one host: where to connect, as whom, with which keys, and which lines said so.
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { configError } from '../errors.js';
import { evaluateHost, type Applied, type ConfigFile } from './evaluate.js';
import { ConfigReader } from './read.js';

export type { Applied, ConfigFile } from './evaluate.js';

export interface SshConfigContext {
  readonly files: readonly ConfigFile[];
  readonly reader: ConfigReader;
  readonly home: string;
  readonly localUser: string;
}

/** ~/.ssh/config then /etc/ssh/ssh_config; `-F FILE` replaces both; `-F none` reads none (as ssh). */
export function sshConfigContext(option: string | undefined, home: string, localUser: string): SshConfigContext {
  const reader = new ConfigReader();
  const base = { reader, home, localUser };
  const chosen = option?.trim();
  if (!chosen) return { ...base, files: [{ path: path.join(home, '.ssh', 'config'), user: true }, { path: '/etc/ssh/ssh_config', user: false }] };
  if (chosen.toLowerCase() === 'none') return { ...base, files: [] };
  const file = chosen === '~' || chosen.startsWith('~/') ? path.join(home, chosen.slice(1)) : chosen;
  if (reader.read(file) === undefined) throw configError(`-F ${chosen}: no such ssh_config file`);
  return { ...base, files: [{ path: file, user: true }] };
}

/** Keywords safe-scp acts on; any other line that applies is named in a -v note. */
const HONOURED = new Set([
  'hostname', 'port', 'user', 'identityfile', 'identitiesonly', 'proxyjump', 'userknownhostsfile', 'stricthostkeychecking',
  'connecttimeout', 'serveraliveinterval', 'serveralivecountmax', 'connectionattempts', 'hostkeyalias', 'loglevel',
  'batchmode', 'preferredauthentications',
]);

export interface HostQuery {
  /** The host as typed: Host lines match it. */
  readonly alias: string;
  /** From the operand or the command line: these win over the files. */
  readonly user?: string | undefined;
  readonly port?: number | undefined;
  readonly proxyJump?: string | undefined;
  /** Other keywords given with -o (lower case): the files do not set them. */
  readonly commandLine?: readonly string[];
  /** What the host is, for messages: `web`, `jump host bastion`. */
  readonly what: string;
}

export interface HostSettings {
  readonly alias: string;
  /** Where to connect: HostName with %h expanded, or the alias. */
  readonly hostname: string;
  readonly port: number;
  readonly user: string;
  /** IdentityFile lines, ~ and %-tokens expanded, in order. */
  readonly identityFiles: readonly string[];
  readonly identitiesOnly: boolean | undefined;
  /** ProxyJump from the files (`none` as given). */
  readonly proxyJump: string | undefined;
  readonly hostKeyAlias: string | undefined;
  /** UserKnownHostsFile from the files, expanded. */
  readonly knownHostsFiles: readonly string[] | undefined;
  /** The first value of a keyword from the files, with file:line. */
  value(keyword: string): { value: string; where: string } | undefined;
  /** Every line that took effect, for --dry-run. */
  readonly applied: readonly Applied[];
  /** Lines that applied but that safe-scp does not act on (for a -v note). */
  readonly ignored: readonly Applied[];
}

export const where = (a: Pick<Applied, 'file' | 'line'>): string => `${a.file}:${a.line}`;

function yesNo(entry: Applied | undefined): boolean | undefined {
  if (!entry) return undefined;
  const v = (entry.args[0] ?? '').toLowerCase();
  if (v === 'yes' || v === 'true') return true;
  if (v === 'no' || v === 'false') return false;
  throw configError(`${where(entry)}: ${entry.name} must be yes or no, got "${entry.args.join(' ')}"`);
}

/** ~ and the %-tokens ssh expands in IdentityFile and UserKnownHostsFile. */
function expandPathTokens(value: string, t: { home: string; localUser: string; hostname: string; alias: string; user: string; port: number; hostKeyAlias?: string | undefined }, at: string): string {
  const tilde = value === '~' || value.startsWith('~/') ? path.join(t.home, value.slice(1)) : value;
  const local = os.hostname();
  return tilde.replace(/%(.)?/g, (_, ch: string | undefined) => {
    switch (ch) {
      case '%': return '%';
      case 'd': return t.home;
      case 'u': return t.localUser;
      case 'h': return t.hostname;
      case 'n': return t.alias;
      case 'r': return t.user;
      case 'p': return String(t.port);
      case 'k': return t.hostKeyAlias ?? t.alias;
      case 'l': return local;
      case 'L': return local.split('.')[0] ?? local;
      case 'i': return String(process.getuid?.() ?? 0);
      case 'C': return createHash('sha1').update(`${local}${t.hostname}${t.port}${t.user}`).digest('hex');
      default: throw configError(`${at}: unknown token %${ch ?? ''} in "${value}"`);
    }
  });
}

/** Resolves one host through the files; command-line and operand values win, as in ssh. */
export function resolveHostSettings(ctx: SshConfigContext, query: HostQuery): HostSettings {
  const preset = new Map<string, string>();
  if (query.user !== undefined) preset.set('user', query.user);
  if (query.port !== undefined) preset.set('port', String(query.port));
  if (query.proxyJump !== undefined) preset.set('proxyjump', query.proxyJump);
  for (const k of query.commandLine ?? []) if (!preset.has(k)) preset.set(k, '');
  const ev = evaluateHost({ host: query.alias, files: ctx.files, home: ctx.home, localUser: ctx.localUser, preset, reader: ctx.reader });

  const proxyCommand = ev.first.get('proxycommand');
  if (proxyCommand && (proxyCommand.args[0] ?? '').toLowerCase() !== 'none') {
    throw configError(
      `${where(proxyCommand)}: ${query.what} uses ProxyCommand, which safe-scp cannot run (it runs no commands from ssh_config). ` +
        `If it is \`ssh -W %h:%p JUMPHOST\`, write \`ProxyJump JUMPHOST\` instead (or pass -J JUMPHOST)`,
    );
  }

  const portLine = ev.first.get('port');
  let port = query.port ?? 22;
  if (query.port === undefined && portLine) {
    const text = portLine.args[0] ?? '';
    if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65535) throw configError(`${where(portLine)}: Port must be 1-65535, got "${text}"`);
    port = Number(text);
  }
  const userLine = ev.first.get('user');
  const user = query.user ?? userLine?.args[0] ?? ctx.localUser;
  const hostname = ev.hostname ?? query.alias;
  if (/[\s/]/.test(hostname) || hostname === '') throw configError(`${where(ev.first.get('hostname') ?? { file: query.what, line: 0 })}: invalid HostName "${hostname}"`);
  const hostKeyAlias = ev.first.get('hostkeyalias')?.args[0];
  const tokens = { home: ctx.home, localUser: ctx.localUser, hostname, alias: query.alias, user, port, hostKeyAlias };
  const identityFiles = ev.identityFiles.map((a) => expandPathTokens(a.args[0] ?? '', tokens, where(a)));
  const knownHostsLine = ev.first.get('userknownhostsfile');
  const knownHostsFiles = knownHostsLine?.args.map((f) => expandPathTokens(f, tokens, where(knownHostsLine)));
  const proxyJumpLine = ev.first.get('proxyjump');

  return {
    alias: query.alias,
    hostname,
    port,
    user,
    identityFiles,
    identitiesOnly: yesNo(ev.first.get('identitiesonly')),
    proxyJump: proxyJumpLine?.args.join(','),
    hostKeyAlias,
    knownHostsFiles,
    value: (keyword) => {
      const a = ev.first.get(keyword);
      return a ? { value: a.args.join(' '), where: where(a) } : undefined;
    },
    applied: ev.applied,
    ignored: ev.applied.filter((a) => !HONOURED.has(a.keyword)),
  };
}
