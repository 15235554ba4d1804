// Checks and conversions of single option values: whole numbers, durations, -o seconds and yes/no.
import { usageError } from '../errors.js';
import { OPTIONS, type OptionName } from '../options.js';
import { envTwin } from '../util/env-options.js';
import { MAX_TIMER_MS, parseDuration } from '../util/duration.js';

/** `name` is a long option (`retries`) or, when it starts with '-', the option as written (`-o ServerAliveCountMax`). */
export function integer(name: string, value: string | number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  const text = String(value).trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw usageError(`\`${name.startsWith('-') ? name : `--${name}`}\` must be a whole number from ${min} to ${max}, got "${String(value)}"`);
  }
  return n;
}

/** `name` is a long option (`timeout`) or, when it starts with '-', the option as written (`-o ConnectTimeout`). */
export function duration(name: string, value: string | number | undefined, fallback: string, min = 0): number {
  const raw = value === undefined || value === '' ? fallback : value;
  const label = name.startsWith('-') ? `\`${name}\`` : `\`--${name}\` (${envTwin(name)})`;
  const ms = parseDuration(raw);
  if (ms === undefined || ms < min) {
    const negative = /^\s*-/.test(String(raw)) ? '; it must not be negative' : '';
    throw usageError(`${label} must be a duration like 500ms, 10s, 2m or plain milliseconds${min ? ` (at least ${min}ms)` : ''}${negative}, got "${String(raw)}"`);
  }
  // Node's timers take at most 2^31 - 1 ms; a longer delay would fire at once (TimeoutOverflowWarning).
  if (ms > MAX_TIMER_MS) {
    throw usageError(`${label} must be at most ${MAX_TIMER_MS}ms (about 24 days), got "${String(raw)}"`);
  }
  return ms;
}

/**
 * The value of option `name` checked as the table declares it (range, minimum duration), its default when unset.
 * `label` names it in messages when it came from elsewhere (`-o ConnectTimeout`).
 */
export function optionValue(name: OptionName, value: string | number | undefined, label: string = name): number {
  const spec = OPTIONS.find((o) => o.name === name);
  const fallback = spec !== undefined && 'default' in spec ? spec.default : undefined;
  if (spec?.value.kind === 'integer') return integer(label, value, typeof fallback === 'number' ? fallback : 0, spec.value.min, spec.value.max);
  if (spec?.value.kind === 'duration') return duration(label, value, String(fallback ?? 0), spec.value.min);
  throw new TypeError(`--${name} is not a number or a duration`);
}

export function seconds(name: string, value: string): string {
  if (!/^\d+$/.test(value)) throw usageError(`\`-o ${name}\` takes whole seconds, got "${value}"`);
  return `${value}s`;
}

export function yesNo(key: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'yes' || v === 'true') return true;
  if (v === 'no' || v === 'false') return false;
  throw usageError(`\`-o ${key}\`: expected yes or no, got "${value}"`);
}
