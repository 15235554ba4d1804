// OpenSSH host pattern matching (match.c), reproduced rule for rule so known_hosts means what ssh says.

/** ASCII-only lowercasing: OpenSSH uses tolower() in the C locale, so non-ASCII bytes are left alone. */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/**
 * match.c match_pattern(): `*` matches any run (including empty and including `[`, `]`, `:`), `?`
 * matches exactly one character, everything else is literal and case-sensitive. There are no
 * character classes: `[` in `[host]:port` is a literal bracket. Iterative with single-star
 * backtracking, which accepts exactly the same strings as OpenSSH's recursive version.
 */
export function matchPattern(text: string, pattern: string): boolean {
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const pc = pattern[p];
    if (pc === '*') {
      starP = p;
      starT = t;
      p += 1;
    } else if (pc !== undefined && (pc === '?' || pc === text[t])) {
      t += 1;
      p += 1;
    } else if (starP >= 0) {
      // Let the last star swallow one more character and retry from there.
      p = starP + 1;
      starT += 1;
      t = starT;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p += 1;
  return p === pattern.length;
}

/** OpenSSH copies each sub-pattern into a 1024-byte buffer and gives up on longer ones. */
const MAX_SUBPATTERN = 1023;

/**
 * match.c match_pattern_list() with dolower=1: 1 if some sub-pattern matches, -1 if a negated
 * (`!`) sub-pattern matches (which vetoes the whole list, whatever else matched), 0 otherwise.
 * Sub-patterns are lowercased; the caller lowercases the host (ssh does, and so does
 * match_hostname()). An over-long sub-pattern ends the scan with 0, as in OpenSSH.
 */
export function matchPatternList(text: string, patternList: string): 1 | 0 | -1 {
  let gotPositive = false;
  for (const raw of patternList.split(',')) {
    const negated = raw.startsWith('!');
    const sub = asciiLower(negated ? raw.slice(1) : raw);
    if (sub.length >= MAX_SUBPATTERN) return 0;
    if (matchPattern(text, sub)) {
      if (negated) return -1;
      gotPositive = true;
    }
  }
  return gotPositive ? 1 : 0;
}

/**
 * The name ssh looks up in known_hosts for a destination (misc.c put_host_port): the lowercased
 * host alone for port 22, `[host]:port` otherwise. So a plain `host` line never matches port
 * 2222, and a `[host]:22` line never matches port 22 (ssh does not look that name up).
 */
export function knownHostsName(host: string, port: number): string {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`port must be an integer from 1 to 65535, got ${String(port)}`);
  }
  if (host === '') throw new RangeError('host name is empty');
  const lower = asciiLower(host);
  return port === 22 ? lower : `[${lower}]:${String(port)}`;
}
