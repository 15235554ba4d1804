// What a run returns: per host and overall. The library's result; log/ formats it, copy.ts produces it.
import type { CauseCode, SafeScpError } from './errors.js';
import type { AttemptEvidence } from './log/events.js';
import type { FileResult } from './transfer/progress.js';

export interface HostResult {
  host: string;
  port: number;
  user: string;
  ok: boolean;
  exitCode: number;
  cause: CauseCode | undefined;
  error: string | undefined;
  attempts: number;
  bytes: number;
  files: number;
  durationMs: number;
  /** --update: files not sent because the server's copy was unchanged. */
  skipped: number;
  /** Staged commit: how many files the rename burst moved into place and how long it took (a reader's mixed window). */
  commit?: { files: number; durationMs: number };
}

export interface CopyResult {
  ok: boolean;
  exitCode: number;
  cause: CauseCode | undefined;
  /** The deciding error (the most severe host's), when not ok. */
  error: SafeScpError | undefined;
  attempts: AttemptEvidence[];
  files: FileResult[];
  hosts: HostResult[];
  durationMs: number;
}
