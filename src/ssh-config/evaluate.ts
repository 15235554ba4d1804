// Evaluates ssh_config for one host the way ssh(1) does: Host and Match blocks, first value wins,
// Include (conditional, globbed, relative to ~/.ssh or /etc/ssh), and a final pass for `Match final`.
import path from 'node:path';
import { configError } from '../errors.js';
import { expandGlob, type ConfigLine, type ConfigReader } from './read.js';

/** A config line that applied to the host. */
export interface Applied {
  readonly keyword: string;
  readonly name: string;
  readonly args: readonly string[];
  readonly file: string;
  readonly line: number;
}

export interface ConfigFile {
  readonly path: string;
  /** The user's file (or -F): a relative Include is under ~/.ssh; the system file's under /etc/ssh. */
  readonly user: boolean;
}

export interface EvalInput {
  /** The host as typed in the operand (the alias); Host lines match it. */
  readonly host: string;
  readonly files: readonly ConfigFile[];
  readonly home: string;
  readonly localUser: string;
  /** Values given on the command line or in the operand (lower-case keyword -> value): they win over the files. */
  readonly preset: ReadonlyMap<string, string>;
  readonly reader: ConfigReader;
}

export interface Evaluated {
  /** The first value of each keyword the files set (keywords in `preset` are not here). */
  readonly first: ReadonlyMap<string, Applied>;
  /** Every IdentityFile line that applied, in order, duplicates dropped (they accumulate, as in ssh). */
  readonly identityFiles: readonly Applied[];
  /** Every line that took effect, in order (for --dry-run). */
  readonly applied: readonly Applied[];
  /** HostName with %h expanded, when set. */
  readonly hostname: string | undefined;
}

/** Keywords whose lines add up instead of the first one winning. */
const ACCUMULATE = new Set(['identityfile', 'certificatefile', 'localforward', 'remoteforward', 'dynamicforward', 'sendenv', 'setenv']);
/** ProxyJump and ProxyCommand are one setting in ssh: whichever comes first wins. */
const slotOf = (keyword: string): string => (keyword === 'proxycommand' ? 'proxyjump' : keyword);
const MAX_INCLUDE_DEPTH = 16;

/** OpenSSH's match_pattern: `*` any run, `?` exactly one character. */
export function matchPattern(text: string, pattern: string): boolean {
  let re = '';
  for (const ch of pattern) re += ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  return new RegExp(`^${re}$`, 's').test(text);
}

