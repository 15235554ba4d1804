// Removes secrets from any text before it is printed or written to a report.

const KEY_BLOCK = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g;
const PUTTY_BLOCK = /PuTTY-User-Key-File-[\s\S]*?(?:Private-MAC: \S+|$)/g;

/** Builds a redactor that also hides the given secret values (passphrases, key text). */
export function makeRedactor(secrets: ReadonlyArray<string | undefined>): (text: string) => string {
  const values = secrets.filter((s): s is string => typeof s === 'string' && s.length >= 4);
  return (text: string): string => {
    let out = text.replace(KEY_BLOCK, '[private key redacted]').replace(PUTTY_BLOCK, '[private key redacted]');
    for (const value of values) {
      if (out.includes(value)) out = out.split(value).join('[redacted]');
      // Also each long line of a multi-line secret (a key body quoted piecemeal).
      for (const line of value.split(/\r?\n/)) {
        if (line.length >= 16 && out.includes(line)) out = out.split(line).join('[redacted]');
      }
    }
    return out;
  };
}
