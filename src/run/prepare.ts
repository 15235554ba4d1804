// Before any connection: keys, pins, the local walk started lazily, the channels to ask for, the dry-run plan.
import { SafeScpError } from '../errors.js';
import type { HostTarget, ResolvedConfig } from '../config.js';
import { loadPins } from '../hostkeys/load-pins.js';
import type { HostKeyPins } from '../hostkeys/policy.js';
import type { EventSink } from '../log/events.js';
import { agentSocket, loadIdentities, type Identity } from '../ssh/key.js';
import { checkLocalSource, type LocalSource } from '../transfer/local-tree.js';
import { Prefetch } from '../transfer/prefetch.js';

export interface CopyDeps {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly emit: EventSink;
  readonly signal?: AbortSignal | undefined;
  /** Injected randomness for backoff (tests). */
  readonly random?: () => number;
}

export interface Prepared {
  /** The keys and agent for one host or jump host (its own IdentityFile lines, IdentitiesOnly). */
  credentials: (hop: HostTarget) => { identities: Identity[]; agent: string | undefined };
  pins: HostKeyPins;
  /** The walked upload sources: the walk starts on the first call, which copyToHost makes once the first connection is under way. */
  localSources: () => Promise<LocalSource[]>;
  prefetch: Prefetch;
  /** SFTP channels to offer on each host's connection (opened when the work needs them: Channels.offer). */
  channels: number;
}

export async function prepare(config: ResolvedConfig, deps: CopyDeps): Promise<Prepared> {
  const agent = agentSocket(deps.env);
  const keysOf = (hop: HostTarget): string => JSON.stringify([hop.identityFiles ?? config.identityFiles, hop.configIdentityFiles ?? []]);
  const loaded = new Map<string, Identity[]>();
  const credentials = (hop: HostTarget): { identities: Identity[]; agent: string | undefined } => ({
    identities: loaded.get(keysOf(hop)) ?? [],
    agent: hop.identitiesOnly ? undefined : agent,
  });
  for (const hop of config.hosts.flatMap((h) => [...(h.jumpHosts ?? config.jumpHosts), h])) {
    if (config.dryRun || loaded.has(keysOf(hop))) continue;
    const onSkip = (message: string): void => deps.emit({ kind: 'debug', message });
    loaded.set(keysOf(hop), await loadIdentities({ identityFiles: hop.identityFiles ?? config.identityFiles, optionalFiles: hop.configIdentityFiles ?? [], onSkip, env: deps.env }));
    const { identities, agent: hopAgent } = credentials(hop);
    if (identities.length === 0 && !hopAgent) {
      const why = agent && hop.identitiesOnly ? ` (IdentitiesOnly=yes for ${hop.alias ?? hop.host}: the agent is not used)` : '';
      throw new SafeScpError('key-invalid', `no key to authenticate with: set SSH_PRIVATE_KEY, pass -i FILE, put a key at ~/.ssh/id_ed25519, or run an ssh-agent (SSH_AUTH_SOCK)${why}`, { phase: 'auth' });
    }
  }
  const { pins, warnings } = await loadPins({ knownHostsFiles: config.knownHostsFiles, fingerprints: config.hostKeyFingerprints, env: deps.env });
  for (const w of warnings) deps.emit({ kind: 'debug', message: w });
  // A bad operand fails here, before any connection; the directory walks then run while the connection is made
  // (a 2000-file tree takes ~50-100 ms to stat, about what the handshake takes), started once the connection is
  // under way so that they do not hold up its start.
  const checked = config.direction === 'upload' ? config.sources.map((source) => checkLocalSource(source, config.recursive)) : [];
  const prefetch = new Prefetch();
  let walked: Promise<LocalSource[]> | undefined;
  const localSources = (): Promise<LocalSource[]> => {
    if (walked) return walked;
    walked = (async (): Promise<LocalSource[]> => {
      const sources: LocalSource[] = [];
      for (const c of checked) sources.push(await c.scan(deps.emit));
      return sources;
    })();
    // Awaited by whoever needs it; a failure is reported there (as the attempt's error), not as unhandled.
    walked.catch(() => undefined);
    // Small files are read while the connection is made (prefetch.ts); the upload reads any it did not get to.
    if (!config.dryRun) walked.then((sources) => prefetch.run(sources)).catch(() => undefined);
    return walked;
  };
  return { credentials, pins, localSources, prefetch, channels: config.channels };
}

/**
 * The dry-run plan, decided without a connection: where TARGET's existence matters (one source, as scp
 * does it), the entry shows the "TARGET is an existing directory" case and the plan line says so.
 */
export function emitPlan(config: ResolvedConfig, localSources: readonly LocalSource[], emit: EventSink): void {
  const target = config.target || '.';
  const intoDirectory = config.sources.length > 1 || target.endsWith('/');
  let bytes = 0;
  let entries = 0;
  for (const source of localSources) {
    const base = `${target.replace(/\/+$/, '')}/${source.name}`;
    for (const item of source.items) {
      entries++;
      bytes += item.size;
      emit({ kind: 'plan-entry', source: item.path, target: item.rel ? `${base}/${item.rel}` : base, bytes: item.size, type: item.type });
    }
  }
  if (config.direction === 'download') {
    for (const s of config.sources) emit({ kind: 'plan-entry', source: s, target: config.target, bytes: 0, type: 'file' });
    entries = config.sources.length;
  }
  const note = !intoDirectory && config.direction === 'upload' ? `if ${target} is not an existing directory, the source becomes ${target} itself` : undefined;
  for (const host of config.hosts) {
    emit({ kind: 'plan', direction: config.direction, host: host.host, port: host.port, user: host.user, entries, bytes, dryRun: true, ...(note ? { note } : {}) });
  }
}

