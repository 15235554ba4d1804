// Whether ssh2 encrypts with its native addon, for the diagnosis (JavaScript crypto is ~40% slower). Nothing of ssh2's
// state is read: the addon ssh2's install step builds is loaded the way ssh2 loads it, and what loads for us loaded
// for ssh2. Where that file lives is ssh2's layout, known for the version package.json pins: with another ssh2, a
// missing file says 'unknown', not 'javascript'.
import { createRequire } from 'node:module';
import path from 'node:path';

/** The ssh2 version whose addon path below was checked. */
export const CHECKED_SSH2_VERSION = '1.17.0';
const ADDON = ['lib', 'protocol', 'crypto', 'build', 'Release', 'sshcrypto.node'];

const load = createRequire(import.meta.url);

/** The installed ssh2's version, or undefined when it cannot be read. */
export function ssh2Version(): string | undefined {
  try {
    const pkg = load('ssh2/package.json') as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}

/** 'native' when ssh2's addon loads, 'javascript' when it does not (for the checked ssh2), otherwise 'unknown'. */
export function cryptoKind(version = ssh2Version()): 'native' | 'javascript' | 'unknown' {
  try {
    load(path.join(path.dirname(load.resolve('ssh2/package.json')), ...ADDON));
    return 'native';
  } catch {
    return version === CHECKED_SSH2_VERSION ? 'javascript' : 'unknown';
  }
}
