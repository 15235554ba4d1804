// The SAFE_SCP_* namespace: only SAFE_SCP_<known option> is read; anything else is a warning, never an error.
import { DURATION_OPTIONS } from '../options.js';
import { closest } from './suggest.js';

/** `connect-timeout` -> `SAFE_SCP_CONNECT_TIMEOUT`. */
export function envTwin(option: string): string {
  return `SAFE_SCP_${option.toUpperCase().replace(/-/g, '_')}`;
}

/**
 * SAFE_SCP_* variables that are not option twins but that safe-scp itself reads or sets, and so must not warn.
 * None today: the bin's code cache and the CI templates' own values use the SAFESCP_ prefix instead.
 */
const NON_OPTION_VARIABLES: ReadonlySet<string> = new Set<string>();

export interface EnvOptions {
  /** Option (long name, as declared) -> value, for the variables that are set and not empty. */
  readonly values: Readonly<Record<string, string>>;
  /** One line per SAFE_SCP_* variable that is not an option twin. */
  readonly warnings: readonly string[];
  /** Twins of on/off options whose value is not one of true/false, 1/0, yes/no, on/off. */
  readonly errors: readonly string[];
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/**
 * Reads the environment twins of `options` (long names like `retry-delay`). An empty variable counts as unset,
 * as CI templates set every variable and leave the unused ones empty.
 */
export function readEnvOptions(env: Readonly<Record<string, string | undefined>>, options: readonly string[], booleans: readonly string[] = []): EnvOptions {
  const byVariable = new Map(options.map((o) => [envTwin(o), o]));
  const values: Record<string, string> = {};
  const warnings: string[] = [];
  const errors: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('SAFE_SCP_') || value === undefined) continue;
    const option = byVariable.get(name);
    if (option !== undefined) {
      const word = value.trim().toLowerCase();
      if (value === '') continue;
      if (!booleans.includes(option)) values[option] = value;
      else if (TRUE.has(word) || FALSE.has(word)) values[option] = String(TRUE.has(word));
      else errors.push(`${name} must be true or false (also 1/0, yes/no, on/off), got "${value}"`);
      continue;
    }
    if (NON_OPTION_VARIABLES.has(name)) continue;
    // Compared without the prefix, so that SAFE_SCP_DST is not "close" to SAFE_SCP_PORT just by sharing it.
    const suffix = closest(name.slice('SAFE_SCP_'.length), options.map((o) => envTwin(o).slice('SAFE_SCP_'.length)));
    const near = suffix === undefined ? undefined : `SAFE_SCP_${suffix}`;
    warnings.push(
      `safe-scp: warning: ignoring ${name}: not an option of safe-scp${near ? `; did you mean ${near}?` : ' (safe-scp --help lists its SAFE_SCP_* variables)'}`,
    );
  }
  return { values, warnings, errors };
}

/**
 * A plain number below 100 for a duration is almost always meant as seconds (`SAFE_SCP_RETRY_DELAY=2`); it stays
 * milliseconds (the contract says so) but is said out loud. 0 is a real value (it turns some things off).
 */
export function bareDurationWarnings(values: Readonly<Record<string, unknown>>): string[] {
  const warnings: string[] = [];
  for (const option of DURATION_OPTIONS) {
    const value = values[option];
    if (value === undefined || value === null) continue;
    const text = String(value).trim();
    if (!/^\d+(\.\d+)?$/.test(text)) continue;
    const n = Number(text);
    if (n > 0 && n < 100) {
      warnings.push(`safe-scp: warning: --${option} (${envTwin(option)}) ${text} is read as ${text} millisecond${n === 1 ? '' : 's'}; write ${text}s for seconds`);
    }
  }
  return warnings;
}