/** OpenSSH's match_pattern_list: comma-separated, a matching `!pattern` refuses outright. */
export function matchPatternList(text: string, list: string, lowercase: boolean): boolean {
  const subject = lowercase ? text.toLowerCase() : text;
  let positive = false;
  for (const raw of list.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = lowercase ? raw.slice(negated ? 1 : 0).toLowerCase() : raw.slice(negated ? 1 : 0);
    if (matchPattern(subject, pattern)) {
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

function hostLineMatches(patterns: readonly string[], host: string): boolean {
  let matched = false;
  for (const p of patterns) {
    const negated = p.startsWith('!');
    if (matchPattern(host, negated ? p.slice(1) : p)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** %h and %% only, as ssh allows in HostName. */
function expandHostname(value: string, host: string, where: string): string {
  return value.replace(/%(.)?/g, (_, ch: string | undefined) => {
    if (ch === '%') return '%';
    if (ch === 'h') return host;
    throw configError(`${where}: HostName accepts only the %h and %% tokens, got "%${ch ?? ''}"`);
  });
}

export function evaluateHost(input: EvalInput): Evaluated {
  const first = new Map<string, Applied>();
  const slots = new Set<string>([...input.preset.keys()].map(slotOf));
  const identityFiles: Applied[] = [];
  const applied: Applied[] = [];
  let hostname: string | undefined = input.preset.get('hostname');
  let wantFinal = false;

  const set = (entry: ConfigLine): void => {
    const item: Applied = { keyword: entry.keyword, name: entry.name, args: entry.args, file: entry.file, line: entry.line };
    if (entry.keyword === 'identityfile') {
      if (!identityFiles.some((f) => f.args[0] === item.args[0])) {
        identityFiles.push(item);
        applied.push(item);
      }
      return;
    }
    if (ACCUMULATE.has(entry.keyword)) {
      applied.push(item);
      if (!first.has(entry.keyword)) first.set(entry.keyword, item);
      return;
    }
    const slot = slotOf(entry.keyword);
    if (slots.has(slot)) return;
    slots.add(slot);
    first.set(entry.keyword, item);
    applied.push(item);
    if (entry.keyword === 'hostname' && entry.args[0] !== undefined) hostname = entry.args[0];
  };

  const matchLine = (entry: ConfigLine, host: string, finalPass: boolean): boolean => {
    const where = `${entry.file}:${entry.line}`;
    const args = [...entry.args];
    if (args.length === 0) throw configError(`${where}: Match needs criteria`);
    let result = true;
    while (args.length > 0) {
      const attr = (args.shift() ?? '').toLowerCase();
      const negated = attr.startsWith('!');
      const name = negated ? attr.slice(1) : attr;
      if (name === 'all') continue;
      if (name === 'canonical' || name === 'final') {
        if (name === 'final') wantFinal = true;
        if (finalPass === negated) result = false;
        continue;
      }
      const arg = args.shift();
      if (arg === undefined) throw configError(`${where}: Match ${name} needs an argument`);
      let r: boolean;
      switch (name) {
        case 'host': {
          const subject = finalPass ? (hostname ?? host) : hostname !== undefined ? expandHostname(hostname, host, where) : host;
          r = matchPatternList(subject, arg, true);
          break;
        }
        case 'originalhost':
          r = matchPatternList(input.host, arg, true);
          break;
        case 'user':
          r = matchPatternList(input.preset.get('user') ?? first.get('user')?.args[0] ?? input.localUser, arg, false);
          break;
        case 'localuser':
          r = matchPatternList(input.localUser, arg, false);
          break;
        case 'exec':
          // Never run commands from a config file; a block that hinges on one cannot be decided.
          if (!result) continue;
          throw configError(`${where}: "Match exec" is not supported: safe-scp runs no commands from ssh_config. Use Host or Match host blocks instead`);
        default:
          throw configError(`${where}: Match ${name} is not supported (supported: all, canonical, final, host, originalhost, user, localuser)`);
      }
      if (r === negated) result = false;
    }
    return result;
  };

  const readFile = (lines: readonly ConfigLine[], file: ConfigFile, host: string, finalPass: boolean, depth: number): void => {
    let active = true;
    for (const entry of lines) {
      if (entry.keyword === 'host') {
        active = hostLineMatches(entry.args, host);
        continue;
      }
      if (entry.keyword === 'match') {
        active = matchLine(entry, host, finalPass);
        continue;
      }
      if (!active) continue;
      if (entry.keyword === 'include') {
        if (depth >= MAX_INCLUDE_DEPTH) throw configError(`${entry.file}:${entry.line}: Include nested too deeply (more than ${MAX_INCLUDE_DEPTH} levels)`);
        for (const arg of entry.args) {
          const tilde = arg === '~' || arg.startsWith('~/') ? path.join(input.home, arg.slice(1)) : arg;
          const full = path.isAbsolute(tilde) ? tilde : path.join(file.user ? path.join(input.home, '.ssh') : '/etc/ssh', tilde);
          for (const match of expandGlob(full)) {
            const included = input.reader.read(match);
            if (included) readFile(included, file, host, finalPass, depth + 1);
          }
        }
        continue;
      }
      set(entry);
    }
  };

  const pass = (host: string, finalPass: boolean): void => {
    for (const file of input.files) {
      const lines = input.reader.read(file.path);
      if (lines) readFile(lines, file, host, finalPass, 0);
    }
  };

  pass(input.host, false);
  const hostnameLine = first.get('hostname');
  if (hostname !== undefined) hostname = expandHostname(hostname, input.host, hostnameLine ? `${hostnameLine.file}:${hostnameLine.line}` : 'HostName').toLowerCase();
  if (wantFinal) {
    const before = hostname;
    pass(hostname ?? input.host, true);
    // A HostName first set in the final pass: %h is the name that pass matched.
    if (hostname !== before && hostname !== undefined) hostname = expandHostname(hostname, before ?? input.host, 'HostName').toLowerCase();
  }
  return { first, identityFiles, applied, hostname };
}
