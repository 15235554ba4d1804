// Reads OpenSSH client configuration files into numbered lines, tokenised by the `ssh-config` package's parser.
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'ssh-config';
import { configError, isSafeScpError } from '../errors.js';

/** One keyword line of an ssh_config file, with where it is (for `--dry-run` and error messages). */
export interface ConfigLine {
  readonly file: string;
  readonly line: number;
  /** The keyword as written (`HostName`). */
  readonly name: string;
  /** The keyword lower-cased (`hostname`): OpenSSH keywords are case-insensitive. */
  readonly keyword: string;
  /** The arguments, quotes removed. */
  readonly args: readonly string[];
}

/** Anything bigger is not a hand-written ssh_config. */
const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * Splits `text` into keyword lines. The package's parser tokenises each line (quotes, `=` separators,
 * comments); the line numbers are ours, since its tree keeps none.
 */
function parseConfigText(text: string, file: string): ConfigLine[] {
  const out: ConfigLine[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const where = `${file}:${i + 1}`;
    if ([...trimmed].some((ch) => (ch < ' ' && ch !== '\t') || ch === '\x7f')) throw configError(`${where}: the line contains a control character`);
    let parsed;
    try {
      parsed = parse(trimmed)[0];
    } catch (err: unknown) {
      throw configError(`${where}: cannot parse "${trimmed.slice(0, 80)}": ${err instanceof Error ? err.message : String(err)}`, err);
    }
    if (!parsed || parsed.type !== 1 || !parsed.param) continue;
    const args = (Array.isArray(parsed.value) ? parsed.value.map((v) => v.val) : [parsed.value]).filter((a) => a !== '');
    out.push({ file, line: i + 1, name: parsed.param, keyword: parsed.param.toLowerCase(), args });
  }
  return out;
}

/**
 * Reads and parses one file; undefined when it does not exist. Any other read failure (permissions, a
 * directory, too large) is cause `config`. Each file is read once per run.
 */
export class ConfigReader {
  private readonly cache = new Map<string, ConfigLine[] | undefined>();

  read(file: string): ConfigLine[] | undefined {
    if (this.cache.has(file)) return this.cache.get(file);
    let text: string;
    try {
      const st = fs.statSync(file);
      if (st.isDirectory()) throw configError(`ssh_config ${file} is a directory, not a file`);
      if (st.size > MAX_CONFIG_BYTES) throw configError(`ssh_config ${file} is ${st.size} bytes: too large for an ssh_config`);
      text = fs.readFileSync(file, 'utf8');
    } catch (err: unknown) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        this.cache.set(file, undefined);
        return undefined;
      }
      if (isSafeScpError(err)) throw err;
      throw configError(`cannot read ssh_config ${file}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    const lines = parseConfigText(text, file);
    this.cache.set(file, lines);
    return lines;
  }
}

/** `*` and `?` in a path, one component at a time, sorted as glob(3) sorts; no match gives []. */
export function expandGlob(pattern: string): string[] {
  if (!/[*?[]/.test(pattern)) return [pattern];
  const parts = pattern.split('/');
  let bases = [parts[0] === '' ? '/' : '.'];
  for (const [i, part] of parts.entries()) {
    if (i === 0 && part === '') continue;
    if (part === '') continue;
    if (!/[*?[]/.test(part)) {
      bases = bases.map((b) => path.join(b, part));
      continue;
    }
    const re = globToRegExp(part);
    const next: string[] = [];
    for (const base of bases) {
      let names: string[];
      try {
        names = fs.readdirSync(base);
      } catch {
        continue;
      }
      for (const name of names.sort()) if (re.test(name) && (!name.startsWith('.') || part.startsWith('.'))) next.push(path.join(base, name));
    }
    bases = next;
  }
  return bases.filter((p) => fs.existsSync(p));
}

function globToRegExp(part: string): RegExp {
  let re = '';
  for (const ch of part) re += ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  return new RegExp(`^${re}$`);
}
