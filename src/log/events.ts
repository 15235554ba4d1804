// Typed events: the library reports what happens through these, never by printing.
import type { CauseCode, Phase } from '../errors.js';

/** What one connection attempt saw; copied into the report and the diagnosis. */
export interface AttemptEvidence {
  host: string;
  port: number;
  attempt: number;
  startedAt: string;
  durationMs: number;
  phase: Phase;
  cause?: CauseCode;
  error?: string;
  address?: string;
  dnsMs?: number;
  tcpMs?: number;
  /** Bytes the server sent before its SSH version line (0 when it closed at once). */
  bytesBeforeBanner?: number;
  /** Text the server sent before its version line (control characters removed). */
  preBannerText?: string;
  /** The server's SSH version line. */
  serverVersion?: string;
  /** `reset` (RST), `close` (FIN), `timeout` or undefined when the connection did not end early. */
  ending?: 'reset' | 'close' | 'timeout';
  algorithms?: Record<string, string>;
  hostKey?: { type: string; fingerprint: string };
}

/** A process holding a host's throttle slot, as a waiting run saw it. */
export interface SlotHolderInfo {
  pid: number;
  hostname: string;
  /** When it took the slot (ISO time). */
  since: string;
  heldMs: number;
  /** Since its last lease renewal (absent for holders from versions without leases). */
  renewedMsAgo?: number;
}

/** Why a waiting run freed another holder's slot (throttle/owner.ts StaleReason). */
export type SlotFreedReason = 'corrupt' | 'lease-expired' | 'too-old' | 'owner-gone';

export type SafeScpEvent =
  | { kind: 'plan'; direction: 'upload' | 'download'; host: string; port: number; user: string; entries: number; bytes: number; dryRun: boolean; note?: string }
  | { kind: 'plan-entry'; source: string; target: string; bytes: number; type: 'file' | 'dir' }
  | { kind: 'throttle-wait'; host: string; port: number; waitedMs: number; heldBy?: SlotHolderInfo[]; freed?: Array<{ pid: number; hostname: string; reason: SlotFreedReason }> }
  /** Still waiting for a host's slot; `notice`: shown without -v too (after 2 s, then every 10 s). */
  | { kind: 'throttle-waiting'; host: string; port: number; waitedMs: number; concurrency: number; reason: 'busy' | 'interval'; holders: SlotHolderInfo[]; notice: boolean }
  | { kind: 'connect'; host: string; port: number; attempt: number }
  | { kind: 'connected'; host: string; port: number; attempt: number; serverVersion: string; hostKey: { type: string; fingerprint: string }; cipher?: string; nativeCrypto?: boolean }
  | { kind: 'host-key-learned'; host: string; port: number; type: string; fingerprint: string; file: string; line: string }
  | { kind: 'attempt-failed'; evidence: AttemptEvidence; cause: CauseCode; phase: Phase; message: string; retryable: boolean; nextDelayMs?: number; retriesLeft: number }
  | { kind: 'file-done'; source: string; target: string; bytes: number; skipped: boolean; durationMs: number; inPlace?: boolean }
  | { kind: 'commit'; files: number; durationMs: number }
  /** A transfer to or from a host starts (each attempt); totals when known up front (uploads, not downloads). */
  | { kind: 'transfer-start'; host: string; port: number; bytesTotal?: number; filesTotal?: number }
  /** At most a few per second while data moves: bytes and files so far on this host (they count resent data too). */
  | { kind: 'progress'; host: string; port: number; bytes: number; files: number }
  | { kind: 'transfer-end'; host: string; port: number; bytes: number; files: number; ok: boolean }
  /** An ssh_config line that applied to a host (named as typed): `--dry-run` lists them, -v shows them. */
  | { kind: 'ssh-config'; host: string; file: string; line: number; keyword: string; value: string }
  | { kind: 'debug'; message: string };

export type EventSink = (event: SafeScpEvent) => void;
