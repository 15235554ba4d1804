// Parses durations as users write them in CI variables: `500ms`, `10s`, `2m`, `1h`, or plain milliseconds.

/** The longest delay Node's timers accept (2^31 - 1 ms, about 24.8 days); a longer one fires at once with a warning. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Returns milliseconds, or undefined when `text` is not a duration. */
export function parseDuration(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isFinite(text) && text >= 0 ? text : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(text);
  if (!match?.[1]) return undefined;
  const unit = UNITS[(match[2] ?? 'ms').toLowerCase()];
  if (unit === undefined) return undefined;
  return Math.round(Number(match[1]) * unit);
}

/** `1500` -> `1.5s`, for messages. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)}s`;
  return `${(ms / 60_000).toFixed(1)}m`;
}
