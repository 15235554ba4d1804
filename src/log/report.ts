// The JSON report (--report FILE and --json): the shape documented in CONTRACT.md, Diagnosis.
import { stripControl } from '../classify.js';
import type { CopyResult } from '../result.js';
import { analyseAttempts, attemptsForHost } from '../diagnose/analysis.js';
import { CAUSE_HELP, checksFor } from '../diagnose/causes.js';

export interface Report {
  ok: boolean;
  exitCode: number;
  cause: string | null;
  message: string | null;
  phase: string | null;
  explanation: string | null;
  checks: readonly string[];
  /** Conclusions drawn across attempts (see diagnose/analysis.ts). */
  analysis: string[];
  durationMs: number;
  attempts: Array<{
    host: string;
    port: number;
    attempt: number;
    phase: string;
    cause: string | null;
    startedAt: string;
    durationMs: number;
    error: string | null;
    evidence: Record<string, unknown>;
  }>;
  /** `skipped`: --update found the server's copy unchanged; `atomic: false`: --inplace wrote over the file. */
  files: Array<{ source: string; target: string; bytes: number; verified: boolean; skipped?: boolean; atomic?: boolean }>;
  hosts: Array<{
    host: string;
    port: number;
    ok: boolean;
    exitCode: number;
    cause: string | null;
    attempts: number;
    bytes: number;
    durationMs: number;
    /** Staged commit: files renamed in the final burst and how long it took; null without a burst. */
    commit: { files: number; durationMs: number } | null;
    /** --update: files not sent because the server's copy was unchanged. */
    skipped: number;
  }>;
  details?: Record<string, unknown>;
}

/** The port of the failed host: from its attempts, else its host result. */
export function portOf(result: CopyResult): number | undefined {
  const host = result.error?.host;
  return result.attempts.find((a) => a.host === host)?.port ?? result.hosts.find((h) => h.host === host)?.port;
}

export function buildReport(result: CopyResult, exitCode: number): Report {
  const error = result.error;
  return {
    ok: result.ok,
    exitCode,
    cause: result.cause ?? null,
    message: error ? stripControl(error.message) : null,
    phase: error?.phase ?? null,
    explanation: result.cause ? CAUSE_HELP[result.cause].summary : null,
    checks: result.cause ? checksFor(result.cause, { host: error?.host, port: portOf(result) }) : [],
    // Not .map(stripControl): the index would become its length cap.
    analysis: result.ok
      ? []
      : analyseAttempts(attemptsForHost(result.attempts, error?.host)).map((line) => stripControl(line)),
    durationMs: result.durationMs,
    attempts: result.attempts.map((a) => {
      const { host, port, attempt, phase, cause, startedAt, durationMs, error: text, ...evidence } = a;
      if (typeof evidence.preBannerText === 'string') evidence.preBannerText = stripControl(evidence.preBannerText).trim();
      if (typeof evidence.serverVersion === 'string') evidence.serverVersion = stripControl(evidence.serverVersion);
      return { host, port, attempt, phase, cause: cause ?? null, startedAt, durationMs, error: text ? stripControl(text) : null, evidence };
    }),
    files: result.files.map((f) => ({
      source: f.source,
      target: f.target,
      bytes: f.bytes,
      verified: f.verified,
      ...(f.skipped ? { skipped: true } : {}),
      ...(f.atomic === false ? { atomic: false } : {}),
    })),
    hosts: result.hosts.map((h) => ({
      host: h.host,
      port: h.port,
      ok: h.ok,
      exitCode: h.exitCode,
      cause: h.cause ?? null,
      attempts: h.attempts,
      bytes: h.bytes,
      durationMs: h.durationMs,
      commit: h.commit ?? null,
      skipped: h.skipped,
    })),
    ...(error && Object.keys(error.details).length > 0 ? { details: { ...error.details } } : {}),
  };
}
