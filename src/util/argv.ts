// Command-line touch-ups before yargs sees the arguments.

/**
 * `--timeout -5s` -> `--timeout=-5s`. yargs reads a value that starts with '-' as more flags (`-5 -s`) and says
 * "Unknown arguments: 5, s"; joined, the value reaches the option's own check, whose message names the option.
 * Only for the options in `valueOptions` (as written: `--timeout`, `-P`), only for values that start with
 * '-' and a digit (no option of safe-scp looks like that), and never after `--`.
 */
export function joinNegativeValues(args: readonly string[], valueOptions: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    const next = args[i + 1];
    if (valueOptions.has(arg) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}
