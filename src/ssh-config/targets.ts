// Turns hosts as typed (operand, --hosts entries, -J hops) into connection targets through ssh_config.
import path from 'node:path';
import type { HostTarget } from '../config/host-target.js';
import { configError, usageError } from '../errors.js';
import { resolveHostSettings, where, type HostSettings, type SshConfigContext } from './host.js';

/** A config line that applied, as --dry-run and -v show it. */
export interface AppliedLine {
  readonly host: string;
  readonly file: string;
  readonly line: number;
  readonly keyword: string;
  readonly value: string;
}

export interface TargetInput {
  readonly ctx: SshConfigContext;
  /** -i and -o IdentityFile (already expanded): used for every host, before its IdentityFile lines. */
  readonly identityFiles: readonly string[];
  /** Whether SSH_PRIVATE_KEY is set: then the default identities are not tried. */
  readonly envKey: boolean;
  /** Keywords given with -o (lower case): the files do not set them. */
  readonly commandLine: readonly string[];
  readonly hostKeyAlias: string | undefined;
  readonly identitiesOnly: boolean | undefined;
  /** -J or -o ProxyJump: replaces the files' ProxyJump for the hosts copied to. */
  readonly jump: string | undefined;
  readonly parseHostSpec: (spec: string, what: string) => { host: string; user: string | undefined; port: number | undefined };
}

/** ssh's default identities, in the order the contract lists them; only those that exist are read. */
const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'] as const;
const MAX_JUMP_DEPTH = 8;

export class TargetResolver {
  /** Every host resolved so far (targets and jump hosts), for the dry-run lines and the -v notes. */
  readonly resolved: HostSettings[] = [];

  constructor(private readonly input: TargetInput) {}

  /** One host copied to: its config block, its jump chain (each hop with its own block). */
  target(alias: string, user: string | undefined, port: number | undefined): { target: HostTarget; settings: HostSettings } {
    const settings = resolveHostSettings(this.input.ctx, {
      alias,
      user,
      port,
      proxyJump: this.input.jump,
      commandLine: this.input.commandLine,
      what: alias,
    });
    this.resolved.push(settings);
    const jumpHosts = this.chain(this.input.jump ?? settings.proxyJump, 0, alias);
    return { target: this.toTarget(settings, jumpHosts), settings };
  }

  private chain(spec: string | undefined, depth: number, from: string): HostTarget[] {
    if (!spec || spec.trim().toLowerCase() === 'none') return [];
    if (depth >= MAX_JUMP_DEPTH) throw configError(`ProxyJump for ${from} nests more than ${MAX_JUMP_DEPTH} jump hosts deep: is there a loop (a Host * block that also matches the jump host)?`);
    return spec.split(',').flatMap((hop) => {
      const s = this.input.parseHostSpec(hop.trim(), '-J');
      const settings = resolveHostSettings(this.input.ctx, { alias: s.host, user: s.user, port: s.port, what: `jump host ${s.host}` });
      this.resolved.push(settings);
      return [...this.chain(settings.proxyJump, depth + 1, s.host), this.toTarget(settings, [])];
    });
  }

  private toTarget(s: HostSettings, jumpHosts: HostTarget[]): HostTarget {
    const none = this.input.identityFiles.length === 0 && s.identityFiles.length === 0 && !this.input.envKey;
    const lenient = none ? DEFAULT_IDENTITIES.map((f) => path.join(this.input.ctx.home, '.ssh', f)) : s.identityFiles;
    const hostKeyAlias = this.input.hostKeyAlias ?? s.hostKeyAlias;
    const identitiesOnly = this.input.identitiesOnly ?? s.identitiesOnly;
    return {
      host: s.hostname,
      port: s.port,
      user: s.user,
      ...(s.alias !== s.hostname ? { alias: s.alias } : {}),
      identityFiles: [...this.input.identityFiles],
      configIdentityFiles: lenient,
      ...(identitiesOnly !== undefined ? { identitiesOnly } : {}),
      ...(hostKeyAlias !== undefined ? { hostKeyAlias } : {}),
      jumpHosts,
    };
  }

  /** The lines that applied to each host and that safe-scp acts on, in order (the rest are in notes()). */
  appliedLines(): AppliedLine[] {
    const seen = new Set<string>();
    return this.resolved.flatMap((s) =>
      s.applied
        .filter((a) => !s.ignored.includes(a))
        .map((a) => ({ host: s.alias, file: a.file, line: a.line, keyword: a.name, value: a.args.join(' ') }))
        .filter((l) => {
          const key = `${l.host}\0${l.file}\0${l.line}`;
          if (seen.has(key)) return false;
          seen.add(key);
          return true;
        }),
    );
  }

  /** -v notes: lines that applied but that safe-scp does not act on, once per host. */
  notes(): string[] {
    const out = new Set<string>();
    for (const s of this.resolved) {
      if (s.ignored.length === 0) continue;
      out.add(`ssh_config for ${s.alias}: not used by safe-scp: ${s.ignored.map((a) => `${a.name} (${where(a)})`).join(', ')}`);
    }
    return [...out];
  }
}

/** `-o LogLevel` / `LogLevel` lines: QUIET, FATAL, ERROR -> quiet; VERBOSE, DEBUG* -> verbose; INFO -> neither. */
export function logLevel(value: string, at: string, fromFile: boolean): 'quiet' | 'verbose' | undefined {
  const v = value.trim().toUpperCase();
  if (v === 'QUIET' || v === 'FATAL' || v === 'ERROR') return 'quiet';
  if (v === 'VERBOSE' || /^DEBUG[123]?$/.test(v)) return 'verbose';
  if (v === 'INFO') return undefined;
  const message = `${at}: LogLevel must be one of QUIET, FATAL, ERROR, INFO, VERBOSE, DEBUG, DEBUG1-3, got "${value}"`;
  throw fromFile ? configError(message) : usageError(message);
}

/** PreferredAuthentications: safe-scp authenticates with keys only, so the list must allow publickey. */
export function checkPreferredAuthentications(value: string, at: string, fromFile: boolean): void {
  const methods = value.split(',').map((m) => m.trim().toLowerCase());
  if (methods.includes('publickey')) return;
  const message = `${at}: PreferredAuthentications=${value} leaves out publickey, the only method safe-scp uses (it never prompts for a password)`;
  throw fromFile ? configError(message) : usageError(message);
}
