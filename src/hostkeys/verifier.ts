// The host key check of one connection, answered synchronously wherever it can be.
//
// ssh2 asks again at every key exchange, re-keys included (sshd's RekeyLimit). An answer given later, from a
// promise, leaves ssh2 between the server's KEX reply and its NEWKEYS while the transfer keeps writing: OpenSSH
// sends both together, and data packets written in that window went out framed for the wrong keys ("Bad packet
// length ... Connection corrupted" in sshd's log, issue 14). The pinned-key decision is synchronous, so it is
// returned at once (ssh2 takes a non-undefined return value as the answer). Only accept-new of an unknown key
// waits, for the known_hosts append, and that happens in the initial key exchange, before any data flows.
// A re-key is accepted for exactly the key verified on this connection (same blob) and for nothing else.
import type { ConnectTrace } from '../classify.js';
import type { EventSink } from '../log/events.js';
import { appendKnownHost } from './append.js';
import { fingerprint, keyType } from './fingerprint.js';
import { formatKnownHostsLine } from './known-hosts.js';
import { decideHostKey, type HostKeyPins } from './policy.js';

export interface HostVerifierOptions {
  readonly host: string;
  readonly port: number;
  readonly pins: HostKeyPins;
  readonly strictHostKeyChecking: 'yes' | 'accept-new';
  readonly acceptNewFile: string;
  readonly emit: EventSink;
  /** Records an accepted unknown key (default: appendKnownHost); passed in by tests. */
  readonly append?: (file: string, line: string) => Promise<void>;
}

/** ssh2's hostVerifier shape: a boolean is the answer now; undefined means `verify` will be called. */
export type HostVerifier = (key: Buffer, verify: (ok: boolean) => void) => boolean | undefined;

function offeredKey(blob: Buffer): { type: string; fingerprint: string } {
  let type: string;
  try {
    type = keyType(blob);
  } catch {
    type = '(unparseable key)';
  }
  return { type, fingerprint: fingerprint(blob) };
}

/**
 * The verifier for one connection. The first key offered is decided against the pins (the decision and the key
 * are kept in `trace` so a refusal names them exactly); every later one (a re-key) must be that same key.
 */
export function hostVerifier(options: HostVerifierOptions, trace: ConnectTrace): HostVerifier {
  const { host, port } = options;
  let verified: Buffer | undefined;

  const atRekey = (blob: Buffer): boolean => {
    if (verified?.equals(blob) === true) return true;
    const offered = offeredKey(blob);
    const before = trace.hostKey ?? offeredKey(verified ?? blob);
    trace.hostKeyRefusal = {
      code: 'host-key-changed',
      message:
        `Host key CHANGED for ${host}:${String(port)} during a re-key: the connection was verified with ` +
        `${before.type} ${before.fingerprint}, and the server's new key exchange offered ${offered.type} ${offered.fingerprint}. ` +
        `A server does not switch host keys within one connection; someone may be intercepting it.`,
      details: { host, port, offered, verifiedAtStart: before },
    };
    return false;
  };

  const initial = (blob: Buffer, verify: (ok: boolean) => void): boolean | undefined => {
    trace.phase = 'host-key';
    trace.hostKey = offeredKey(blob);
    try {
      trace.hostKeyLine = formatKnownHostsLine(host, port, blob);
    } catch {
      // A host name that looks like a pattern cannot be written as a known_hosts line; nothing to suggest.
    }
    const decision = decideHostKey(options.pins, host, port, blob);
    if (decision.ok) {
      verified = Buffer.from(blob);
      trace.phase = 'kex';
      return true;
    }
    if (decision.code === 'host-key-unknown' && options.strictHostKeyChecking === 'accept-new') {
      const line = formatKnownHostsLine(host, port, blob);
      const learned = { type: trace.hostKey.type, fingerprint: trace.hostKey.fingerprint };
      (options.append ?? appendKnownHost)(options.acceptNewFile, line).then(
        () => {
          verified = Buffer.from(blob);
          options.emit({ kind: 'host-key-learned', host, port, ...learned, file: options.acceptNewFile, line });
          trace.phase = 'kex';
          verify(true);
        },
        () => verify(false),
      );
      return undefined;
    }
    trace.hostKeyRefusal = { code: decision.code, message: decision.message, details: { ...decision.details } };
    return false;
  };

  let asked = false;
  return (key, verify) => {
    if (asked) return atRekey(key);
    asked = true;
    try {
      return initial(key, verify);
    } catch {
      // decideHostKey throws only for a bad host or port: refuse rather than leave ssh2 waiting.
      return false;
    }
  };
}
