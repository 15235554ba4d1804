// The ssh2 client configuration of one connection: the socket, the pinned host key check, the ciphers and the
// authentication methods to try, from the connect options.
import type { Duplex } from 'node:stream';
import type { ConnectConfig } from 'ssh2';
import type { ConnectTrace } from '../classify.js';
import type { HostTarget } from '../config.js';
import { hostKeyAlgorithms, type HostKeyPins } from '../hostkeys/policy.js';
import { hostVerifier } from '../hostkeys/verifier.js';
import type { EventSink } from '../log/events.js';
import type { Identity } from './key.js';

export interface ConnectOptions {
  readonly target: HostTarget;
  readonly identities: readonly Identity[];
  readonly agent: string | undefined;
  readonly pins: HostKeyPins;
  readonly strictHostKeyChecking: 'yes' | 'accept-new';
  readonly acceptNewFile: string;
  readonly connectTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveCountMax: number;
  /** An already-open stream to tunnel through (jump hosts); otherwise a TCP connection is made. */
  readonly sock?: Duplex;
  readonly signal?: AbortSignal | undefined;
  readonly emit: EventSink;
  /** SFTP channels to offer (default 1): the session resolves with the first, the others open when the work asks. */
  readonly channels?: number;
  /** The channels were asked for explicitly: opened even when the round trip is too short for them to help. */
  readonly channelsForced?: boolean;
  /** Called once authentication completes (the host throttle slot is released then). */
  readonly onAuthenticated?: () => void;
}

/** Ciphers in order of speed on AES-NI machines (faults-and-perf.md 3: gcm beats chacha20 by ~40%). */
const CIPHERS = [
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  'chacha20-poly1305@openssh.com',
  'aes128-ctr',
  'aes192-ctr',
  'aes256-ctr',
] as const;

/** The name and port known_hosts is searched for: HostKeyAlias (port 22, as ssh does) or the host connected to. */
export function hostKeyName(target: HostTarget): { host: string; port: number } {
  return target.hostKeyAlias !== undefined ? { host: target.hostKeyAlias, port: 22 } : { host: target.host, port: target.port };
}

/** What ssh2's Client.connect is given for `options` over `sock`; the host key check records into `trace`. */
export function clientConfig(options: ConnectOptions, sock: Duplex, trace: ConnectTrace): ConnectConfig {
  const { target } = options;
  const named = hostKeyName(target);
  const restricted = hostKeyAlgorithms(options.pins, named.host, named.port);
  if (restricted) trace.pinnedKeyAlgorithms = restricted;
  return {
    sock: sock as NonNullable<ConnectConfig['sock']>,
    username: target.user,
    readyTimeout: 0,
    keepaliveInterval: options.keepaliveIntervalMs,
    keepaliveCountMax: options.keepaliveCountMax,
    // Answers at once except while accept-new records a new key: see hostkeys/verifier.ts (issue 14).
    hostVerifier: hostVerifier(
      { ...named, pins: options.pins, strictHostKeyChecking: options.strictHostKeyChecking, acceptNewFile: options.acceptNewFile, emit: options.emit },
      trace,
    ) as unknown as NonNullable<ConnectConfig['hostVerifier']>,
    algorithms: {
      cipher: [...CIPHERS],
      ...(restricted ? { serverHostKey: restricted as NonNullable<NonNullable<ConnectConfig['algorithms']>['serverHostKey']> } : {}),
    },
    authHandler: [
      ...options.identities.map((id) => ({
        type: 'publickey' as const,
        username: target.user,
        key: id.privateKey,
        ...(id.passphrase === undefined ? {} : { passphrase: id.passphrase }),
      })),
      ...(options.agent ? [{ type: 'agent' as const, username: target.user, agent: options.agent }] : []),
    ] as unknown as NonNullable<ConnectConfig['authHandler']>,
  };
}
