// Public API: copy(), configuration, errors and event types. No logic here.
export { copy, type CopyDeps } from './copy.js';
export type { CopyResult, HostResult } from './result.js';
export { resolveConfig, DEFAULTS, type RawOptions, type ResolvedConfig, type HostTarget } from './config.js';
export { SafeScpError, isSafeScpError, CAUSES, type CauseCode, type Phase } from './errors.js';
export type { SafeScpEvent, EventSink, AttemptEvidence } from './log/events.js';
export { buildReport, type Report } from './log/report.js';
